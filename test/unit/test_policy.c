/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/policy under EAL (--no-huge): the longest prefix decides; the relay
 * host's addresses pass only opened ports, its gateway address also echo
 * requests; later fragments and IPv6 extension headers to the host are
 * refused; lists and prefixes are parsed strictly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_memory.h>

#include "ox_test.h"
#include "ox_test_eal.h"
#include "ox_policy.h"

/* An IPv4 or IPv6 packet (as dst is written) to dst: proto, destination
 * port (or ICMP type), and for IPv4 the flags and fragment offset. */
static uint16_t
pkt(uint8_t *b, const char *dst, uint8_t proto, uint16_t port, uint16_t frag)
{
	bool v6 = strchr(dst, ':') != NULL;
	uint8_t *l4 = b + (v6 ? 40 : 20);

	memset(b, 0, 64);
	if (v6) {
		b[0] = 0x60;
		b[5] = 8;
		b[6] = proto;
		b[7] = 64;
		inet_pton(AF_INET6, "fd6f:7869:647a::9", b + 8);
		inet_pton(AF_INET6, dst, b + 24);
	} else {
		b[0] = 0x45;
		b[3] = 28;
		b[6] = (uint8_t)(frag >> 8);
		b[7] = (uint8_t)frag;
		b[8] = 64;
		b[9] = proto;
		inet_pton(AF_INET, "100.64.0.9", b + 12);
		inet_pton(AF_INET, dst, b + 16);
	}
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		l4[0] = (uint8_t)port;
	} else {
		l4[2] = (uint8_t)(port >> 8);
		l4[3] = (uint8_t)port;
	}
	return v6 ? 48 : 28;
}

static void
add(struct ox_policy *p, const char *prefix, enum ox_policy_action a)
{
	uint8_t addr[16], depth;
	bool v6;

	EXPECT(ox_policy_parse_prefix(prefix, &v6, addr, &depth) == 0 &&
		       ox_policy_add(p, v6, addr, depth, a) == 0,
	       "add %s", prefix);
}

static void
test_decisions(void)
{
	/* What the policy below makes of packets to each destination. */
	static const struct {
		const char *dst;
		uint8_t proto;
		uint16_t port, frag;
		bool pass;
		const char *what;
	} cases[] = {
		{ "198.51.100.7", IPPROTO_UDP, 53, 0, true, "a /32 allow inside a /24 deny" },
		{ "198.51.100.8", IPPROTO_UDP, 53, 0, false, "the rest of the /24 denied" },
		{ "169.254.169.254", IPPROTO_TCP, 80, 0, false, "link-local denied" },
		{ "203.0.113.5", IPPROTO_TCP, 443, 0, true, "no match: allowed" },
		{ "192.0.2.1", IPPROTO_UDP, 53, 0, true, "host: opened udp/53" },
		{ "192.0.2.1", IPPROTO_TCP, 53, 0, false, "host: tcp/53 not opened" },
		{ "192.0.2.1", IPPROTO_TCP, 8080, 0, true, "host: opened tcp/8080" },
		{ "192.0.2.1", IPPROTO_ICMP, 8, 0, false, "host: no echo" },
		{ "100.64.0.1", IPPROTO_ICMP, 8, 0, true, "gateway: echo request" },
		{ "100.64.0.1", IPPROTO_ICMP, 0, 0, true, "gateway: echo reply" },
		{ "192.0.2.1", IPPROTO_ICMP, 0, 0, false, "host: no echo reply" },
		{ "100.64.0.1", IPPROTO_ICMP, 13, 0, false, "gateway: other ICMP refused" },
		{ "100.64.0.1", IPPROTO_UDP, 53, 0x0010, false, "host: a later fragment refused" },
		{ "100.64.0.1", IPPROTO_UDP, 53, 0x2000, true,
		  "host: a first fragment to an open port passes" },
		{ "fe80::1", IPPROTO_UDP, 53, 0, false, "v6 link-local denied" },
		{ "2001:db8::1", IPPROTO_UDP, 53, 0, true, "v6 host: opened udp/53" },
		{ "2001:db8::1", IPPROTO_UDP, 54, 0, false, "v6 host: udp/54 closed" },
		{ "2001:db8::1", IPPROTO_HOPOPTS, 53, 0, false,
		  "v6 host: extension header refused" },
		{ "fd6f:7869:647a::1", IPPROTO_ICMPV6, 128, 0, true, "v6 gateway: echo request" },
		{ "fd6f:7869:647a::1", IPPROTO_ICMPV6, 129, 0, true, "v6 gateway: echo reply" },
		{ "fd6f:7869:647a::1", IPPROTO_ICMPV6, 1, 0, false, "v6 gateway: other refused" },
	};
	struct ox_policy *p = ox_policy_create("t", 64, SOCKET_ID_ANY);
	unsigned int i;
	char err[128];
	uint8_t b[64];
	uint16_t n;

	EXPECT(p != NULL, "create: %s", rte_strerror(rte_errno));
	if (p == NULL)
		return;
	n = pkt(b, "198.51.100.7", IPPROTO_UDP, 53, 0);
	EXPECT(ox_policy_check(p, b, n), "an empty policy allows");
	add(p, "169.254.0.0/16", OX_POLICY_DENY);
	add(p, "198.51.100.0/24", OX_POLICY_DENY);
	add(p, "198.51.100.7/32", OX_POLICY_ALLOW);
	add(p, "192.0.2.1", OX_POLICY_HOST);
	add(p, "100.64.0.1", OX_POLICY_GATEWAY);
	add(p, "fe80::/10", OX_POLICY_DENY);
	add(p, "2001:db8::1", OX_POLICY_HOST);
	add(p, "fd6f:7869:647a::1", OX_POLICY_GATEWAY);
	EXPECT(ox_policy_open_list(p, "udp/53, tcp/8080", err, sizeof(err)) == 0, "open list");

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = pkt(b, cases[i].dst, cases[i].proto, cases[i].port, cases[i].frag);
		EXPECT(ox_policy_check(p, b, n) == cases[i].pass, "%s", cases[i].what);
	}
	n = pkt(b, "192.0.2.1", IPPROTO_UDP, 53, 0);
	EXPECT(!ox_policy_check(p, b, 22), "host: no room for the ports, refused");

	n = pkt(b, "2001:db8::2", IPPROTO_TCP, 22, 0);
	EXPECT(ox_policy_check(p, b, n), "v6 no match: allowed");
	add(p, "::/0", OX_POLICY_DENY);
	EXPECT(!ox_policy_check(p, b, n), "v6 /0 deny");
	n = pkt(b, "2001:db8::1", IPPROTO_UDP, 53, 0);
	EXPECT(ox_policy_check(p, b, n), "longer prefixes still win over /0");
	add(p, "0.0.0.0/0", OX_POLICY_DENY);
	n = pkt(b, "203.0.113.5", IPPROTO_TCP, 443, 0);
	EXPECT(!ox_policy_check(p, b, n), "v4 /0 deny");
	ox_policy_free(p);
}

static void
test_parse(void)
{
	static const char *const bad[] = {
		"10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "::/129",      "10.0.0.0/8x",
		"fe80::/-1",   "",	    "host",	"1.2.3.4/8/8",
	};
	struct ox_policy *p = ox_policy_create("tp", 4, SOCKET_ID_ANY);
	uint8_t addr[16], depth;
	char err[128];
	unsigned int i;
	bool v6;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT(ox_policy_parse_prefix(bad[i], &v6, addr, &depth) == -EINVAL, "'%s' refused",
		       bad[i]);
	EXPECT(ox_policy_parse_prefix("2001:db8::/32", &v6, addr, &depth) == 0 && v6 && depth == 32,
	       "v6 prefix");
	EXPECT(ox_policy_add_list(p, "10.0.0.0/8,,bogus", OX_POLICY_DENY, err, sizeof(err)) ==
			       -EINVAL &&
		       strstr(err, "'bogus'") != NULL,
	       "a bad item is named (%s)", err);
	EXPECT(ox_policy_open_list(p, "udp/0", err, sizeof(err)) == -EINVAL, "port 0");
	EXPECT(ox_policy_open_list(p, "sctp/5", err, sizeof(err)) == -EINVAL, "sctp");
	EXPECT(ox_policy_open_list(p, "udp/65536", err, sizeof(err)) == -EINVAL, "port 65536");
	EXPECT(ox_policy_add_list(p, "1.0.0.0/8,2.0.0.0/8,3.0.0.0/8,4.0.0.0/8,5.0.0.0/8",
				  OX_POLICY_DENY, err, sizeof(err)) == -ENOSPC,
	       "rules full");
	ox_policy_free(p);
}

int
main(int argc, char **argv)
{
	(void)argc;
	if (ox_test_eal_init(argv[0], "oxpol", "0", "512") != 0)
		return 77;
	test_decisions();
	test_parse();
	rte_eal_cleanup();
	return ox_test_finish("policy");
}
