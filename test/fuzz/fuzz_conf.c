/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: oxidize-server's configuration file parser (rte_cfgfile plus
 * our option table). The input is written to an anonymous file and read
 * through --config, as the server would read an operator's file.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <getopt.h>
#include <unistd.h>

#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srv_server_conf c;
	char path[64], prog[] = "oxidize-server", opt[] = "--config";
	char *argv[4];
	int fd;

	static FILE *null;

	if (null == NULL) {
		null = fopen("/dev/null", "w");
		srv_conf_error_stream(null);
		opterr = 0;
	}
	fd = memfd_create("oxconf", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	argv[0] = prog;
	argv[1] = opt;
	argv[2] = path;
	argv[3] = NULL;
	/* Accepted or refused with a message: either way, no crash, and an
	 * accepted value stays inside its declared range. */
	if (srv_conf_parse(&c, 3, argv) == 0) {
		unsigned int i, j;

		/* Ports: 1..8 of them, none zero, none twice, each in both orders. */
		if (c.ports.n == 0 || c.ports.n > SRV_MAX_UDP_PORTS)
			abort();
		for (i = 0; i < c.ports.n; i++) {
			if (c.ports.port[i] == 0 || c.ports.be[i] != htons(c.ports.port[i]))
				abort();
			for (j = 0; j < i; j++)
				if (c.ports.port[j] == c.ports.port[i])
					abort();
		}
		if (c.burst == 0 || c.burst > SRV_MAX_BURST || c.queues > OX_FLASH_MAX_QUEUES ||
		    c.drain_us == 0 || memchr(c.iface, '\0', sizeof(c.iface)) == NULL)
			abort();
	}
	close(fd);
	return 0;
}
