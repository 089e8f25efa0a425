/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Settings of `oxidize-client up`: command-line flags and a config file
 * of `key = value` lines with the same names. Flags win over the file;
 * any --route replaces all of the file's routes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* Which setting a flag or key names; also the getopt value. */
enum conf_key {
	K_SERVER = 's',
	K_SERVER_KEY = 'k',
	K_KEY = 'K',
	K_CONFIG = 'c',
	K_TUN = 't',
	K_ROUTE = 'r',
	K_MTU = 'm',
	K_DURATION = 'd',
	K_VERBOSE = 'v',
	K_HELP = 'h',
	K_DNS = 'D',
	K_NO_DNS = 'N',
	K_DNS_VIA = 'V',
	K_STATE_DIR = 'S',
};

static const struct option long_opts[] = {
	{ "server", required_argument, NULL, K_SERVER },
	{ "server-key", required_argument, NULL, K_SERVER_KEY },
	{ "key", required_argument, NULL, K_KEY },
	{ "config", required_argument, NULL, K_CONFIG },
	{ "tun", required_argument, NULL, K_TUN },
	{ "route", required_argument, NULL, K_ROUTE },
	{ "mtu", required_argument, NULL, K_MTU },
	{ "duration", required_argument, NULL, K_DURATION },
	{ "verbose", no_argument, NULL, K_VERBOSE },
	{ "dns", required_argument, NULL, K_DNS },
	{ "no-dns", no_argument, NULL, K_NO_DNS },
	{ "dns-via", required_argument, NULL, K_DNS_VIA },
	{ "state-dir", required_argument, NULL, K_STATE_DIR },
	{ "help", no_argument, NULL, K_HELP },
	{ NULL, 0, NULL, 0 },
};

void
client_up_usage(FILE *f)
{
	fprintf(f,
		"Usage: oxidize-client up --server HOST[:PORT]... --server-key BASE64 --key FILE\n"
		"                         [--tun NAME] [--route PREFIX]... [--mtu N]\n"
		"                         [--dns ADDR,... | --no-dns] [--dns-via HOW]\n"
		"                         [--state-dir DIR] [--duration S] [--config FILE]\n"
		"                         [--verbose]\n\n"
		"Bring up an OxTunnel to a relay on a TUN device and route PREFIXes into it.\n"
		"  --server HOST[:PORT]  relay address (port 51820 unless given; [v6]:port);\n"
		"                        repeatable, up to 8 relays of one fleet (one key):\n"
		"                        the fastest by OXPI round trip is used, the next\n"
		"                        when it stops answering (3 s of traffic unanswered)\n"
		"  --server-key BASE64   the relay's static public key\n"
		"  --key FILE            this client's private key (mode 600; `genkey` makes one)\n"
		"  --tun NAME            TUN device to create (default ox0)\n"
		"  --route PREFIX        send PREFIX (IPv4 or IPv6 CIDR) through the tunnel;\n"
		"                        repeatable. 0.0.0.0/0 or ::/0: all traffic, as two /1\n"
		"                        routes that leave the default route alone; the relay's\n"
		"                        own address is pinned to its current path first\n"
		"  --mtu N               TUN MTU (default: the one the relay gives)\n"
		"  --duration S          exit after S seconds (default 0: run until a signal)\n"
		"  --config FILE         `key = value` lines; keys are the flag names without\n"
		"                        dashes (server, server-key, key, tun, route, mtu,\n"
		"                        duration, verbose); '#' starts a comment; flags win,\n"
		"                        any --route replaces the file's routes and any\n"
		"                        --server its relays (`server = A, B` lists several)\n"
		"  --verbose             log handshakes, rekeys and counters every 10 s\n"
		"  --dns ADDR,...        resolve names with these servers while the tunnel is\n"
		"                        up, in place of the ones the relay hands out\n"
		"  --no-dns              leave the system's DNS settings alone\n"
		"  --dns-via HOW         auto (default: systemd-resolved where it runs, else\n"
		"                        resolvconf, else /etc/resolv.conf), resolved,\n"
		"                        resolvconf or file\n"
		"  --state-dir DIR       where the DNS settings replaced are kept until they\n"
		"                        are put back, also after a crash (default\n"
		"                        /var/lib/oxidize-client)\n\n"
		"SIGUSR1 prints the counters; SIGINT/SIGTERM disconnect, remove the routes\n"
		"and the TUN device, put the DNS settings back, and exit 0.\n");
}

int
client_prefix_parse(struct client_prefix *p, const char *s)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long len;
	unsigned int max, i;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	memset(p, 0, sizeof(*p));
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, p->addr) == 1) {
		p->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, p->addr) == 1) {
		p->family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	len = max;
	if (slash != NULL) {
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end != '\0' || len > max)
			return -EINVAL;
	}
	p->len = (uint8_t)len;
	/* Host bits set: the kernel refuses such a route; say so here. */
	for (i = p->len; i < max; i++)
		if (p->addr[i / 8] & (0x80 >> (i % 8)))
			return -EINVAL;
	return 0;
}

static int
parse_uint(const char *s, unsigned long min, unsigned long max, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

/* HOST, HOST:PORT, [V6] or [V6]:PORT; a bare IPv6 literal has no port. */
static int
parse_server(struct client_server *sv, const char *s)
{
	const char *host = s, *port = NULL, *colon;
	size_t hlen;
	unsigned int p;

	if (s[0] == '[') {
		colon = strchr(s, ']');
		if (colon == NULL)
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(colon - host);
		if (colon[1] == ':')
			port = colon + 2;
		else if (colon[1] != '\0')
			return -EINVAL;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			hlen = (size_t)(colon - s);
			port = colon + 1;
		} else {
			hlen = strlen(s);
		}
	}
	if (hlen == 0 || hlen >= sizeof(sv->host))
		return -EINVAL;
	memcpy(sv->host, host, hlen);
	sv->host[hlen] = '\0';
	if (port == NULL) {
		strcpy(sv->port, CLIENT_DEFAULT_PORT);
		return 0;
	}
	if (parse_uint(port, 1, 65535, &p) != 0)
		return -EINVAL;
	snprintf(sv->port, sizeof(sv->port), "%u", p);
	return 0;
}

/* One relay, or in the config file a list of them separated by commas or
 * blanks: each is added to the fleet. */
static int
add_servers(struct client_conf *c, const char *val, const char *what)
{
	char buf[1024], *tok, *save = NULL;

	if (strlen(val) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, val);
	tok = strtok_r(buf, ", \t", &save);
	if (tok == NULL)
		return -EINVAL;
	for (; tok != NULL; tok = strtok_r(NULL, ", \t", &save)) {
		if (c->n_servers == CLIENT_MAX_SERVERS) {
			fprintf(stderr, "oxidize-client: %s: more than %d relays\n", what,
				CLIENT_MAX_SERVERS);
			return -E2BIG;
		}
		if (parse_server(&c->servers[c->n_servers], tok) != 0)
			return -EINVAL;
		c->n_servers++;
	}
	return 0;
}

static int
parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "on"))
		*out = true;
	else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/* Apply one setting; @p what names it in an error message. */
static int
apply(struct client_conf *c, int key, const char *val, const char *what)
{
	int ret = 0;

	switch (key) {
	case K_SERVER:
		ret = add_servers(c, val, what);
		if (ret == -E2BIG)
			return ret;
		break;
	case K_SERVER_KEY:
		ret = ox_key_from_base64(c->server_key, val, strlen(val));
		c->have_server_key = ret == 0;
		break;
	case K_KEY:
		if (val[0] == '\0' || strlen(val) >= sizeof(c->key_file))
			ret = -EINVAL;
		else
			strcpy(c->key_file, val);
		break;
	case K_TUN:
		if (val[0] == '\0' || strlen(val) >= sizeof(c->tun) || strchr(val, '/') ||
		    strchr(val, ' '))
			ret = -EINVAL;
		else
			strcpy(c->tun, val);
		break;
	case K_ROUTE:
		if (c->n_routes == CLIENT_MAX_ROUTES) {
			fprintf(stderr, "oxidize-client: %s: more than %d routes\n", what,
				CLIENT_MAX_ROUTES);
			return -EINVAL;
		}
		ret = client_prefix_parse(&c->routes[c->n_routes], val);
		if (ret == 0)
			c->n_routes++;
		break;
	case K_MTU:
		ret = parse_uint(val, CLIENT_MIN_MTU, CLIENT_MAX_MTU, &c->mtu);
		break;
	case K_DURATION:
		ret = parse_uint(val, 0, 100000000, &c->duration_s);
		break;
	case K_VERBOSE:
		ret = parse_bool(val, &c->verbose);
		break;
	case K_DNS: {
		char err[128];

		ret = ox_config_dns_parse(val, &c->dns, err, sizeof(err));
		if (ret == 0 && c->dns.n_dns == 0)
			ret = -EINVAL;
		if (ret != 0) {
			fprintf(stderr, "oxidize-client: %s: %s\n", what,
				c->dns.n_dns == 0 && ret == 0 ? "no address" : err);
			return -EINVAL;
		}
		c->dns_mode = CLIENT_DNS_GIVEN;
		break;
	}
	case K_NO_DNS: {
		bool off = true;

		ret = parse_bool(val, &off);
		if (ret == 0 && off)
			c->dns_mode = CLIENT_DNS_OFF;
		break;
	}
	case K_DNS_VIA:
		if (!strcmp(val, "auto"))
			c->dns_via = CLIENT_DNS_VIA_AUTO;
		else if (!strcmp(val, "resolved"))
			c->dns_via = CLIENT_DNS_VIA_RESOLVED;
		else if (!strcmp(val, "resolvconf"))
			c->dns_via = CLIENT_DNS_VIA_RESOLVCONF;
		else if (!strcmp(val, "file"))
			c->dns_via = CLIENT_DNS_VIA_FILE;
		else
			ret = -EINVAL;
		break;
	case K_STATE_DIR:
		if (val[0] != '/' || strlen(val) >= sizeof(c->state_dir))
			ret = -EINVAL;
		else
			strcpy(c->state_dir, val);
		break;
	default:
		ret = -EINVAL;
	}
	if (ret != 0)
		fprintf(stderr, "oxidize-client: %s: invalid value '%s'\n", what, val);
	return ret;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return s;
}

/* Read the config file, skipping keys whose flag was given (@p given). */
static int
load_file(struct client_conf *c, const char *path, const bool given[128])
{
	char line[1024], what[64];
	unsigned int lineno = 0;
	FILE *f;
	int ret = 0;

	f = fopen(path, "re");
	if (f == NULL) {
		fprintf(stderr, "oxidize-client: cannot open config %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *k, *v, *eq, *hash;
		const struct option *o;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			fprintf(stderr, "oxidize-client: %s:%u: line too long\n", path, lineno);
			ret = -EINVAL;
			break;
		}
		hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		k = trim(line);
		if (*k == '\0')
			continue;
		eq = strchr(k, '=');
		if (eq == NULL) {
			fprintf(stderr, "oxidize-client: %s:%u: expected key = value\n", path,
				lineno);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		for (o = long_opts; o->name != NULL; o++)
			if (!strcmp(o->name, k) && o->val != K_CONFIG && o->val != K_HELP)
				break;
		if (o->name == NULL) {
			fprintf(stderr, "oxidize-client: %s:%u: unknown key '%s'\n", path, lineno,
				k);
			ret = -EINVAL;
			break;
		}
		if (given[o->val])
			continue;
		snprintf(what, sizeof(what), "%s:%u", path, lineno);
		ret = apply(c, o->val, v, what);
		if (ret != 0)
			break;
	}
	fclose(f);
	return ret;
}

int
client_conf_parse(struct client_conf *c, int argc, char **argv)
{
	bool given[128] = { false };
	const char *config = NULL;
	char what[32];
	int opt;

	memset(c, 0, sizeof(*c));
	strcpy(c->tun, CLIENT_DEFAULT_TUN);
	strcpy(c->state_dir, CLIENT_DEFAULT_STATE_DIR);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (opt) {
		case K_HELP:
			client_up_usage(stdout);
			return 1;
		case K_CONFIG:
			config = optarg;
			break;
		case K_VERBOSE:
			c->verbose = true;
			given[opt] = true;
			break;
		case K_NO_DNS:
			c->dns_mode = CLIENT_DNS_OFF;
			given[opt] = true;
			break;
		case '?':
			client_up_usage(stderr);
			return -EINVAL;
		default:
			strcpy(what, "option");
			for (const struct option *o = long_opts; o->name != NULL; o++)
				if (o->val == opt)
					snprintf(what, sizeof(what), "--%s", o->name);
			if (apply(c, opt, optarg, what) != 0)
				return -EINVAL;
			given[opt] = true;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "oxidize-client: up: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (config != NULL && load_file(c, config, given) != 0)
		return -EINVAL;
	if (given[K_DNS] && given[K_NO_DNS]) {
		fprintf(stderr, "oxidize-client: --dns and --no-dns: one or the other\n");
		return -EINVAL;
	}
	if (c->n_servers == 0 || !c->have_server_key || c->key_file[0] == '\0') {
		fprintf(stderr, "oxidize-client: up needs --server, --server-key and --key "
				"(or their config keys)\n");
		return -EINVAL;
	}
	return 0;
}
