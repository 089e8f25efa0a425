/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Application options: one table gives the flags, the config file keys
 * (section [server], same names) and --help. File first, then flags, so a
 * flag wins over the file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <rte_cfgfile.h>

#include "server.h"

enum opt_type { OPT_U16, OPT_U32, OPT_INT, OPT_STR, OPT_BOOL, OPT_PORTS };

struct opt_def {
	const char *name;
	enum opt_type type;
	size_t off;
	size_t size;
	long min, max;
	const char *arg;
	const char *help;
};

#define FIELD(f) offsetof(struct srv_server_conf, f), sizeof(((struct srv_server_conf *)0)->f)

static const struct opt_def opt_defs[] = {
	{ "port", OPT_PORTS, FIELD(ports), 1, 65535, "P[,P]...",
	  "OxTunnel UDP ports, up to 8 (default 51820; e.g. 51820,443 for networks that let "
	  "only 443 out)" },
	{ "iface", OPT_STR, FIELD(iface), 0, 0, "IF",
	  "FLASH on IF, one port per queue (default: the default route's interface)" },
	{ "queues", OPT_U16, FIELD(queues), 0, OX_FLASH_MAX_QUEUES, "N",
	  "queues to drive; 0 = all that IF or each port has (default 0)" },
	{ "burst", OPT_U16, FIELD(burst), 1, SRV_MAX_BURST, "N", "RX/TX burst size (default 32)" },
	{ "xdp-prog", OPT_STR, FIELD(xdp_prog), 0, 0, "PATH",
	  "ox_steer object (default: the built, else the installed one)" },
	{ "xdp-replace", OPT_BOOL, FIELD(xdp_replace), 0, 1, NULL,
	  "replace an XDP program of someone else's found on IF" },
	{ "force-copy", OPT_BOOL, FIELD(force_copy), 0, 1, NULL,
	  "bind AF_XDP sockets in copy mode even where zero-copy works" },
	{ "busy-budget", OPT_INT, FIELD(busy_budget), -1, 1024, "N",
	  "preferred busy-poll budget; 0 = PMD default (64), -1 = off" },
	{ "rx-desc", OPT_U16, FIELD(rx_desc), 0, 32768, "N",
	  "RX ring size, a power of two; 0 = PMD default" },
	{ "tx-desc", OPT_U16, FIELD(tx_desc), 0, 32768, "N",
	  "TX ring size, a power of two; 0 = PMD default" },
	{ "drain-us", OPT_U32, FIELD(drain_us), 1, 1000000, "US",
	  "longest wait before buffered replies are sent (default 100)" },
	{ "stats-interval", OPT_U32, FIELD(stats_interval), 0, 86400, "S",
	  "log totals every S seconds; 0 = never (default)" },
	{ "duration", OPT_U32, FIELD(duration), 0, INT_MAX, "S",
	  "stop by itself after S seconds; 0 = run until SIGINT/SIGTERM" },
	{ "tap", OPT_STR, FIELD(tap), 0, 0, "NAME",
	  "exit TAP (net_tap) toward the kernel, which routes and NATs; none by default" },
	{ "pool4", OPT_STR, FIELD(pool4), 0, 0, "CIDR",
	  "tunnel IPv4 addresses (default 100.64.0.0/10; .1 is the relay's)" },
	{ "pool6", OPT_STR, FIELD(pool6), 0, 0, "CIDR",
	  "tunnel IPv6 addresses (default fd6f:7869:647a::/64)" },
	{ "max-sessions", OPT_U32, FIELD(max_sessions), 1, 1u << 24, "N",
	  "session table size (default 1048576)" },
	{ "key", OPT_STR, FIELD(key_file), 0, 0, "FILE",
	  "server private key (base64, mode 600); turns the relay on" },
	{ "allow", OPT_STR, FIELD(allow_file), 0, 0, "FILE",
	  "allow-list of client public keys (reloaded on SIGHUP)" },
	{ "state", OPT_STR, FIELD(state_file), 0, 0, "FILE",
	  "keep the last handshake time of each key here, across restarts" },
	{ "mtu", OPT_U16, FIELD(mtu), 576, 8920, "N",
	  "tunnel MTU given to clients (default 1420)" },
	{ "keepalive", OPT_U16, FIELD(keepalive), 1, 3600, "S",
	  "keepalive interval given to clients (default 25)" },
	{ "idle-timeout", OPT_U32, FIELD(idle_timeout), 5, 86400, "S",
	  "end a session silent this long (default 180)" },
	{ "hs-queue", OPT_U32, FIELD(hs_queue), 64, 1u << 20, "N",
	  "handshakes queued for the engines, in all (default 4096)" },
	{ "hs-workers", OPT_U32, FIELD(hs_workers), 0, 65535, "N",
	  "worker lcores that also do handshakes, beside the control thread "
	  "(default: all; 0 = the control thread alone)" },
	{ "hs-load-pps", OPT_U32, FIELD(hs_load_pps), 10, 100000000, "N",
	  "initiations per second above which mac2 cookies are required (default 1000)" },
	{ "exit-deny", OPT_STR, FIELD(exit_deny), 0, 0, "LIST",
	  "prefixes clients may not reach, comma-separated (beside the defaults)" },
	{ "exit-allow", OPT_STR, FIELD(exit_allow), 0, 0, "LIST",
	  "prefixes clients may reach; the longest matching prefix decides" },
	{ "exit-open", OPT_STR, FIELD(exit_open), 0, 0, "LIST",
	  "ports of the relay host open to clients, e.g. udp/53,tcp/53" },
	{ "wg-name", OPT_STR, FIELD(wg_name), 0, 0, "NAME",
	  "name `wg show NAME` reads the relay by (/var/run/wireguard/NAME.sock; "
	  "default oxidize0, \"\" = none)" },
	{ "c2c", OPT_STR, FIELD(c2c), 0, 0, "MODE",
	  "which peers reach which: all (default), group (those sharing an allow-list "
	  "group=), none (only the exit and the relay)" },
	{ "c2c-allow", OPT_STR, FIELD(c2c_allow), 0, 0, "LIST",
	  "beside --c2c: group FROM may reach group TO, comma-separated FROM:TO "
	  "(the reverse only if given too)" },
	{ "dns", OPT_STR, FIELD(dns), 0, 0, "LIST",
	  "DNS servers handed to OxTunnel clients (IPv4 and IPv6, comma-separated, up to 8); "
	  "oxidize-peer.py writes them as WireGuard peers' DNS =" },
	{ "exit-host", OPT_STR, FIELD(exit_host), 0, 0, "LIST",
	  "addresses refused as this host's even when not on it (a fleet's anycast ones)" },
	{ "probes-off", OPT_BOOL, FIELD(probes_off), 0, 1, NULL,
	  "leave OXPI probes unanswered (counted as probes_off)" },
	{ "probe-rate", OPT_U32, FIELD(probe_rate), 0, 100000000, "N",
	  "OXPI probes answered per source per second and lcore; 0 = all (default 1000)" },
	{ "worker-fifo", OPT_U32, FIELD(worker_fifo), 0, 99, "PRIO",
	  "worker lcores (not the main one) run SCHED_FIFO at PRIO; 0 = no (default)" },
	{ "config", OPT_STR, FIELD(config), 0, 0, "FILE",
	  "read options from FILE, section [server], keys as the flags" },
};

#define N_OPTS RTE_DIM(opt_defs)

/* Where option and config errors go; the config fuzz target silences it. */
static FILE *conf_err;

void
srv_conf_error_stream(FILE *f)
{
	conf_err = f;
}

#define CONF_ERR(...) fprintf(conf_err ? conf_err : stderr, __VA_ARGS__)
#define OPT_HELP 'h'
#define OPT_BASE 256

void
srv_conf_usage(const char *prog)
{
	char flag[64];
	size_t i;

	printf("Usage: %s [EAL options] -- [options]\n\n"
	       "OxTunnel relay on DPDK. With --iface and no EAL --vdev/-a, FLASH creates\n"
	       "one net_af_xdp port per queue of the interface, all over one UMEM, and\n"
	       "attaches ox_steer so only the OxTunnel port leaves the kernel's path.\n"
	       "Otherwise it drives the ports EAL created (PCI with RSS, net_tap, ...).\n\n"
	       "Options:\n",
	       prog);
	for (i = 0; i < N_OPTS; i++) {
		snprintf(flag, sizeof(flag), "--%s%s%s", opt_defs[i].name,
			 opt_defs[i].arg ? " " : "", opt_defs[i].arg ? opt_defs[i].arg : "");
		printf("  %-22s %s\n", flag, opt_defs[i].help);
	}
	printf("  %-22s %s\n", "-h, --help", "this text");
	printf("\nExample:\n  %s -l 0-2 --file-prefix oxidize -- --iface eth0 --port 51820\n",
	       prog);
}

static void
conf_defaults(struct srv_server_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->ports.port[0] = 51820;
	c->ports.be[0] = htons(51820);
	c->ports.n = 1;
	c->burst = 32;
	c->drain_us = 100;
	c->max_sessions = 1u << 20;
	c->mtu = OX_DEFAULT_MTU;
	c->probe_rate = 1000;
	c->keepalive = 25;
	c->idle_timeout = 180;
	c->hs_queue = 4096;
	c->hs_workers = 65535;
	c->hs_load_pps = 1000;
	snprintf(c->wg_name, sizeof(c->wg_name), "oxidize0");
	snprintf(c->c2c, sizeof(c->c2c), "all");
	snprintf(c->pool4, sizeof(c->pool4), "100.64.0.0/10");
	snprintf(c->pool6, sizeof(c->pool6), "fd6f:7869:647a::/64");
}

/* "P[,P]...": distinct ports, each in d->min..d->max, SRV_MAX_UDP_PORTS at most. */
static int
set_ports(struct srv_ports *ports, const struct opt_def *d, const char *val, const char *where)
{
	struct srv_ports n = { .n = 0 };
	const char *s = val;
	char *end;
	long v;
	unsigned int i;

	do {
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno != 0 || end == s || (*end != ',' && *end != '\0') || v < d->min ||
		    v > d->max) {
			/* The element at fault, as a single number is said. */
			CONF_ERR("%s: %s: '%.*s' is not a number in %ld..%ld\n", where, d->name,
				 (int)strcspn(s, ","), s, d->min, d->max);
			return -EINVAL;
		}
		for (i = 0; i < n.n; i++)
			if (n.port[i] == v) {
				CONF_ERR("%s: %s: port %ld twice\n", where, d->name, v);
				return -EINVAL;
			}
		if (n.n == SRV_MAX_UDP_PORTS) {
			CONF_ERR("%s: %s: more than %u ports\n", where, d->name, SRV_MAX_UDP_PORTS);
			return -E2BIG;
		}
		n.port[n.n] = (uint16_t)v;
		n.be[n.n++] = htons((uint16_t)v);
		s = end + 1;
	} while (*end == ',');
	*ports = n;
	return 0;
}

static int
set_value(struct srv_server_conf *c, const struct opt_def *d, const char *val, const char *where)
{
	char *p = (char *)c + d->off;
	char *end;
	long v;

	if (d->type == OPT_STR) {
		if (strlen(val) >= d->size) {
			CONF_ERR("%s: %s: value longer than %zu characters\n", where, d->name,
				 d->size - 1);
			return -EINVAL;
		}
		memcpy(p, val, strlen(val) + 1);
		return 0;
	}
	if (d->type == OPT_PORTS)
		return set_ports((struct srv_ports *)p, d, val, where);
	if (d->type == OPT_BOOL) {
		if (!strcasecmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes") ||
		    !strcasecmp(val, "on"))
			*(bool *)p = true;
		else if (!strcasecmp(val, "0") || !strcasecmp(val, "false") ||
			 !strcasecmp(val, "no") || !strcasecmp(val, "off"))
			*(bool *)p = false;
		else
			goto bad;
		return 0;
	}
	errno = 0;
	v = strtol(val, &end, 0);
	if (errno != 0 || end == val || *end != '\0' || v < d->min || v > d->max)
		goto bad;
	if (d->type == OPT_U16)
		*(uint16_t *)p = (uint16_t)v;
	else if (d->type == OPT_U32)
		*(uint32_t *)p = (uint32_t)v;
	else
		*(int *)p = (int)v;
	return 0;
bad:
	if (d->type == OPT_BOOL)
		CONF_ERR("%s: %s: '%s' is not a boolean (true/false)\n", where, d->name, val);
	else
		CONF_ERR("%s: %s: '%s' is not a number in %ld..%ld\n", where, d->name, val, d->min,
			 d->max);
	return -EINVAL;
}

static const struct opt_def *
find_def(const char *name)
{
	size_t i;

	for (i = 0; i < N_OPTS; i++)
		if (strcmp(opt_defs[i].name, name) == 0)
			return &opt_defs[i];
	return NULL;
}

static int
load_file(struct srv_server_conf *c, const char *path)
{
	struct rte_cfgfile_entry *entries = NULL;
	struct rte_cfgfile *cfg;
	char where[300];
	int n, i, s, n_sec, ret = 0;
	char **sections = NULL;

	cfg = rte_cfgfile_load(path, 0);
	if (cfg == NULL) {
		CONF_ERR("config %s: cannot be read or is not an INI file\n", path);
		return -EINVAL;
	}
	n_sec = rte_cfgfile_num_sections(cfg, NULL, 0);
	sections = calloc(n_sec > 0 ? n_sec : 1, sizeof(*sections));
	for (s = 0; sections != NULL && s < n_sec; s++)
		sections[s] = malloc(CFG_NAME_LEN);
	if (sections == NULL || rte_cfgfile_sections(cfg, sections, n_sec) != n_sec) {
		ret = -ENOMEM;
		goto out;
	}
	for (s = 0; s < n_sec; s++) {
		if (strcmp(sections[s], "server") != 0) {
			CONF_ERR("config %s: unknown section [%s] (only [server])\n", path,
				 sections[s]);
			ret = -EINVAL;
			goto out;
		}
	}
	n = rte_cfgfile_section_num_entries(cfg, "server");
	if (n <= 0)
		goto out;
	entries = calloc(n, sizeof(*entries));
	if (entries == NULL || rte_cfgfile_section_entries(cfg, "server", entries, n) != n) {
		ret = -ENOMEM;
		goto out;
	}
	snprintf(where, sizeof(where), "config %s", path);
	for (i = 0; i < n; i++) {
		const struct opt_def *d = find_def(entries[i].name);

		if (d == NULL || strcmp(d->name, "config") == 0) {
			CONF_ERR("config %s: unknown option '%s' in [server]\n", path,
				 entries[i].name);
			ret = -EINVAL;
			goto out;
		}
		ret = set_value(c, d, entries[i].value, where);
		if (ret != 0)
			goto out;
	}
out:
	free(entries);
	for (s = 0; sections != NULL && s < n_sec; s++)
		free(sections[s]);
	free(sections);
	rte_cfgfile_close(cfg);
	return ret;
}

int
srv_conf_parse(struct srv_server_conf *c, int argc, char **argv)
{
	struct option lopts[N_OPTS + 2];
	const char *config = NULL;
	size_t i;
	int opt, ret;

	conf_defaults(c);
	for (i = 0; i < N_OPTS; i++) {
		lopts[i].name = opt_defs[i].name;
		lopts[i].has_arg = opt_defs[i].type == OPT_BOOL ? no_argument : required_argument;
		lopts[i].flag = NULL;
		lopts[i].val = OPT_BASE + (int)i;
	}
	lopts[N_OPTS] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	lopts[N_OPTS + 1] = (struct option){ NULL, 0, NULL, 0 };

	/* Pass 1: only --config, so the file is applied before the flags. */
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		if (opt == OPT_BASE + (int)(find_def("config") - opt_defs))
			config = optarg;
	}
	if (config != NULL) {
		ret = load_file(c, config);
		if (ret != 0)
			return ret;
	}
	/* Pass 2: flags win. */
	opterr = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		if (opt == OPT_HELP) {
			srv_conf_usage(argv[0]);
			return 1;
		}
		if (opt < OPT_BASE || opt >= OPT_BASE + (int)N_OPTS) {
			CONF_ERR("see %s -- --help\n", argv[0]);
			return -EINVAL;
		}
		if (opt_defs[opt - OPT_BASE].type == OPT_BOOL)
			ret = set_value(c, &opt_defs[opt - OPT_BASE], "1", "option");
		else
			ret = set_value(c, &opt_defs[opt - OPT_BASE], optarg, "option");
		if (ret != 0)
			return ret;
	}
	if (optind < argc) {
		CONF_ERR("unexpected argument '%s'; see %s -- --help\n", argv[optind], argv[0]);
		return -EINVAL;
	}
	return 0;
}
