/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which peers may reach which, client to client (--c2c, --c2c-allow). The
 * allow-list's groups (group=NAME, up to 64) are a bitmap per line; a view
 * holds, for each group, the groups its members may send to, and each
 * session carries its own groups and the union of theirs (relay_sess.
 * groups, .reach), so the data plane decides with one AND, whatever the
 * number of groups or rules. The exit and the relay itself are not
 * clients: this never refuses a packet to them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"

static const char *const mode_names[] = {
	[RELAY_C2C_ALL] = "all",
	[RELAY_C2C_GROUP] = "group",
	[RELAY_C2C_NONE] = "none",
};

int
relay_c2c_mode(const char *s)
{
	unsigned int i;

	for (i = 0; i < RTE_DIM(mode_names); i++)
		if (strcmp(s, mode_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *
relay_c2c_mode_name(unsigned int mode)
{
	return mode < RTE_DIM(mode_names) ? mode_names[mode] : "?";
}

/* One "FROM:TO" of --c2c-allow, @p len bytes at @p t. @return 0, 1 (a
 * group no line names: the rule waits for one), or -EINVAL. */
static int
add_rule(struct relay_c2c *p, const struct ox_allowlist *al, const char *t, size_t len, char *err,
	 size_t errlen)
{
	char from[32], to[32];
	const char *colon = memchr(t, ':', len);
	size_t nf, nt;
	int f, g;

	nf = colon != NULL ? (size_t)(colon - t) : 0;
	nt = colon != NULL ? len - nf - 1 : 0;
	if (colon == NULL || nf == 0 || nt == 0 || nf >= sizeof(from) || nt >= sizeof(to) ||
	    memchr(colon + 1, ':', nt) != NULL) {
		snprintf(err, errlen, "--c2c-allow: '%.*s' is not FROM:TO (two group names)",
			 (int)(len > 64 ? 64 : len), t);
		return -EINVAL;
	}
	memcpy(from, t, nf);
	from[nf] = '\0';
	memcpy(to, colon + 1, nt);
	to[nt] = '\0';
	f = ox_allowlist_group(al, from);
	g = ox_allowlist_group(al, to);
	if (f < 0 || g < 0) {
		if (p->n_unknown++ == 0)
			snprintf(p->unknown, sizeof(p->unknown), "%s", f < 0 ? from : to);
		return 1;
	}
	p->reach_of[f] |= 1ull << g;
	return 0;
}

int
relay_c2c_build(const struct srv_server_conf *c, const struct ox_allowlist *al, struct relay_c2c *p,
		char *err, size_t errlen)
{
	const char *s = c->c2c_allow, *end;
	uint32_t i;
	int mode, ret;

	memset(p, 0, sizeof(*p));
	mode = relay_c2c_mode(c->c2c);
	if (mode < 0) {
		snprintf(err, errlen, "--c2c takes all, group or none, not '%s'", c->c2c);
		return -EINVAL;
	}
	p->mode = (uint8_t)mode;
	/* In group mode a peer reaches every group it is in. */
	for (i = 0; i < al->n_groups; i++)
		p->reach_of[i] = mode == RELAY_C2C_GROUP ? 1ull << i : 0;
	while (*s != '\0') {
		end = strchr(s, ',');
		if (end == NULL)
			end = s + strlen(s);
		ret = add_rule(p, al, s, (size_t)(end - s), err, errlen);
		if (ret < 0)
			return ret;
		p->n_rules++;
		s = *end == ',' ? end + 1 : end;
	}
	return 0;
}

uint64_t
relay_c2c_reach(const struct relay_c2c *p, uint64_t groups)
{
	uint64_t reach = 0;

	if (p->mode == RELAY_C2C_ALL)
		return RELAY_REACH_ALL;
	while (groups != 0) {
		reach |= p->reach_of[__builtin_ctzll(groups)];
		groups &= groups - 1;
	}
	return reach;
}

void
relay_c2c_apply(struct srv_relay *r, struct ox_session *sess, const struct ox_allow_entry *e)
{
	struct relay_sess *rs = ox_session_priv(sess);
	uint64_t groups = e != NULL ? e->groups : 0;

	/* Workers read them on every packet to this peer or from it: relaxed,
	 * as a packet decided a moment before a reload is no harm. */
	__atomic_store_n(&rs->groups, groups, __ATOMIC_RELAXED);
	__atomic_store_n(&rs->reach, relay_c2c_reach(&r->view->c2c, groups), __ATOMIC_RELAXED);
}

void
relay_c2c_say(const struct relay_c2c *p, const struct ox_allowlist *al)
{
	SRV_LOG(NOTICE, "client to client: %s, %u group(s) on the allow-list, %u rule(s)",
		relay_c2c_mode_name(p->mode), al->n_groups, p->n_rules);
	if (p->n_unknown != 0)
		SRV_LOG(WARNING,
			"--c2c-allow: %u rule(s) name a group no allow-list line has (%s first); "
			"they count once a line does",
			p->n_unknown, p->unknown);
}
