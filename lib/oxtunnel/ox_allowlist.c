/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The allow-list: which client static keys may complete a handshake, with
 * an optional name, fixed tunnel addresses and a WireGuard preshared key
 * ("psk=" and its base64). Parsed whole into a sorted
 * array, so a reload builds a new list and swaps it in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ox_policer.h"
#include "private/ox_tunnel_private.h"

#define ALLOW_MAX_FILE (256u << 20)

void
ox_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The entries of a list of a million keys are 200 MB, sorted and walked
 * in random order: in transparent huge pages where the kernel has them, a
 * fault and a TLB entry per 2 MB rather than per 4 KB. Zeroed. Under
 * AddressSanitizer from the heap instead, where it watches the bounds. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OX_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define OX_ASAN 1
#endif

static void *
big_alloc(size_t len)
{
#ifdef OX_ASAN
	return calloc(1, len);
#else
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_HUGEPAGE);
	return p;
#endif
}

static void
big_free(void *p, size_t len)
{
#ifdef OX_ASAN
	(void)len;
	free(p);
#else
	munmap(p, len);
#endif
}

/* A base64 character's value, or -1 (public data: no need to hide which). */
static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* A public key's base64, plainly: what libsodium's constant-time decoder
 * (kept for secrets) costs was a seventh of a million-key reload. The same
 * checks: 43 characters of the alphabet, then '=', and the last one's two
 * low bits clear (one encoding per key). @return 0 or -EINVAL. */
static int
pubkey_from_base64(uint8_t key[OX_KEY_LEN], const char *s, size_t len)
{
	uint32_t acc = 0;
	unsigned int i, k = 0;
	int v;

	if (len != OX_KEY_B64_LEN || s[OX_KEY_B64_LEN - 1] != '=')
		return -EINVAL;
	for (i = 0; i < OX_KEY_B64_LEN - 1; i++) {
		v = b64_value(s[i]);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			key[k++] = (uint8_t)(acc >> 16);
			key[k++] = (uint8_t)(acc >> 8);
			key[k++] = (uint8_t)acc;
			acc = 0;
		}
	}
	/* 40 characters made 30 bytes; 3 more hold 18 bits: 16 and two zero. */
	if (acc & 3)
		return -EINVAL;
	key[k++] = (uint8_t)(acc >> 10);
	key[k] = (uint8_t)(acc >> 2);
	return 0;
}

/* The sort's element: a key's first 8 bytes (big-endian, so that numbers
 * order as the bytes do) and its entry's place. */
struct sort_ref {
	uint64_t head;
	uint32_t i;
};

static int
ref_cmp(const void *a, const void *b, void *arg)
{
	const struct sort_ref *x = a, *y = b;
	const struct ox_allow_entry *e = arg;

	if (x->head != y->head)
		return x->head < y->head ? -1 : 1;
	return memcmp(e[x->i].key, e[y->i].key, OX_KEY_LEN);
}

/* Sort entries by key: 16-byte references sorted, then the entries moved
 * into place along the permutation's cycles, each once. A qsort of the
 * entries themselves (about 200 bytes) compared by memcmp and moved them
 * about 20 times each. @return 0 or -ENOMEM. */
static int
sort_entries(struct ox_allow_entry *e, uint32_t n)
{
	struct ox_allow_entry tmp;
	struct sort_ref *ref;
	uint32_t i, j, k;

	ref = malloc(sizeof(*ref) * n);
	if (ref == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		uint64_t h;

		memcpy(&h, e[i].key, sizeof(h));
		ref[i].head = __builtin_bswap64(h);
		ref[i].i = i;
	}
	qsort_r(ref, n, sizeof(*ref), ref_cmp, e);
	/* ref[i].i: the entry that belongs at i. Follow each cycle once,
	 * marking a place done by pointing it at itself. */
	for (i = 0; i < n; i++) {
		if (ref[i].i == i)
			continue;
		tmp = e[i];
		j = i;
		while ((k = ref[j].i) != i) {
			e[j] = e[k];
			ref[j].i = j;
			j = k;
		}
		e[j] = tmp;
		ref[j].i = j;
	}
	sodium_memzero(&tmp, sizeof(tmp));
	free(ref);
	return 0;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool
name_ok(const char *t, size_t n)
{
	size_t i;

	if (n == 0 || n > 31)
		return false;
	if (t[0] >= '0' && t[0] <= '9')
		return false;
	for (i = 0; i < n; i++) {
		char c = t[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* "psk=" and 44 base64 characters: WireGuard's preshared key. */
static int
parse_psk(struct ox_allow_entry *e, const char *t, size_t n, char *err, size_t errlen)
{
	if (!sodium_is_zero(e->psk, OX_KEY_LEN)) {
		ox_errf(err, errlen, "line %u: a second preshared key", e->line);
		return -EINVAL;
	}
	if (ox_key_from_base64(e->psk, t + 4, n - 4) != 0 || sodium_is_zero(e->psk, OX_KEY_LEN)) {
		sodium_memzero(e->psk, OX_KEY_LEN);
		ox_errf(err, errlen, "line %u: psk= takes a base64 key of 44 characters, not zero",
			e->line);
		return -EINVAL;
	}
	return 0;
}

/* Every line's routed prefixes, gathered while the lines are read; the
 * group names go straight into the list. */
struct route_buf {
	struct ox_allow_route *r;
	uint32_t n, cap;
	struct ox_allowlist *al;
	uint32_t last_group; /* the one found last: lines in a row share one */
};

static int
route_push(struct route_buf *rb, struct ox_allow_entry *e, bool v6, const uint8_t *addr,
	   uint8_t depth, char *err, size_t errlen)
{
	if (e->route_n >= OX_ALLOW_ROUTES_PER_LINE) {
		ox_errf(err, errlen, "line %u: more than %u routed prefixes", e->line,
			OX_ALLOW_ROUTES_PER_LINE);
		return -E2BIG;
	}
	if (rb->n >= OX_ALLOW_ROUTES_MAX) {
		ox_errf(err, errlen, "line %u: more than %u routed prefixes in the list", e->line,
			OX_ALLOW_ROUTES_MAX);
		return -E2BIG;
	}
	if (rb->n == rb->cap) {
		uint32_t cap = rb->cap ? rb->cap * 2 : 16;
		struct ox_allow_route *nr = realloc(rb->r, sizeof(*nr) * cap);

		if (nr == NULL) {
			ox_errf(err, errlen, "out of memory at line %u", e->line);
			return -ENOMEM;
		}
		rb->r = nr;
		rb->cap = cap;
	}
	if (e->route_n == 0)
		e->route_first = rb->n;
	memset(&rb->r[rb->n], 0, sizeof(rb->r[rb->n]));
	memcpy(rb->r[rb->n].addr, addr, v6 ? 16 : 4);
	rb->r[rb->n].depth = depth;
	rb->r[rb->n].v6 = v6;
	rb->n++;
	e->route_n++;
	return 0;
}

/* True if @p a has bits set past the first @p depth of its @p bytes. */
static bool
host_bits(const uint8_t *a, unsigned int bytes, unsigned int depth)
{
	unsigned int i;

	for (i = depth / 8; i < bytes; i++) {
		uint8_t keep = i == depth / 8 ? (uint8_t)(0xff00 >> (depth % 8)) : 0;

		if ((a[i] & (uint8_t)~keep) != 0)
			return true;
	}
	return false;
}

/* "ADDR/LEN": a host's /32 or /128 is the fixed address (0 with *host set);
 * shorter, a routed prefix. */
static int
parse_prefix(struct route_buf *rb, struct ox_allow_entry *e, const char *t, size_t n, bool *host,
	     uint8_t a[16], bool *v6, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN + 5], *slash, *end;
	unsigned long depth;

	*host = false;
	if (n >= sizeof(buf)) {
		ox_errf(err, errlen, "line %u: '%.*s' is not a prefix", e->line,
			(int)(n > 64 ? 64 : n), t);
		return -EINVAL;
	}
	memcpy(buf, t, n);
	buf[n] = '\0';
	slash = strchr(buf, '/');
	*slash = '\0';
	*v6 = strchr(buf, ':') != NULL;
	if (inet_pton(*v6 ? AF_INET6 : AF_INET, buf, a) != 1 || slash[1] < '0' || slash[1] > '9') {
		ox_errf(err, errlen, "line %u: '%.*s' is not a prefix (ADDR/LEN)", e->line, (int)n,
			t);
		return -EINVAL;
	}
	errno = 0;
	depth = strtoul(slash + 1, &end, 10);
	if (*end != '\0' || errno != 0 || depth > (*v6 ? 128u : 32u)) {
		ox_errf(err, errlen, "line %u: '%.*s': the length is 0 to %u", e->line, (int)n, t,
			*v6 ? 128u : 32u);
		return -EINVAL;
	}
	if (depth == (*v6 ? 128u : 32u)) {
		*host = true;
		return 0;
	}
	/* The relay's exit is every client's default route. */
	if (depth == 0) {
		ox_errf(err, errlen,
			"line %u: '%.*s': a default route cannot be routed to a peer "
			"(the relay's exit is the default route)",
			e->line, (int)n, t);
		return -EINVAL;
	}
	if (host_bits(a, *v6 ? 16 : 4, (unsigned int)depth)) {
		ox_errf(err, errlen, "line %u: '%.*s' has host bits set after /%lu", e->line,
			(int)n, t, depth);
		return -EINVAL;
	}
	return route_push(rb, e, *v6, a, (uint8_t)depth, err, errlen);
}

/* "group=" and a name: the line's peer is in that group. */
static int
parse_group(struct route_buf *rb, struct ox_allow_entry *e, const char *t, size_t n, char *err,
	    size_t errlen)
{
	struct ox_allowlist *al = rb->al;
	const char *g = t + 6;
	size_t len = n - 6;
	uint32_t i;

	if (!name_ok(g, len)) {
		ox_errf(err, errlen,
			"line %u: group= takes a name ([A-Za-z_.-][A-Za-z0-9_.-]{0,30}), not "
			"'%.*s'",
			e->line, (int)(len > 64 ? 64 : len), g);
		return -EINVAL;
	}
	i = rb->last_group;
	if (i >= al->n_groups || strlen(al->group[i]) != len || memcmp(al->group[i], g, len) != 0)
		for (i = 0; i < al->n_groups; i++)
			if (strlen(al->group[i]) == len && memcmp(al->group[i], g, len) == 0)
				break;
	if (i == al->n_groups) {
		if (i == OX_ALLOW_GROUPS_MAX) {
			ox_errf(err, errlen, "line %u: group %.*s is one more than %u", e->line,
				(int)len, g, OX_ALLOW_GROUPS_MAX);
			return -E2BIG;
		}
		memcpy(al->group[i], g, len);
		al->group[i][len] = '\0';
		al->n_groups++;
	}
	rb->last_group = i;
	if (e->groups & (1ull << i)) {
		ox_errf(err, errlen, "line %u: group %.*s twice", e->line, (int)len, g);
		return -EINVAL;
	}
	e->groups |= 1ull << i;
	return 0;
}

/* "rate=" and a rate: NUMBER[.FRACTION] and a unit, bit kbit mbit gbit
 * (powers of 1000, as tc writes them), or a bare number of bits. */
static int
parse_rate(struct ox_allow_entry *e, const char *t, size_t n, char *err, size_t errlen)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = { { "", 1 },
		      { "bit", 1 },
		      { "kbit", 1000 },
		      { "mbit", 1000000 },
		      { "gbit", 1000000000 } };
	const char *v = t + 5, *end = t + n, *u;
	uint64_t whole = 0, frac = 0, scale = 1, rate = 0;
	unsigned int i, digits = 0;

	if (e->rate != 0)
		goto twice;
	for (u = v; u < end && *u >= '0' && *u <= '9' && digits < 12; u++, digits++)
		whole = whole * 10 + (uint64_t)(*u - '0');
	if (digits == 0)
		goto bad;
	if (u < end && *u == '.') {
		for (u++, digits = 0; u < end && *u >= '0' && *u <= '9' && digits < 6;
		     u++, digits++) {
			frac = frac * 10 + (uint64_t)(*u - '0');
			scale *= 10;
		}
		if (digits == 0)
			goto bad;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if ((size_t)(end - u) == strlen(units[i].unit) &&
		    strncasecmp(u, units[i].unit, (size_t)(end - u)) == 0)
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		goto bad;
	/* The rates lib/ratelimit's policer takes; checked before the product,
	 * which could wrap. */
	if (whole > OX_POLICER_RATE_MAX / units[i].mul)
		goto range;
	rate = whole * units[i].mul + frac * units[i].mul / scale;
	if (rate < OX_POLICER_RATE_MIN || rate > OX_POLICER_RATE_MAX)
		goto range;
	e->rate = rate;
	return 0;
bad:
	ox_errf(err, errlen,
		"line %u: rate= takes a rate such as 20mbit (units bit, kbit, mbit, gbit), "
		"not '%.*s'",
		e->line, (int)(n > 64 ? 64 : n), t);
	return -EINVAL;
range:
	ox_errf(err, errlen, "line %u: '%.*s' is outside 8kbit..400gbit", e->line,
		(int)(n > 64 ? 64 : n), t);
	return -ERANGE;
twice:
	ox_errf(err, errlen, "line %u: rate= twice", e->line);
	return -EINVAL;
}

/* @p n digits at @p t as a number, or -1. */
static int
digits_of(const char *t, unsigned int n)
{
	int v = 0;

	while (n-- > 0) {
		if (*t < '0' || *t > '9')
			return -1;
		v = v * 10 + (*t++ - '0');
	}
	return v;
}

/* "expires=YYYY-MM-DDTHH:MMZ": when the line stops admitting (UTC). */
static int
parse_expires(struct ox_allow_entry *e, const char *t, size_t n, char *err, size_t errlen)
{
	static const uint8_t mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *v = t + 8;
	int y, mo, d, h, mi;
	struct tm tm;
	time_t when;

	if (e->expires != 0) {
		ox_errf(err, errlen, "line %u: expires= twice", e->line);
		return -EINVAL;
	}
	/* One field at a time, each separator where it must be. */
	if (n - 8 != 17 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' ||
	    v[16] != 'Z')
		goto bad;
	y = digits_of(v, 4);
	mo = digits_of(v + 5, 2);
	d = digits_of(v + 8, 2);
	h = digits_of(v + 11, 2);
	mi = digits_of(v + 14, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 ||
	    mi < 0 || mi > 59)
		goto bad;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		goto bad;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	when = timegm(&tm);
	if (when <= 0)
		goto bad;
	e->expires = (int64_t)when;
	return 0;
bad:
	ox_errf(err, errlen, "line %u: expires= takes a UTC time as 2027-01-31T18:00Z, not '%.*s'",
		e->line, (int)(n > 64 ? 64 : n), t);
	return -EINVAL;
}

int64_t
ox_allowlist_next_expiry(const struct ox_allowlist *al, int64_t after)
{
	int64_t next = 0;
	uint32_t i;

	for (i = 0; i < al->n; i++)
		if (al->e[i].expires > after && (next == 0 || al->e[i].expires < next))
			next = al->e[i].expires;
	return next;
}

bool
ox_allow_entry_expired(const struct ox_allow_entry *e)
{
	struct timespec ts;

	if (e->expires == 0)
		return false;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec >= e->expires;
}

int
ox_allowlist_group(const struct ox_allowlist *al, const char *name)
{
	uint32_t i;

	for (i = 0; i < al->n_groups; i++)
		if (strcmp(al->group[i], name) == 0)
			return (int)i;
	return -1;
}

/* One token after the key: a name (second token only), an address, a
 * routed prefix, a preshared key, a group, a rate or an expiry. */
static int
parse_token(struct route_buf *rb, struct ox_allow_entry *e, const char *t, size_t n, int pos,
	    char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN];
	uint8_t a6[16];
	struct in_addr a4;
	bool host = false, v6;
	int ret;

	if (n >= 4 && memcmp(t, "psk=", 4) == 0)
		return parse_psk(e, t, n, err, errlen);
	if (n >= 6 && memcmp(t, "group=", 6) == 0)
		return parse_group(rb, e, t, n, err, errlen);
	if (n >= 5 && memcmp(t, "rate=", 5) == 0)
		return parse_rate(e, t, n, err, errlen);
	if (n >= 8 && memcmp(t, "expires=", 8) == 0)
		return parse_expires(e, t, n, err, errlen);
	if (memchr(t, '/', n) != NULL) {
		ret = parse_prefix(rb, e, t, n, &host, a6, &v6, err, errlen);
		if (ret != 0 || !host)
			return ret;
		/* A host's prefix: the fixed address, written plain. */
		inet_ntop(v6 ? AF_INET6 : AF_INET, a6, buf, sizeof(buf));
		t = buf;
		n = strlen(buf);
	}
	if (n < sizeof(buf)) {
		if (t != buf)
			memcpy(buf, t, n);
		buf[n] = '\0';
		if (memchr(buf, ':', n) != NULL && inet_pton(AF_INET6, buf, a6) == 1) {
			static const uint8_t zero[16];

			if (memcmp(e->v6, zero, 16) != 0) {
				ox_errf(err, errlen, "line %u: a second IPv6 address", e->line);
				return -EINVAL;
			}
			if (memcmp(a6, zero, 16) == 0) {
				ox_errf(err, errlen, "line %u: IPv6 address :: cannot be given out",
					e->line);
				return -EINVAL;
			}
			memcpy(e->v6, a6, 16);
			return 0;
		}
		if (inet_pton(AF_INET, buf, &a4) == 1) {
			if (e->v4 != 0) {
				ox_errf(err, errlen, "line %u: a second IPv4 address", e->line);
				return -EINVAL;
			}
			e->v4 = ntohl(a4.s_addr);
			if (e->v4 == 0) {
				ox_errf(err, errlen,
					"line %u: IPv4 address 0.0.0.0 cannot be given out",
					e->line);
				return -EINVAL;
			}
			return 0;
		}
	}
	if (pos == 1 && name_ok(t, n)) {
		memcpy(e->name, t, n);
		e->name[n] = '\0';
		return 0;
	}
	ox_errf(err, errlen, "line %u: '%.*s' is neither %s an IPv4 or IPv6 address", e->line,
		(int)(n > 64 ? 64 : n), t,
		pos == 1 ? "a name ([A-Za-z_.-][A-Za-z0-9_.-]{0,30}) nor" : "");
	return -EINVAL;
}

static int
parse_line(struct route_buf *rb, struct ox_allow_entry *e, const char *p, size_t len, char *err,
	   size_t errlen)
{
	size_t i = 0, start;
	int pos = 0, ret;

	for (;;) {
		while (i < len && is_space(p[i]))
			i++;
		if (i == len || p[i] == '#')
			break;
		start = i;
		while (i < len && !is_space(p[i]) && p[i] != '#')
			i++;
		if (pos == 0) {
			if (pubkey_from_base64(e->key, p + start, i - start) != 0) {
				ox_errf(err, errlen,
					"line %u: '%.*s' is not a base64 public key "
					"(44 characters)",
					e->line, (int)(i - start > 64 ? 64 : i - start), p + start);
				return -EINVAL;
			}
		} else {
			ret = parse_token(rb, e, p + start, i - start, pos, err, errlen);
			if (ret != 0)
				return ret;
		}
		pos++;
	}
	return pos; /* 0: blank or comment */
}

static int
v4_cmp(const void *a, const void *b)
{
	uint32_t x = (*(struct ox_allow_entry *const *)a)->v4;
	uint32_t y = (*(struct ox_allow_entry *const *)b)->v4;

	return x < y ? -1 : x > y;
}

static int
v6_cmp(const void *a, const void *b)
{
	return memcmp((*(struct ox_allow_entry *const *)a)->v6,
		      (*(struct ox_allow_entry *const *)b)->v6, 16);
}

/* Two keys with one fixed address would both be handed it. */
static int
check_addresses(const struct ox_allowlist *al, char *err, size_t errlen)
{
	static const uint8_t zero[16];
	struct ox_allow_entry **v;
	uint32_t i, n;
	int ret = 0;

	if (al->n < 2)
		return 0;
	v = malloc(sizeof(*v) * al->n);
	if (v == NULL)
		return -ENOMEM;
	for (i = 0, n = 0; i < al->n; i++)
		if (al->e[i].v4 != 0)
			v[n++] = &al->e[i];
	qsort(v, n, sizeof(*v), v4_cmp);
	for (i = 1; i < n; i++)
		if (v[i]->v4 == v[i - 1]->v4) {
			ox_errf(err, errlen, "lines %u and %u: the same IPv4 address",
				v[i - 1]->line, v[i]->line);
			ret = -EINVAL;
			goto out;
		}
	for (i = 0, n = 0; i < al->n; i++)
		if (memcmp(al->e[i].v6, zero, 16) != 0)
			v[n++] = &al->e[i];
	qsort(v, n, sizeof(*v), v6_cmp);
	for (i = 1; i < n; i++)
		if (memcmp(v[i]->v6, v[i - 1]->v6, 16) == 0) {
			ox_errf(err, errlen, "lines %u and %u: the same IPv6 address",
				v[i - 1]->line, v[i]->line);
			ret = -EINVAL;
			goto out;
		}
out:
	free(v);
	return ret;
}

/* A route's first and last address, big-endian in 16 bytes (IPv4 in the
 * last four), so that memcmp() orders them. */
static void
route_span(const struct ox_allow_route *r, uint8_t lo[16], uint8_t hi[16])
{
	unsigned int bytes = r->v6 ? 16 : 4, off = 16 - bytes, i;

	memset(lo, 0, 16);
	memcpy(lo + off, r->addr, bytes);
	memcpy(hi, lo, 16);
	for (i = r->depth / 8; i < bytes; i++)
		hi[off + i] |= i == r->depth / 8u ? (uint8_t)(0xff >> (r->depth % 8)) : 0xff;
}

static int
route_cmp(const void *a, const void *b)
{
	const struct ox_allow_route *x = *(const struct ox_allow_route *const *)a;
	const struct ox_allow_route *y = *(const struct ox_allow_route *const *)b;
	uint8_t xl[16], xh[16], yl[16], yh[16];
	int c;

	if (x->v6 != y->v6)
		return x->v6 ? 1 : -1;
	route_span(x, xl, xh);
	route_span(y, yl, yh);
	c = memcmp(xl, yl, 16);
	return c != 0 ? c : x->depth - y->depth;
}

bool
ox_allow_route_eq(const struct ox_allow_route *a, const struct ox_allow_route *b)
{
	return a->v6 == b->v6 && a->depth == b->depth &&
	       memcmp(a->addr, b->addr, a->v6 ? 16 : 4) == 0;
}

void
ox_allow_route_str(const struct ox_allow_route *r, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(r->v6 ? AF_INET6 : AF_INET, r->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, r->depth);
}

/* Two prefixes overlap when one holds the other: in order of first address,
 * each is checked against the one before it that reaches furthest. One
 * destination has one peer. */
static int
check_routes(const struct ox_allowlist *al, char *err, size_t errlen)
{
	const struct ox_allow_route **v, *reach = NULL;
	uint8_t lo[16], hi[16], reach_hi[16];
	uint32_t i;
	int ret = 0;

	if (al->n_routes < 2)
		return 0;
	v = malloc(sizeof(*v) * al->n_routes);
	if (v == NULL)
		return -ENOMEM;
	for (i = 0; i < al->n_routes; i++)
		v[i] = &al->routes[i];
	qsort(v, al->n_routes, sizeof(*v), route_cmp);
	for (i = 0; i < al->n_routes; i++) {
		route_span(v[i], lo, hi);
		if (reach != NULL && reach->v6 == v[i]->v6 && memcmp(lo, reach_hi, 16) <= 0) {
			char a[64], b[64];
			uint32_t la = al->e[reach->entry].line, lb = al->e[v[i]->entry].line;

			ox_allow_route_str(reach, a, sizeof(a));
			ox_allow_route_str(v[i], b, sizeof(b));
			if (la == lb)
				ox_errf(err, errlen, "line %u: prefixes %s and %s overlap", la, a,
					b);
			else
				ox_errf(err, errlen,
					"lines %u and %u: prefixes %s and %s overlap (a "
					"destination routed to two peers)",
					la < lb ? la : lb, la < lb ? lb : la, la < lb ? a : b,
					la < lb ? b : a);
			ret = -EINVAL;
			break;
		}
		if (reach == NULL || reach->v6 != v[i]->v6 || memcmp(hi, reach_hi, 16) > 0) {
			reach = v[i];
			memcpy(reach_hi, hi, 16);
		}
	}
	free(v);
	return ret;
}

int
ox_allowlist_parse(struct ox_allowlist *al, const char *text, size_t len,
		   const struct ox_allowlist *prev, uint32_t max_entries, char *err, size_t errlen)
{
	struct ox_allow_entry *e = NULL, *old;
	struct route_buf rb = { 0 };
	uint32_t n = 0, cap = 0, line = 0, i, k;
	size_t off = 0, eol;
	int ret;

	memset(al, 0, sizeof(*al));
	rb.al = al;
	/* Room for every line at once (as many as may be keys): a million
	 * entries doubled into place would be copied and wiped twice over. */
	for (eol = 0, k = 1; eol < len && k <= max_entries; k++) {
		const char *nl = memchr(text + eol, '\n', len - eol);

		if (nl == NULL)
			break;
		eol = (size_t)(nl - text) + 1;
	}
	e = big_alloc(sizeof(*e) * k);
	if (e == NULL) {
		ox_errf(err, errlen, "out of memory for %u lines", k);
		return -ENOMEM;
	}
	cap = k;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);

		eol = nl ? (size_t)(nl - text) : len;
		line++;
		if (memchr(text + off, '\0', eol - off) != NULL) {
			ox_errf(err, errlen, "line %u: NUL byte", line);
			ret = -EINVAL;
			goto fail;
		}
		if (n == cap) {
			/* Cannot be: cap is the lines, or max_entries + 1. */
			ox_errf(err, errlen, "line %u: more than %u keys", line, cap);
			ret = -E2BIG;
			goto fail;
		}
		memset(&e[n], 0, sizeof(e[n]));
		e[n].line = line;
		ret = parse_line(&rb, &e[n], text + off, eol - off, err, errlen);
		if (ret < 0)
			goto fail;
		if (ret > 0) {
			if (n >= max_entries) {
				ox_errf(err, errlen, "line %u: more than %u keys", line,
					max_entries);
				ret = -E2BIG;
				goto fail;
			}
			n++;
		}
		off = eol + 1;
	}
	if (n > 0 && sort_entries(e, n) != 0) {
		ox_errf(err, errlen, "out of memory to sort %u keys", n);
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 1; i < n; i++)
		if (memcmp(e[i].key, e[i - 1].key, OX_KEY_LEN) == 0) {
			ox_errf(err, errlen, "lines %u and %u: the same key",
				e[i - 1].line < e[i].line ? e[i - 1].line : e[i].line,
				e[i - 1].line < e[i].line ? e[i].line : e[i - 1].line);
			ret = -EINVAL;
			goto fail;
		}
	al->e = e;
	al->n = n;
	al->e_cap = cap;
	/* Each route names its peer by place in the sorted array. */
	for (i = 0; i < n; i++)
		for (k = 0; k < e[i].route_n; k++)
			rb.r[e[i].route_first + k].entry = i;
	al->routes = rb.r;
	al->n_routes = rb.n;
	ret = check_addresses(al, err, errlen);
	if (ret == 0)
		ret = check_routes(al, err, errlen);
	if (ret != 0)
		goto fail;
	if (prev != NULL) {
		al->ss_set = prev->ss_set;
		memcpy(al->ss_pub, prev->ss_pub, OX_KEY_LEN);
		/* Both sorted by key: one walk over the two, not a search each
		 * (a million of those are seconds of cache misses). */
		for (i = 0, k = 0; i < n && k < prev->n;) {
			int c = memcmp(e[i].key, prev->e[k].key, OX_KEY_LEN);

			if (c != 0) {
				i += c < 0;
				k += c > 0;
				continue;
			}
			old = &prev->e[k++];
			/* Other threads may be handshaking on prev. */
			ox_allow_entry_last_init(old, e[i].last_init);
			e[i].ss_ready =
				prev->ss_set && __atomic_load_n(&old->ss_ready, __ATOMIC_ACQUIRE);
			if (e[i].ss_ready)
				memcpy(e[i].ss, old->ss, OX_KEY_LEN);
			i++;
		}
	}
	return 0;
fail:
	if (e != NULL) {
		sodium_memzero(e, sizeof(*e) * cap);
		big_free(e, sizeof(*e) * cap);
	}
	free(rb.r);
	memset(al, 0, sizeof(*al));
	return ret;
}

static bool
has_psk(const struct ox_allowlist *al)
{
	uint32_t i;

	for (i = 0; i < al->n; i++)
		if (!sodium_is_zero(al->e[i].psk, OX_KEY_LEN))
			return true;
	return false;
}

int
ox_allowlist_load(struct ox_allowlist *al, const char *path, const struct ox_allowlist *prev,
		  uint32_t max_entries, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t r;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		ox_errf(err, errlen, "cannot open allow-list %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		ox_errf(err, errlen, "cannot stat allow-list %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		ox_errf(err, errlen, "allow-list %s is not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > ALLOW_MAX_FILE) {
		ret = -EFBIG;
		ox_errf(err, errlen, "allow-list %s is larger than %u MiB", path,
			ALLOW_MAX_FILE >> 20);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		ret = -ENOMEM;
		ox_errf(err, errlen, "allow-list %s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			ox_errf(err, errlen, "cannot read allow-list %s: %s", path,
				strerror(errno));
			goto out;
		}
		if (r == 0)
			break; /* shrank while read: parse what is there */
		got += (size_t)r;
	}
	ret = ox_allowlist_parse(al, buf, got, prev, max_entries, err, errlen);
	if (ret != 0 && err != NULL) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", err);
		ox_errf(err, errlen, "allow-list %s: %s", path, msg);
	}
	/* Preshared keys are secrets: held to the key file's rule. Refused,
	 * not warned about: a warning in a log nobody reads leaves the keys
	 * readable, and the fix (chmod 600) is one command. */
	if (ret == 0 && (st.st_mode & 077) != 0 && has_psk(al)) {
		ox_allowlist_free(al);
		ret = -EACCES;
		ox_errf(err, errlen,
			"allow-list %s holds preshared keys (psk=) and is accessible to "
			"others (mode %03o); chmod 600 it",
			path, (unsigned int)(st.st_mode & 0777));
	}
out:
	if (buf != NULL)
		sodium_memzero(buf, got);
	free(buf);
	close(fd);
	return ret;
}

/* The entry's handshake state is held for a few compares and copies, by
 * handshake threads only (never a packet path): a spin flag suffices. */
static void
init_lock(struct ox_allow_entry *e)
{
	while (__atomic_test_and_set(&e->init_lock, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&e->init_lock, __ATOMIC_RELAXED)) {
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
		}
}

static void
init_unlock(struct ox_allow_entry *e)
{
	__atomic_clear(&e->init_lock, __ATOMIC_RELEASE);
}

int
ox_allow_entry_accept(struct ox_allow_entry *e, const uint8_t ts[OX_TAI64N_LEN], uint64_t now_ns,
		      uint64_t min_gap_ns)
{
	int ret = 0;

	init_lock(e);
	if (memcmp(ts, e->last_init, OX_TAI64N_LEN) <= 0)
		ret = -OX_DROP_STALE_INIT;
	else if (min_gap_ns != 0 && e->last_init_ns != 0 && now_ns - e->last_init_ns < min_gap_ns)
		ret = -OX_DROP_INIT_FLOOD;
	if (ret == 0) {
		memcpy(e->last_init, ts, OX_TAI64N_LEN);
		e->last_init_ns = now_ns ? now_ns : 1;
	}
	init_unlock(e);
	return ret;
}

void
ox_allow_entry_last_init(struct ox_allow_entry *e, uint8_t ts[OX_TAI64N_LEN])
{
	init_lock(e);
	memcpy(ts, e->last_init, OX_TAI64N_LEN);
	init_unlock(e);
}

struct ox_allow_entry *
ox_allowlist_find(const struct ox_allowlist *al, const uint8_t key[OX_KEY_LEN])
{
	uint32_t lo = 0, hi = al->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(key, al->e[mid].key, OX_KEY_LEN);

		if (c == 0)
			return &al->e[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

void
ox_allowlist_free(struct ox_allowlist *al)
{
	/* Preshared keys: wiped at every reload and at exit. */
	if (al->e != NULL) {
		sodium_memzero(al->e, (size_t)al->n * sizeof(*al->e));
		big_free(al->e, (size_t)al->e_cap * sizeof(*al->e));
	}
	free(al->routes);
	memset(al, 0, sizeof(*al));
}
