/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_PKT_H
#define OX_PKT_H
/**
 * @file
 * Outer packet handling for the relay datapath: validation of
 * Ethernet / 802.1Q / IPv4 / IPv6 / UDP frames one condition at a time,
 * turning a received datagram into its reply in place (addresses and ports
 * swapped, checksums fixed incrementally), and the one builder of
 * Ethernet / IP / UDP headers for everything that sends a new datagram.
 *
 * Works on a contiguous frame (pointer and length) so that it is tested
 * without EAL; the server calls it on single-segment mbuf data.
 *
 * The UDP checksum is not part of the parse: a datagram that carries a MAC
 * or an AEAD tag is rejected by it if corrupted, and a second software pass
 * over every payload would buy nothing. Unauthenticated datagrams are
 * checked with ox_pkt_csum_check(), which also accepts the partial form a
 * sender on the same host leaves when it offloads its checksum
 * (CHECKSUM_PARTIAL: veth, bridges, containers), since AF_XDP in copy mode
 * hands the frame over before anything completes it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Why a frame was not accepted as a datagram for us; one counter each. */
#define OX_PKT_DROP_REASONS(X) \
	X(SHORT_FRAME, "short_frame") \
	X(NOT_IP, "not_ip") \
	X(BAD_IP_VERSION, "bad_ip_version") \
	X(BAD_IP_HDR_LEN, "bad_ip_hdr_len") \
	X(BAD_IP_LEN, "bad_ip_len") \
	X(BAD_IP_CSUM, "bad_ip_csum") \
	X(IP_FRAGMENT, "ip_fragment") \
	X(IP6_EXT_HDR, "ip6_ext_hdr") \
	X(NOT_UDP, "not_udp") \
	X(BAD_UDP_LEN, "bad_udp_len") \
	X(BAD_UDP_CSUM, "bad_udp_csum") \
	X(WRONG_PORT, "wrong_port")

/** TTL / hop limit of the IP packets the relay sends. */
#define OX_PKT_TTL 64

/** Outer drop reasons; functions return them negated, 0 is success. */
enum ox_pkt_drop {
	OX_PKT_DROP_NONE = 0,
/* clang-format off */
#define OX_PKT_ENUM(e, s) OX_PKT_DROP_##e,
	OX_PKT_DROP_REASONS(OX_PKT_ENUM)
#undef OX_PKT_ENUM
	OX_PKT_DROP_MAX
	/* clang-format on */
};

/** Name of each outer drop reason, indexed by enum ox_pkt_drop ([0] "none"). */
extern const char *const ox_pkt_drop_names[OX_PKT_DROP_MAX];

/** A validated UDP datagram inside a frame. */
struct ox_pkt {
	uint8_t *frame;	      /**< start of the Ethernet header */
	uint16_t l3_off;      /**< offset of the IP header */
	uint16_t l4_off;      /**< offset of the UDP header */
	uint16_t payload_off; /**< offset of the UDP payload */
	uint16_t payload_len; /**< UDP payload bytes (from the UDP length) */
	uint16_t frame_len;   /**< bytes of frame that belong to the packet */
	bool ipv6;	      /**< IPv6, else IPv4 */
};

/**
 * Validate a frame as an IPv4 or IPv6 UDP datagram to dst_port.
 *
 * Checks, in order and each once: Ethernet (with at most one VLAN tag) and
 * EtherType; IP version, header length, total length against the frame;
 * IPv4 header checksum; fragments; IPv6 extension headers; protocol; UDP
 * length against the IP payload; destination port. The UDP checksum is left
 * to ox_pkt_csum_check(). Bytes past the IP length (Ethernet padding) are
 * ignored. Never reads past frame + len.
 *
 * @param frame
 *   First byte of the Ethernet header.
 * @param len
 *   Bytes available at frame.
 * @param dst_port
 *   Accepted UDP destination port, host order; 0 accepts any (a client
 *   that receives on many ports).
 * @param out
 *   Filled on success.
 * @return
 *   0, or a negative enum ox_pkt_drop.
 */
int ox_pkt_parse(uint8_t *frame, uint32_t len, uint16_t dst_port, struct ox_pkt *out);

/**
 * ox_pkt_parse() accepting any of several UDP destination ports.
 *
 * @param ports_be
 *   The ports, network order.
 * @param n_ports
 *   How many; 0 accepts any.
 */
int ox_pkt_parse_ports(uint8_t *frame, uint32_t len, const uint16_t *ports_be, unsigned int n_ports,
		       struct ox_pkt *out);

/** What the UDP checksum field of a datagram holds (ox_pkt_csum_check()). */
enum ox_pkt_csum {
	OX_PKT_CSUM_NONE = 0,	 /**< zero: no checksum (IPv4 only) */
	OX_PKT_CSUM_FULL = 1,	 /**< a checksum of the whole datagram, and it verifies */
	OX_PKT_CSUM_PARTIAL = 2, /**< the pseudo-header sum only: the sender offloaded
				      the checksum and nothing completed it */
};

/**
 * Check the UDP checksum of a datagram nothing else authenticates. Cheap
 * forms first: zero (IPv4), then the partial form (one sum over the
 * pseudo-header), and only then a pass over the datagram.
 *
 * A reply built in place from a PARTIAL datagram needs its checksum
 * computed whole (ox_pkt_finish()): no hardware completes it on the way out.
 *
 * @param p
 *   Datagram from ox_pkt_parse().
 * @return
 *   The enum ox_pkt_csum form, or -OX_PKT_DROP_BAD_UDP_CSUM (wrong, or zero
 *   over IPv6, RFC 8200 8.1).
 */
int ox_pkt_csum_check(const struct ox_pkt *p);

/**
 * Turn a parsed datagram into its reply, in place: Ethernet and IP
 * addresses and UDP ports swapped, IPv4 TTL / IPv6 hop limit reset to
 * OX_PKT_TTL.
 * The payload is left as it is; the caller changes it and calls
 * ox_pkt_csum_update() (or ox_pkt_finish() for a payload of a new length).
 *
 * @param p
 *   Datagram from ox_pkt_parse().
 */
void ox_pkt_reply(struct ox_pkt *p);

/**
 * Fix the UDP checksum after a 16-bit aligned word of the payload changed
 * (RFC 1624). A zero IPv4 checksum stays zero (none used).
 *
 * @param p
 *   Datagram.
 * @param old_word
 *   Previous value of the word, as it was in memory (network order).
 * @param new_word
 *   New value, as it now is in memory.
 */
void ox_pkt_csum_update(struct ox_pkt *p, uint16_t old_word, uint16_t new_word);

/**
 * Set a new payload length and recompute the IP length, IPv4 header
 * checksum and the UDP checksum from scratch.
 *
 * @param p
 *   Datagram; its payload at frame + payload_off holds payload_len bytes.
 * @param payload_len
 *   New payload length.
 * @return
 *   New frame length.
 */
uint16_t ox_pkt_finish(struct ox_pkt *p, uint16_t payload_len);

/**
 * The UDP checksum of an IPv6 datagram (RFC 8200 8.1), as it goes on the
 * wire: never 0 (0xffff instead). Same result as DPDK's
 * rte_ipv6_udptcp_cksum(), summed 32 bits at a time into a 64-bit
 * accumulator: a quarter of its cost over a 1400-byte payload
 * (test/bench/csum-bench measures both).
 *
 * @param ip6
 *   IPv6 header, payload_len set; the UDP header follows it directly.
 * @param udp
 *   UDP header, its checksum field zero, then dgram_len - 8 payload bytes.
 * @return
 *   The checksum, in network order.
 */
struct rte_ipv6_hdr;
struct rte_udp_hdr;
uint16_t ox_pkt_udp6_cksum(const struct rte_ipv6_hdr *ip6, const struct rte_udp_hdr *udp);

/** Bytes of Ethernet, IP and UDP header ox_pkt_build() writes. */
#define OX_PKT_HDR_LEN(ipv6) (14u + ((ipv6) ? 40u : 20u) + 8u)
/** Bytes of IP and UDP header ox_pkt_build_ip() writes. */
#define OX_PKT_IP_HDR_LEN(ipv6) (((ipv6) ? 40u : 20u) + 8u)

/** The addresses of one UDP flow, as ox_pkt_build() writes them. */
struct ox_pkt_flow {
	uint8_t dst_mac[6];
	uint8_t src_mac[6];
	bool ipv6;
	uint8_t src_ip[16]; /**< IPv4 in the first 4 bytes */
	uint8_t dst_ip[16];
	uint16_t src_port; /**< network order */
	uint16_t dst_port; /**< network order */
};

/**
 * The flow that answers a parsed datagram: its addresses and ports swapped.
 *
 * @param f
 *   Flow to fill.
 * @param p
 *   Datagram from ox_pkt_parse().
 */
void ox_pkt_flow_reply(struct ox_pkt_flow *f, const struct ox_pkt *p);

/**
 * Write the IP and UDP headers of a new datagram in front of its payload:
 * IPv4 with DF set, TTL OX_PKT_TTL and its header checksum, or IPv6 with
 * hop limit OX_PKT_TTL.
 *
 * @param l3
 *   Where the IP header goes; the payload is at l3 + OX_PKT_IP_HDR_LEN(ipv6).
 * @param f
 *   Addresses and ports (the MAC addresses are not used).
 * @param payload_len
 *   UDP payload bytes.
 * @param csum
 *   OX_PKT_CSUM_NONE: no UDP checksum (IPv4; IPv6 always gets a full one),
 *   OX_PKT_CSUM_FULL: computed over the payload, OX_PKT_CSUM_PARTIAL: the
 *   pseudo-header sum only, for hardware to complete.
 * @return
 *   IP packet length.
 */
uint16_t ox_pkt_build_ip(uint8_t *l3, const struct ox_pkt_flow *f, uint16_t payload_len,
			 enum ox_pkt_csum csum);

/**
 * ox_pkt_build_ip() behind an Ethernet header.
 *
 * @param frame
 *   Where the Ethernet header goes; the payload is at
 *   frame + OX_PKT_HDR_LEN(f->ipv6).
 * @return
 *   Frame length.
 */
uint16_t ox_pkt_build(uint8_t *frame, const struct ox_pkt_flow *f, uint16_t payload_len,
		      enum ox_pkt_csum csum);

#endif /* OX_PKT_H */
