/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * oxidize-client: the standard-UDP side of OxTunnel (no DPDK).
 *
 *   oxidize-client genkey                 new private key (base64) on stdout
 *   oxidize-client pubkey < PRIVATE       its public key
 *   oxidize-client ping HOST [options]    OXPI round trips to a relay, with
 *                                         loss and RTT percentiles (also --ping)
 *   oxidize-client up [options]           the tunnel on a TUN device (tunnel.c)
 *
 * Keys are X25519, 32 bytes, standard base64 (44 characters), as
 * `wg genkey` / `wg pubkey` make them; a relay's allow-list takes the
 * public ones.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <sodium.h>

#include "client.h"

#define PROBE_HDR 16 /* "OXPI" + u32 flow + u64 seq */
#define MAX_PROBE 1472
#define MAX_FLOWS 64

static void
usage(FILE *f)
{
	fprintf(f, "Usage: oxidize-client genkey\n"
		   "       oxidize-client pubkey < PRIVATE_KEY\n"
		   "       oxidize-client ping HOST [--port P] [--count N] [--interval MS]\n"
		   "                           [--flows N] [--size BYTES] [--timeout MS]\n"
		   "       oxidize-client up --server HOST[:PORT] --server-key BASE64 --key FILE\n"
		   "                         [options]   (oxidize-client up --help)\n\n"
		   "genkey   print a new X25519 private key, base64\n"
		   "pubkey   read a private key on stdin, print its public key\n"
		   "up       bring up the tunnel to a relay on a TUN device (root)\n"
		   "ping     send --count OXPI probes (default 20) to HOST (default port\n"
		   "         51820), one every --interval ms (default 100), from --flows\n"
		   "         UDP sockets; print each reply's RTT, then loss and p50/p90/\n"
		   "         p99/p99.9/min/max. Exit 0 if any reply came back. --ping HOST\n"
		   "         is the same.\n");
}

static int
cmd_genkey(void)
{
	uint8_t key[OX_KEY_LEN];
	char b64[OX_KEY_B64_LEN + 1];

	randombytes_buf(key, sizeof(key));
	/* Clamped as X25519 expects (RFC 7748 5), so the stored key is the
	 * scalar actually used. */
	key[0] &= 248;
	key[31] &= 127;
	key[31] |= 64;
	ox_key_to_base64(b64, key);
	sodium_memzero(key, sizeof(key));
	printf("%s\n", b64);
	return 0;
}

static int
read_key(FILE *f, uint8_t key[OX_KEY_LEN])
{
	char line[256];
	int ret;

	if (fgets(line, sizeof(line), f) == NULL)
		return -EINVAL;
	ret = ox_key_from_base64(key, line, strcspn(line, " \t\r\n"));
	sodium_memzero(line, sizeof(line));
	return ret;
}

static int
cmd_pubkey(void)
{
	uint8_t priv[OX_KEY_LEN], pub[OX_KEY_LEN];
	char b64[OX_KEY_B64_LEN + 1];

	if (read_key(stdin, priv) != 0 || ox_key_public(pub, priv) != 0) {
		sodium_memzero(priv, sizeof(priv));
		fprintf(stderr,
			"oxidize-client: stdin is not a base64 X25519 key (44 characters)\n");
		return 1;
	}
	sodium_memzero(priv, sizeof(priv));
	ox_key_to_base64(b64, pub);
	printf("%s\n", b64);
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_us(const uint64_t *sorted, size_t n, double p)
{
	size_t i = (size_t)(n * p / 100.0);

	return sorted[i < n ? i : n - 1] / 1000.0;
}

struct ping_opts {
	const char *host;
	const char *port;
	unsigned long count;
	unsigned int interval_ms;
	unsigned int timeout_ms;
	unsigned int flows;
	unsigned int size;
};

static int
cmd_ping(const struct ping_opts *o)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	uint8_t probe[MAX_PROBE], reply[MAX_PROBE + 1];
	int fds[MAX_FLOWS], ret, rc = 1;
	unsigned long seq, received = 0, bad = 0;
	uint64_t *rtt = NULL;
	unsigned int i;

	ret = getaddrinfo(o->host, o->port, &hints, &ai);
	if (ret != 0) {
		fprintf(stderr, "oxidize-client: %s: %s\n", o->host, gai_strerror(ret));
		return 1;
	}
	for (i = 0; i < o->flows; i++)
		fds[i] = -1;
	for (i = 0; i < o->flows; i++) {
		fds[i] = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || connect(fds[i], ai->ai_addr, ai->ai_addrlen) != 0) {
			fprintf(stderr, "oxidize-client: %s: %s\n", o->host, strerror(errno));
			goto out;
		}
	}
	rtt = calloc(o->count, sizeof(*rtt));
	if (rtt == NULL)
		goto out;
	memset(probe, 0, sizeof(probe));
	memcpy(probe, "OXPI", 4);
	for (i = PROBE_HDR; i < o->size; i++)
		probe[i] = (uint8_t)i;
	printf("OXPI %s port %s: %lu probes of %u bytes from %u flow(s)\n", o->host, o->port,
	       o->count, o->size, o->flows);
	for (seq = 0; seq < o->count; seq++) {
		uint32_t flow = (uint32_t)(seq % o->flows);
		uint64_t t0, deadline;
		int fd = fds[flow];

		memcpy(probe + 4, &flow, 4);
		memcpy(probe + 8, &seq, 8);
		t0 = ox_mono_ns();
		if (send(fd, probe, o->size, 0) != (ssize_t)o->size) {
			fprintf(stderr, "oxidize-client: send: %s\n", strerror(errno));
			goto out;
		}
		deadline = t0 + (uint64_t)o->timeout_ms * 1000000ull;
		for (;;) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			uint64_t now = ox_mono_ns();
			ssize_t n;

			if (now >= deadline) {
				printf("seq %lu: no reply within %u ms\n", seq, o->timeout_ms);
				break;
			}
			if (poll(&p, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
				continue;
			n = recv(fd, reply, sizeof(reply), 0);
			/* The reply is the probe with OXPO, never anything larger. */
			if (n == (ssize_t)o->size && memcmp(reply, "OXPO", 4) == 0 &&
			    memcmp(reply + 4, probe + 4, o->size - 4) == 0) {
				rtt[received++] = ox_mono_ns() - t0;
				printf("seq %lu: %u bytes, rtt %.1f us\n", seq, o->size,
				       rtt[received - 1] / 1000.0);
				break;
			}
			bad++;
		}
		if (o->interval_ms && seq + 1 < o->count)
			usleep(o->interval_ms * 1000);
	}
	printf("--- %lu sent, %lu received, %.1f%% loss, %lu unexpected\n", o->count, received,
	       100.0 * (double)(o->count - received) / (double)o->count, bad);
	if (received) {
		qsort(rtt, received, sizeof(*rtt), cmp_u64);
		printf("rtt us: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f min %.1f max %.1f\n",
		       pct_us(rtt, received, 50), pct_us(rtt, received, 90),
		       pct_us(rtt, received, 99), pct_us(rtt, received, 99.9), rtt[0] / 1000.0,
		       rtt[received - 1] / 1000.0);
		rc = 0;
	}
out:
	free(rtt);
	for (i = 0; i < o->flows; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	freeaddrinfo(ai);
	return rc;
}

static int
parse_ping(int argc, char **argv, struct ping_opts *o)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'c' },
		{ "interval", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "flows", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int opt;

	o->port = "51820";
	o->count = 20;
	o->interval_ms = 100;
	o->timeout_ms = 1000;
	o->flows = 1;
	o->size = 64;
	while ((opt = getopt_long(argc, argv, "p:c:i:t:f:s:", lo, NULL)) != -1) {
		if (opt == 'p') {
			o->port = optarg;
			continue;
		}
		if (opt == '?')
			return -EINVAL;
		v = strtol(optarg, &end, 10);
		if (*end != '\0' || v < 0)
			return -EINVAL;
		switch (opt) {
		case 'c':
			o->count = (unsigned long)v;
			break;
		case 'i':
			o->interval_ms = (unsigned int)v;
			break;
		case 't':
			o->timeout_ms = (unsigned int)v;
			break;
		case 'f':
			o->flows = (unsigned int)v;
			break;
		case 's':
			o->size = (unsigned int)v;
			break;
		}
	}
	if (optind != argc - 1 || o->count == 0 || o->count > 10000000 || o->flows == 0 ||
	    o->flows > MAX_FLOWS || o->size < PROBE_HDR || o->size > MAX_PROBE ||
	    o->timeout_ms == 0)
		return -EINVAL;
	o->host = argv[optind];
	return 0;
}

int
main(int argc, char **argv)
{
	struct client_conf cc;
	struct ping_opts po;
	int ret;

	if (sodium_init() < 0) {
		fprintf(stderr, "oxidize-client: libsodium failed to initialise\n");
		return 1;
	}
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "genkey") && argc == 2)
		return cmd_genkey();
	if (!strcmp(argv[1], "pubkey") && argc == 2)
		return cmd_pubkey();
	if (!strcmp(argv[1], "up")) {
		ret = client_conf_parse(&cc, argc - 1, argv + 1);
		if (ret != 0)
			return ret > 0 ? 0 : 2;
		return client_up(&cc);
	}
	if (!strcmp(argv[1], "ping") || !strcmp(argv[1], "--ping")) {
		if (parse_ping(argc - 1, argv + 1, &po) != 0) {
			usage(stderr);
			return 2;
		}
		return cmd_ping(&po);
	}
	usage(stderr);
	return 2;
}
