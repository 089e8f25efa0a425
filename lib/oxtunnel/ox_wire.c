/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Clear fields of OxTunnel v2 and WireGuard datagrams, the OXPI probe,
 * BATCH plaintexts, key encodings and the TAI64N clock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "private/ox_tunnel_private.h"

static const char *const drop_names[OX_DROP_MAX] = { [OX_DROP_NONE] = "none",
#define OX_DROP_NAME(n, s) [OX_DROP_##n] = s,
						     OX_DROP_REASONS(OX_DROP_NAME)
#undef OX_DROP_NAME
};

const char *
ox_drop_name(int reason)
{
	if (reason < 0)
		reason = -reason;
	if (reason >= OX_DROP_MAX)
		return "?";
	return drop_names[reason];
}

int
ox_msg_parse(const uint8_t *buf, size_t len, struct ox_msg *m)
{
	if (len < OX_HDR_LEN)
		return -OX_DROP_TOO_SHORT;
	if (len > OX_MAX_DATAGRAM)
		return -OX_DROP_TOO_LONG;
	if (buf[0] != OX_MAGIC0)
		return -OX_DROP_BAD_MAGIC;
	if (buf[1] != OX_MAGIC1)
		return -OX_DROP_BAD_MAGIC;
	/* "OXPI" predates versions; 'P' has the high bit clear. */
	if (buf[2] == 'P' && buf[3] == 'I') {
		m->type = OX_MSG_PROBE;
		return OX_MSG_PROBE;
	}
	/* A probe's answer is for the prober, never for a relay. */
	if (buf[2] == 'P' && buf[3] == 'O')
		return -OX_DROP_UNEXPECTED;
	if (!(buf[2] & 0x80))
		return -OX_DROP_V1;
	if (buf[2] != OX_WIRE_VERSION)
		return -OX_DROP_BAD_VERSION;

	m->type = buf[3];
	m->counter = 0;
	switch (buf[3]) {
	case OX_MSG_INIT:
		if (len != OX_INIT_LEN)
			return -OX_DROP_BAD_LENGTH;
		break;
	case OX_MSG_RESPONSE:
		if (len != OX_RESPONSE_LEN)
			return -OX_DROP_BAD_LENGTH;
		break;
	case OX_MSG_COOKIE:
		if (len != OX_COOKIE_LEN)
			return -OX_DROP_BAD_LENGTH;
		break;
	case OX_MSG_DATA:
		if (len < OX_DATA_OVERHEAD)
			return -OX_DROP_BAD_LENGTH;
		m->counter = ox_get_le64(buf + 8);
		break;
	default:
		return -OX_DROP_BAD_TYPE;
	}
	m->index = ox_get_le32(buf + 4);
	return m->type;
}

bool
ox_match(const uint8_t *buf, size_t len)
{
	return len >= 2 && buf[0] == OX_MAGIC0 && buf[1] == OX_MAGIC1;
}

bool
ox_wg_match(const uint8_t *buf, size_t len)
{
	return len >= OX_HDR_LEN && buf[0] >= OX_MSG_INIT && buf[0] <= OX_MSG_DATA && buf[1] == 0 &&
	       buf[2] == 0 && buf[3] == 0;
}

int
ox_wg_msg_parse(const uint8_t *buf, size_t len, struct ox_msg *m)
{
	if (len < OX_HDR_LEN)
		return -OX_DROP_TOO_SHORT;
	if (len > OX_MAX_DATAGRAM)
		return -OX_DROP_TOO_LONG;
	/* The three reserved bytes are zero (read as one LE u32 with the type). */
	if (buf[1] != 0 || buf[2] != 0 || buf[3] != 0)
		return -OX_DROP_BAD_TYPE;
	m->type = buf[0];
	m->counter = 0;
	switch (buf[0]) {
	case OX_MSG_INIT:
		if (len != OX_INIT_LEN)
			return -OX_DROP_BAD_LENGTH;
		m->index = ox_get_le32(buf + 4);
		break;
	case OX_MSG_RESPONSE:
		if (len != OX_WG_RESPONSE_LEN)
			return -OX_DROP_BAD_LENGTH;
		m->index = ox_get_le32(buf + 8); /* after the sender's index */
		break;
	case OX_MSG_COOKIE:
		if (len != OX_COOKIE_LEN)
			return -OX_DROP_BAD_LENGTH;
		m->index = ox_get_le32(buf + 4);
		break;
	case OX_MSG_DATA:
		if (len < OX_DATA_OVERHEAD)
			return -OX_DROP_BAD_LENGTH;
		m->index = ox_get_le32(buf + 4);
		m->counter = ox_get_le64(buf + 8);
		break;
	default:
		return -OX_DROP_BAD_TYPE;
	}
	return m->type;
}

int
ox_probe_reply(uint8_t *buf, size_t len)
{
	if (len < OX_PROBE_MIN_LEN)
		return -OX_DROP_TOO_SHORT;
	if (len > OX_MAX_DATAGRAM)
		return -OX_DROP_TOO_LONG;
	if (memcmp(buf, "OXPI", 4) != 0)
		return -OX_DROP_BAD_MAGIC;
	buf[3] = 'O';
	return (int)len;
}

/* ---------------------------------------------------------------- keys */

void
ox_key_generate(uint8_t priv[OX_KEY_LEN], uint8_t pub[OX_KEY_LEN])
{
	do {
		randombytes_buf(priv, OX_KEY_LEN);
	} while (ox_key_public(pub, priv) != 0);
}

int
ox_key_public(uint8_t pub[OX_KEY_LEN], const uint8_t priv[OX_KEY_LEN])
{
	if (sodium_init() < 0)
		return -EIO;
	return crypto_scalarmult_base(pub, priv) == 0 ? 0 : -EINVAL;
}

void
ox_key_to_base64(char out[OX_KEY_B64_LEN + 1], const uint8_t key[OX_KEY_LEN])
{
	sodium_bin2base64(out, OX_KEY_B64_LEN + 1, key, OX_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

int
ox_key_from_base64(uint8_t key[OX_KEY_LEN], const char *s, size_t len)
{
	size_t binlen = 0;
	const char *end = NULL;

	if (len != OX_KEY_B64_LEN)
		return -EINVAL;
	/* 32 bytes end in one '=' whose preceding character has its two
	 * low bits clear; libsodium checks that (no malleable encodings). */
	if (sodium_base642bin(key, OX_KEY_LEN, s, len, NULL, &binlen, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return -EINVAL;
	if (binlen != OX_KEY_LEN)
		return -EINVAL;
	if (end != s + len)
		return -EINVAL;
	return 0;
}

int
ox_key_load(const char *path, uint8_t key[OX_KEY_LEN], char *err, size_t errlen)
{
	char buf[OX_KEY_B64_LEN + 64];
	struct stat st;
	ssize_t n;
	size_t len;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_mode & 077) {
		ret = -EPERM;
		snprintf(err, errlen,
			 "key file %s is accessible to others (mode %03o); "
			 "chmod 600 it",
			 path, (unsigned int)(st.st_mode & 0777));
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		goto out;
	}
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
			   buf[len - 1] == '\t'))
		len--;
	if (len != OX_KEY_B64_LEN) {
		ret = -EINVAL;
		snprintf(err, errlen,
			 "key file %s: expected one base64 key of %d "
			 "characters, found %zu bytes",
			 path, OX_KEY_B64_LEN, len);
		goto out;
	}
	ret = ox_key_from_base64(key, buf, len);
	if (ret != 0)
		snprintf(err, errlen, "key file %s: not a base64 key", path);
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return ret;
}

void
ox_tai64n_now(uint8_t out[12])
{
	struct timespec ts;
	uint64_t sec;
	uint32_t ns;

	clock_gettime(CLOCK_REALTIME, &ts);
	sec = (UINT64_C(1) << 62) + (uint64_t)ts.tv_sec;
	ns = (uint32_t)ts.tv_nsec;
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(sec >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(ns >> (24 - 8 * i));
}

/* ---------------------------------------------------------------- BATCH */

int
ox_batch_init(struct ox_batch *b, uint8_t *buf, size_t cap)
{
	if (cap < 3)
		return -ENOSPC;
	if (cap > OX_MAX_PLAINTEXT)
		cap = OX_MAX_PLAINTEXT;
	b->buf = buf;
	b->cap = cap;
	b->len = 3;
	b->count = 0;
	buf[0] = OX_INNER_BATCH;
	return 0;
}

int
ox_batch_add(struct ox_batch *b, const uint8_t *pkt, size_t len)
{
	if (len < OX_INNER_MIN)
		return -EINVAL;
	if (len > OX_MAX_PLAINTEXT)
		return -EINVAL;
	if (b->count >= OX_BATCH_MAX)
		return -ENOSPC;
	if (2 + len > b->cap - b->len)
		return -ENOSPC;
	b->buf[b->len] = (uint8_t)len;
	b->buf[b->len + 1] = (uint8_t)(len >> 8);
	memcpy(b->buf + b->len + 2, pkt, len);
	b->len += 2 + len;
	b->count++;
	return 0;
}

size_t
ox_batch_finish(struct ox_batch *b)
{
	b->buf[1] = (uint8_t)b->count;
	b->buf[2] = (uint8_t)(b->count >> 8);
	return b->len;
}

static int
batch_validate(const uint8_t *p, size_t len)
{
	size_t off = 3, plen;
	unsigned int count, i;

	if (len < 3)
		return -OX_DROP_BAD_BATCH;
	if (p[0] != OX_INNER_BATCH)
		return -OX_DROP_BAD_BATCH;
	count = p[1] | (unsigned int)p[2] << 8;
	if (count == 0)
		return -OX_DROP_BAD_BATCH;
	if (count > OX_BATCH_MAX)
		return -OX_DROP_BAD_BATCH;
	for (i = 0; i < count; i++) {
		if (len - off < 2)
			return -OX_DROP_BAD_BATCH;
		plen = p[off] | (size_t)p[off + 1] << 8;
		off += 2;
		if (plen < OX_INNER_MIN)
			return -OX_DROP_BAD_BATCH;
		if (plen > len - off)
			return -OX_DROP_BAD_BATCH;
		off += plen;
	}
	if (off != len)
		return -OX_DROP_BAD_BATCH;
	return 0;
}

int
ox_batch_next(const uint8_t *p, size_t len, size_t *off, const uint8_t **pkt, size_t *pkt_len)
{
	size_t plen;
	int ret;

	if (*off == 0) {
		ret = batch_validate(p, len);
		if (ret < 0)
			return ret;
		*off = 3;
	}
	if (*off >= len)
		return 0;
	/* Validated above; these only guard against a caller's own *off. */
	if (len - *off < 2)
		return -OX_DROP_BAD_BATCH;
	plen = p[*off] | (size_t)p[*off + 1] << 8;
	if (plen > len - *off - 2)
		return -OX_DROP_BAD_BATCH;
	*pkt = p + *off + 2;
	*pkt_len = plen;
	*off += 2 + plen;
	return 1;
}

/* ---------------------------------------------------------------- CONFIG */

int
ox_config_dns_parse(const char *list, struct ox_config *c, char *err, size_t errlen)
{
	const char *p = list, *end;
	char tok[INET6_ADDRSTRLEN];
	size_t n;

	memset(c, 0, sizeof(*c));
	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		for (end = p; *end != '\0' && *end != ',' && *end != ' '; end++)
			;
		n = (size_t)(end - p);
		if (c->n_dns == OX_CONFIG_DNS_MAX) {
			ox_errf(err, errlen, "more than %u DNS servers", OX_CONFIG_DNS_MAX);
			return -E2BIG;
		}
		if (n >= sizeof(tok))
			goto bad;
		memcpy(tok, p, n);
		tok[n] = '\0';
		if (inet_pton(AF_INET, tok, c->dns[c->n_dns].addr) == 1) {
			c->dns[c->n_dns].v6 = false;
		} else if (inet_pton(AF_INET6, tok, c->dns[c->n_dns].addr) == 1) {
			c->dns[c->n_dns].v6 = true;
		} else {
			goto bad;
		}
		/* Nobody's server: the unspecified address or a multicast one. */
		if (sodium_is_zero(c->dns[c->n_dns].addr, c->dns[c->n_dns].v6 ? 16 : 4) ||
		    (!c->dns[c->n_dns].v6 && c->dns[c->n_dns].addr[0] >= 224) ||
		    (c->dns[c->n_dns].v6 && c->dns[c->n_dns].addr[0] == 0xff))
			goto bad;
		c->n_dns++;
		p = end;
	}
	return 0;
bad:
	ox_errf(err, errlen, "'%.*s' is not a DNS server's IPv4 or IPv6 address",
		(int)(n > 64 ? 64 : n), p);
	return -EINVAL;
}

size_t
ox_config_put(const struct ox_config *c, uint8_t *pt)
{
	size_t o = 0;
	unsigned int i;

	pt[o++] = OX_INNER_CONFIG;
	for (i = 0; i < c->n_dns && i < OX_CONFIG_DNS_MAX; i++) {
		uint8_t len = c->dns[i].v6 ? 16 : 4;

		pt[o++] = c->dns[i].v6 ? OX_CONFIG_DNS6 : OX_CONFIG_DNS4;
		pt[o++] = len;
		memcpy(pt + o, c->dns[i].addr, len);
		o += len;
	}
	return o;
}

int
ox_config_get(const uint8_t *pt, size_t len, struct ox_config *c)
{
	size_t o = 1;

	memset(c, 0, sizeof(*c));
	if (len < 1 || pt[0] != OX_INNER_CONFIG)
		return -OX_DROP_BAD_INNER;
	while (o < len) {
		uint8_t kind, ilen;

		if (len - o < 2)
			return -OX_DROP_BAD_INNER;
		kind = pt[o];
		ilen = pt[o + 1];
		o += 2;
		if (ilen > len - o)
			return -OX_DROP_BAD_INNER;
		if (kind == OX_CONFIG_DNS4 || kind == OX_CONFIG_DNS6) {
			bool v6 = kind == OX_CONFIG_DNS6;

			if (ilen != (v6 ? 16 : 4))
				return -OX_DROP_BAD_INNER;
			if (c->n_dns == OX_CONFIG_DNS_MAX)
				return -OX_DROP_BAD_INNER;
			if (sodium_is_zero(pt + o, ilen) || (!v6 && pt[o] >= 224) ||
			    (v6 && pt[o] == 0xff))
				return -OX_DROP_BAD_INNER;
			c->dns[c->n_dns].v6 = v6;
			memcpy(c->dns[c->n_dns].addr, pt + o, ilen);
			c->n_dns++;
		}
		/* Other kinds: a later relay's, skipped whole. */
		o += ilen;
	}
	return 0;
}
