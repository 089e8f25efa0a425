/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kudp-relay: the "standard UDP" baseline of the benchmarks. One thread, a
 * kernel UDP socket, recvmmsg/sendmmsg in batches of 32, doing the relay's
 * work for each datagram: OXPI probes are answered as OXPO from the same
 * buffer; anything else is counted and dropped.
 *
 *   kudp-relay [--port P] [--duration S]
 *
 * Prints one JSON line at exit: datagrams in and out, CPU seconds used
 * (user + system, from getrusage) and wall seconds.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define MAX_DGRAM 9216

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static uint8_t bufs[BATCH][MAX_DGRAM];
	struct sockaddr_in6 addrs[BATCH], bind_addr = { .sin6_family = AF_INET6 };
	struct mmsghdr in[BATCH], out[BATCH];
	struct iovec iov[BATCH], oiov[BATCH];
	unsigned long rx = 0, tx = 0, other = 0;
	double duration = 10, t0, end;
	struct rusage ru;
	int fd, opt, n, i, k, one = 1, zero = 0, bufsz = 16 << 20;
	uint16_t port = 51820;
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (opt == 'p')
			port = (uint16_t)atoi(optarg);
		else if (opt == 'd')
			duration = atof(optarg);
		else
			return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	bind_addr.sin6_port = htons(port);
	bind_addr.sin6_addr = in6addr_any;
	if (bind(fd, (struct sockaddr *)&bind_addr, sizeof(bind_addr)) != 0) {
		perror("bind");
		return 1;
	}
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = MAX_DGRAM;
		memset(&in[i], 0, sizeof(in[i]));
		in[i].msg_hdr.msg_iov = &iov[i];
		in[i].msg_hdr.msg_iovlen = 1;
		in[i].msg_hdr.msg_name = &addrs[i];
	}
	printf("ready\n");
	fflush(stdout);
	t0 = now_s();
	end = t0 + duration;
	while (!stop && now_s() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		for (i = 0; i < BATCH; i++)
			in[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		n = recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
			poll(&pfd, 1, 50);
			continue;
		}
		rx += n;
		for (i = 0, k = 0; i < n; i++) {
			uint8_t *d = bufs[i];

			if (in[i].msg_len < 4 || memcmp(d, "OXPI", 4) != 0) {
				other++;
				continue;
			}
			d[3] = 'O';
			oiov[k].iov_base = d;
			oiov[k].iov_len = in[i].msg_len;
			memset(&out[k], 0, sizeof(out[k]));
			out[k].msg_hdr.msg_iov = &oiov[k];
			out[k].msg_hdr.msg_iovlen = 1;
			out[k].msg_hdr.msg_name = &addrs[i];
			out[k].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
			k++;
		}
		for (i = 0; i < k;) {
			int s = sendmmsg(fd, out + i, k - i, 0);

			if (s <= 0)
				break;
			tx += s;
			i += s;
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"rx\": %lu, \"tx\": %lu, \"other\": %lu, \"cpu_s\": %.3f, \"wall_s\": %.3f}\n",
	       rx, tx, other, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, now_s() - t0);
	close(fd);
	return 0;
}
