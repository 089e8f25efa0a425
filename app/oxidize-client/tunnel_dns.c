/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Names through the tunnel: the DNS servers the relay hands out (or
 * --dns), set while the tunnel is up and put back when it goes down.
 *
 * Three ways, the first that the system has (--dns-via picks one):
 *  - systemd-resolved: the servers on the TUN link, and for a full tunnel
 *    the routing domain "~." so that every name goes to them
 *    (`resolvectl dns`, `resolvectl domain`; `resolvectl revert` at exit,
 *    and the link vanishes with the TUN device anyway);
 *  - resolvconf: `resolvconf -a TUN -m 0 -x`, `resolvconf -d TUN -f` at exit
 *    (as wg-quick does);
 *  - /etc/resolv.conf replaced: written in place (it may be a bind mount,
 *    which a rename cannot replace; a symlink is replaced by a file and
 *    put back as the link).
 *
 * What was replaced is written to a state file before anything changes
 * (synced, renamed into place), so a client killed with -9 or a machine
 * that lost power leaves enough behind: the next start puts it back
 * before doing anything else (cli_dns_recover).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tunnel.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define STATE_MAGIC "oxidize-client dns 1\n"
#define RESOLV_MAX (64 * 1024)

static const char *const via_name[] = { "auto", "systemd-resolved", "resolvconf", RESOLV_CONF };

/* @p name found as an executable in PATH (wg-quick finds resolvconf the
 * same way), its path in @p buf; or NULL. */
static const char *
find_exe(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;

	if (path == NULL || path[0] == '\0')
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (p = path; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		/* An empty or relative entry would run whatever the current
		 * directory holds: not for a program run as root. */
		if (end == p || *p != '/')
			continue;
		if ((size_t)snprintf(buf, len, "%.*s/%s", (int)(end - p), p, name) < len &&
		    access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

/* Run argv, @p input on its standard input (NULL: none). @return its exit
 * status, or -errno. */
static int
run(const char *const *argv, const char *input)
{
	int in[2] = { -1, -1 }, status;
	pid_t pid;

	if (input != NULL && pipe2(in, O_CLOEXEC) != 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		status = -errno;
		goto out;
	}
	if (pid == 0) {
		char *const *av;

		memcpy(&av, &argv, sizeof(av)); /* execv's type, not a change */
		if (in[0] >= 0 && dup2(in[0], 0) < 0)
			_exit(127);
		execv(argv[0], av);
		_exit(127);
	}
	if (in[1] >= 0) {
		size_t len = strlen(input), off = 0;

		close(in[0]);
		in[0] = -1;
		while (off < len) {
			ssize_t w = write(in[1], input + off, len - off);

			if (w <= 0)
				break;
			off += (size_t)w;
		}
		close(in[1]);
		in[1] = -1;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
out:
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	return status;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* A new file at @p path with these bytes, synced, renamed into place. */
static int
write_file_atomic(const char *path, const char *a, size_t alen, const char *b, size_t blen)
{
	char tmp[PATH_MAX];
	int fd, ret;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	ret = write_all(fd, a, alen);
	if (ret == 0 && blen != 0)
		ret = write_all(fd, b, blen);
	if (ret == 0 && fsync(fd) != 0)
		ret = -errno;
	close(fd);
	if (ret == 0 && rename(tmp, path) != 0)
		ret = -errno;
	if (ret != 0)
		unlink(tmp);
	return ret;
}

static void
state_path(const struct client_conf *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.dns", c->state_dir, c->tun);
}

/* Read a whole file (up to RESOLV_MAX bytes) into a new buffer. */
static char *
read_file(const char *path, size_t *len)
{
	char *buf = malloc(RESOLV_MAX + 1);
	ssize_t r;
	size_t n = 0;
	int fd;

	if (buf == NULL)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while (n < RESOLV_MAX && (r = read(fd, buf + n, RESOLV_MAX - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* /etc/resolv.conf's bytes, in place: a bind mount cannot be renamed over. */
static int
resolv_write(const char *text, size_t len)
{
	int fd = open(RESOLV_CONF, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW), ret;

	if (fd < 0)
		return -errno;
	ret = write_all(fd, text, len);
	if (ret == 0 && fsync(fd) != 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* /etc/resolv.conf a link to @p target again (or a file in place of one). */
static int
resolv_relink(const char *target)
{
	char tmp[] = RESOLV_CONF ".oxidize-new";

	unlink(tmp);
	if (target != NULL) {
		if (symlink(target, tmp) != 0)
			return -errno;
	} else {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

		if (fd < 0)
			return -errno;
		close(fd);
	}
	if (rename(tmp, RESOLV_CONF) != 0) {
		int ret = -errno;

		unlink(tmp);
		return ret;
	}
	return 0;
}

/* Put back what a state file at @p path says; remove it once done. */
static int
restore_from(const char *path, bool quiet)
{
	size_t len, hlen;
	char *st = read_file(path, &len), *body, *line, *save = NULL, *target = NULL;
	char tun[IFNAMSIZ] = "", exe_buf[PATH_MAX];
	int via = -1, ret = 0;
	bool link = false, none = false;

	if (st == NULL)
		return errno == ENOENT ? 0 : -errno;
	body = strstr(st, "\n\n");
	if (strncmp(st, STATE_MAGIC, strlen(STATE_MAGIC)) != 0 || body == NULL) {
		say("%s is not a DNS state file of oxidize-client; left alone\n", path);
		free(st);
		return -EINVAL;
	}
	*body = '\0';
	body += 2;
	hlen = (size_t)(body - st);
	for (line = strtok_r(st + strlen(STATE_MAGIC), "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "via=", 4))
			via = atoi(line + 4);
		else if (!strncmp(line, "tun=", 4))
			snprintf(tun, sizeof(tun), "%s", line + 4);
		else if (!strncmp(line, "symlink=", 8))
			link = true, target = line + 8;
		else if (!strcmp(line, "file=none"))
			none = true;
	}
	switch (via) {
	case CLIENT_DNS_VIA_RESOLVED: {
		const char *exe = find_exe("resolvectl", exe_buf, sizeof(exe_buf));
		const char *argv[] = { exe, "revert", tun, NULL };

		/* The link goes with the TUN device: nothing left to undo. */
		if (exe != NULL && tun[0] != '\0' && if_nametoindex(tun) != 0)
			ret = run(argv, NULL) == 0 ? 0 : -EIO;
		break;
	}
	case CLIENT_DNS_VIA_RESOLVCONF: {
		const char *exe = find_exe("resolvconf", exe_buf, sizeof(exe_buf));
		const char *argv[] = { exe, "-d", tun, "-f", NULL };

		ret = exe != NULL && run(argv, NULL) == 0 ? 0 : -EIO;
		break;
	}
	case CLIENT_DNS_VIA_FILE:
		if (none)
			ret = unlink(RESOLV_CONF) == 0 || errno == ENOENT ? 0 : -errno;
		else if (link)
			ret = resolv_relink(target);
		else
			ret = resolv_write(body, len - hlen);
		break;
	default:
		ret = -EINVAL;
	}
	if (ret == 0) {
		unlink(path);
		if (!quiet)
			say("DNS settings put back (%s)\n",
			    via > 0 && via <= CLIENT_DNS_VIA_FILE ? via_name[via] : "?");
	} else {
		say("DNS settings could not be put back from %s (%s); kept for the next start\n",
		    path, strerror(-ret));
	}
	free(st);
	return ret;
}

int
cli_dns_recover(const struct client_conf *c)
{
	char path[PATH_MAX];
	struct stat sb;

	/* Even with --no-dns: what an earlier run left is put back. */
	state_path(c, path, sizeof(path));
	if (stat(path, &sb) != 0)
		return 0;
	say("an earlier oxidize-client on %s did not put the DNS settings back (killed?): "
	    "putting them back\n",
	    c->tun);
	return restore_from(path, false);
}

static bool
full_tunnel(const struct client_conf *c)
{
	unsigned int i;

	for (i = 0; i < c->n_routes; i++)
		if (c->routes[i].len == 0)
			return true;
	return false;
}

static int
choose_via(const struct client_conf *c)
{
	char exe_buf[PATH_MAX];

	if (c->dns_via != CLIENT_DNS_VIA_AUTO)
		return c->dns_via;
	/* resolved answers on its varlink socket while it runs. */
	if (access("/run/systemd/resolve/io.systemd.Resolve", F_OK) == 0 &&
	    find_exe("resolvectl", exe_buf, sizeof(exe_buf)) != NULL)
		return CLIENT_DNS_VIA_RESOLVED;
	if (find_exe("resolvconf", exe_buf, sizeof(exe_buf)) != NULL)
		return CLIENT_DNS_VIA_RESOLVCONF;
	return CLIENT_DNS_VIA_FILE;
}

/* The state file, before anything is changed. */
static int
save_state(struct tunnel *t, int via)
{
	const struct client_conf *c = t->conf;
	char path[PATH_MAX], hdr[PATH_MAX + 128], target[PATH_MAX];
	char *orig = NULL;
	size_t olen = 0;
	struct stat sb;
	int n, ret;

	if (mkdir(c->state_dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	n = snprintf(hdr, sizeof(hdr), STATE_MAGIC "via=%d\ntun=%s\n", via, c->tun);
	if (via == CLIENT_DNS_VIA_FILE) {
		if (lstat(RESOLV_CONF, &sb) != 0 && errno == ENOENT) {
			n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "file=none\n");
		} else if (S_ISLNK(sb.st_mode)) {
			ssize_t l = readlink(RESOLV_CONF, target, sizeof(target) - 1);

			if (l <= 0)
				return -errno;
			target[l] = '\0';
			n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "symlink=%s\n", target);
		} else {
			orig = read_file(RESOLV_CONF, &olen);
			if (orig == NULL)
				return -errno;
		}
	}
	if ((size_t)n + 1 >= sizeof(hdr)) {
		free(orig);
		return -ENAMETOOLONG;
	}
	hdr[n++] = '\n';
	state_path(c, path, sizeof(path));
	ret = write_file_atomic(path, hdr, (size_t)n, orig, olen);
	free(orig);
	if (ret == 0) {
		int dfd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return ret;
}

static size_t
dns_str(const struct ox_config *cfg, unsigned int i, char *buf, size_t len)
{
	inet_ntop(cfg->dns[i].v6 ? AF_INET6 : AF_INET, cfg->dns[i].addr, buf, (socklen_t)len);
	return strlen(buf);
}

int
cli_dns_set(struct tunnel *t, const struct ox_config *cfg)
{
	const struct client_conf *c = t->conf;
	char text[OX_CONFIG_DNS_MAX * 64 + 256], list[OX_CONFIG_DNS_MAX * 48] = "";
	char addr[OX_CONFIG_DNS_MAX][INET6_ADDRSTRLEN], exe_buf[PATH_MAX];
	size_t o = 0, lo = 0;
	unsigned int i;
	int via, ret;

	if (cfg->n_dns == 0)
		return 0;
	if (t->dns_via != 0 && memcmp(&t->dns_cur, cfg, sizeof(*cfg)) == 0)
		return 0;
	via = t->dns_via != 0 ? t->dns_via : choose_via(c);
	if (t->dns_via == 0) {
		ret = save_state(t, via);
		if (ret != 0) {
			say("DNS not set: the state file in %s cannot be written (%s)\n",
			    c->state_dir, strerror(-ret));
			return ret;
		}
	}
	for (i = 0; i < cfg->n_dns; i++) {
		dns_str(cfg, i, addr[i], sizeof(addr[i]));
		lo += (size_t)snprintf(list + lo, sizeof(list) - lo, "%s%s", i ? " " : "", addr[i]);
	}
	o = (size_t)snprintf(
		text, sizeof(text),
		"# oxidize-client: DNS through the tunnel %s; put back when it exits\n", c->tun);
	for (i = 0; i < cfg->n_dns; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "nameserver %s\n", addr[i]);
	switch (via) {
	case CLIENT_DNS_VIA_RESOLVED: {
		const char *exe = find_exe("resolvectl", exe_buf, sizeof(exe_buf));
		const char *argv[4 + OX_CONFIG_DNS_MAX] = { exe, "dns", c->tun };
		const char *dom[] = { exe, "domain", c->tun, "~.", NULL };

		for (i = 0; i < cfg->n_dns; i++)
			argv[3 + i] = addr[i];
		ret = exe != NULL && run(argv, NULL) == 0 ? 0 : -EIO;
		/* A full tunnel: every name to these servers, none to the LAN's. */
		if (ret == 0 && full_tunnel(c))
			ret = run(dom, NULL) == 0 ? 0 : -EIO;
		break;
	}
	case CLIENT_DNS_VIA_RESOLVCONF: {
		const char *exe = find_exe("resolvconf", exe_buf, sizeof(exe_buf));
		const char *argv[] = { exe, "-a", c->tun, "-m", "0", "-x", NULL };

		ret = exe != NULL && run(argv, text) == 0 ? 0 : -EIO;
		break;
	}
	default: {
		struct stat sb;

		ret = 0;
		/* A link (resolved's stub, say, with resolved not running):
		 * replaced by a file, put back as the link. */
		if (lstat(RESOLV_CONF, &sb) != 0 || S_ISLNK(sb.st_mode))
			ret = resolv_relink(NULL);
		if (ret == 0)
			ret = resolv_write(text, o);
	}
	}
	if (ret != 0) {
		say("DNS not set through %s: %s\n", via_name[via], strerror(-ret));
		if (t->dns_via == 0) {
			char path[PATH_MAX];

			state_path(c, path, sizeof(path));
			restore_from(path, true);
		}
		return ret;
	}
	t->dns_via = (uint8_t)via;
	t->dns_cur = *cfg;
	say("DNS through the tunnel: %s (%s%s)\n", list, via_name[via],
	    via == CLIENT_DNS_VIA_RESOLVED && full_tunnel(c) ? ", every domain" : "");
	return 0;
}

void
cli_dns_restore(struct tunnel *t)
{
	char path[PATH_MAX];

	if (t->dns_via == 0)
		return;
	state_path(t->conf, path, sizeof(path));
	if (restore_from(path, false) == 0)
		t->dns_via = 0;
}
