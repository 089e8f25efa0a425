/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The greatest handshake timestamp accepted from each key, kept beyond the
 * allow-list (a key removed and listed again) and, with a file, beyond the
 * process. The file is an append-only log, one "KEY HEX-TAI64N" line per
 * accepted handshake; opening it keeps the greatest per key and writes the
 * log anew, compacted. A line reaches the kernel before the handshake's
 * response is sent (a kill -9 of the process loses none), and the disk at
 * the next ox_tsstore_flush() (a power cut loses at most that interval).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "private/ox_tunnel_private.h"

struct ts_slot {
	uint8_t key[OX_KEY_LEN];
	uint8_t ts[OX_TAI64N_LEN];
	bool used;
};

struct ox_tsstore {
	struct ts_slot *t;
	uint32_t cap; /* power of two */
	uint32_t n;
	char *path; /* NULL: memory only */
	FILE *log;
	uint32_t logged; /* lines in the log since it was compacted */
	bool dirty;	 /* lines written but not flushed */
};

/* Keys are X25519 public keys: their first bytes are as good as a hash. */
static struct ts_slot *
slot_of(struct ox_tsstore *s, const uint8_t *key)
{
	uint64_t h;
	uint32_t i;

	memcpy(&h, key, sizeof(h));
	for (i = (uint32_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1))
		if (!s->t[i].used || memcmp(s->t[i].key, key, OX_KEY_LEN) == 0)
			return &s->t[i];
}

static int
grow(struct ox_tsstore *s)
{
	struct ts_slot *old = s->t, *n;
	uint32_t cap = s->cap, i;

	n = calloc((size_t)cap * 2, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	s->t = n;
	s->cap = cap * 2;
	for (i = 0; i < cap; i++)
		if (old[i].used)
			*slot_of(s, old[i].key) = old[i];
	sodium_memzero(old, (size_t)cap * sizeof(*old));
	free(old);
	return 0;
}

/* Raise a key's timestamp. @return 1 if it rose, 0 if not, or -ENOMEM. */
static int
raise_ts(struct ox_tsstore *s, const uint8_t *key, const uint8_t *ts)
{
	struct ts_slot *e;

	if (s->n * 2 >= s->cap && grow(s) != 0)
		return -ENOMEM;
	e = slot_of(s, key);
	if (!e->used) {
		memcpy(e->key, key, OX_KEY_LEN);
		e->used = true;
		s->n++;
	} else if (memcmp(ts, e->ts, OX_TAI64N_LEN) <= 0) {
		return 0;
	}
	memcpy(e->ts, ts, OX_TAI64N_LEN);
	return 1;
}

static void
put_line(FILE *f, const uint8_t *key, const uint8_t *ts)
{
	char b64[OX_KEY_B64_LEN + 1], hex[2 * OX_TAI64N_LEN + 1];

	ox_key_to_base64(b64, key);
	sodium_bin2hex(hex, sizeof(hex), ts, OX_TAI64N_LEN);
	fprintf(f, "%s %s\n", b64, hex);
}

/* Read a log; lines that do not parse (a torn last line) are skipped. */
static int
load(struct ox_tsstore *s, FILE *f)
{
	char line[160];
	uint8_t key[OX_KEY_LEN], ts[OX_TAI64N_LEN];
	size_t hexlen;

	while (fgets(line, sizeof(line), f) != NULL) {
		if (strlen(line) < OX_KEY_B64_LEN + 1 + 2 * OX_TAI64N_LEN ||
		    line[OX_KEY_B64_LEN] != ' ')
			continue;
		if (ox_key_from_base64(key, line, OX_KEY_B64_LEN) != 0)
			continue;
		if (sodium_hex2bin(ts, sizeof(ts), line + OX_KEY_B64_LEN + 1, 2 * OX_TAI64N_LEN,
				   NULL, &hexlen, NULL) != 0 ||
		    hexlen != OX_TAI64N_LEN)
			continue;
		if (raise_ts(s, key, ts) < 0)
			return -ENOMEM;
	}
	return ferror(f) ? -EIO : 0;
}

/* Write every key's timestamp to a new file and put it in place. */
static int
compact(struct ox_tsstore *s, char *err, size_t errlen)
{
	char tmp[4096];
	uint32_t i;
	FILE *f;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.new", s->path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		ox_errf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	for (i = 0; i < s->cap; i++)
		if (s->t[i].used)
			put_line(f, s->t[i].key, s->t[i].ts);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0) {
		ox_errf(err, errlen, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -EIO;
	}
	if (rename(tmp, s->path) != 0) {
		ox_errf(err, errlen, "%s: %s", s->path, strerror(errno));
		unlink(tmp);
		return -errno;
	}
	if (s->log != NULL)
		fclose(s->log);
	s->log = fopen(s->path, "ae");
	if (s->log == NULL) {
		ox_errf(err, errlen, "%s: %s", s->path, strerror(errno));
		return -errno;
	}
	s->logged = 0;
	return 0;
}

struct ox_tsstore *
ox_tsstore_open(const char *path, char *err, size_t errlen)
{
	struct ox_tsstore *s;
	FILE *f;
	int ret;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->cap = 64;
	s->t = calloc(s->cap, sizeof(*s->t));
	if (s->t == NULL)
		goto nomem;
	if (path == NULL || path[0] == '\0')
		return s;
	s->path = strdup(path);
	if (s->path == NULL)
		goto nomem;
	f = fopen(path, "re");
	if (f == NULL && errno != ENOENT) {
		ret = -errno;
		ox_errf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (f != NULL) {
		ret = load(s, f);
		fclose(f);
		if (ret != 0) {
			ox_errf(err, errlen, "%s: %s", path, strerror(-ret));
			goto fail;
		}
	}
	ret = compact(s, err, errlen);
	if (ret != 0)
		goto fail;
	return s;
nomem:
	ret = -ENOMEM;
	ox_errf(err, errlen, "out of memory");
fail:
	ox_tsstore_close(s);
	errno = -ret;
	return NULL;
}

void
ox_tsstore_close(struct ox_tsstore *s)
{
	if (s == NULL)
		return;
	if (s->log != NULL)
		fclose(s->log);
	if (s->t != NULL)
		sodium_memzero(s->t, (size_t)s->cap * sizeof(*s->t));
	free(s->t);
	free(s->path);
	free(s);
}

void
ox_tsstore_apply(struct ox_tsstore *s, struct ox_allowlist *al)
{
	uint32_t i;

	for (i = 0; i < al->n; i++) {
		struct ts_slot *e = slot_of(s, al->e[i].key);

		if (e->used && memcmp(e->ts, al->e[i].last_init, OX_TAI64N_LEN) > 0)
			memcpy(al->e[i].last_init, e->ts, OX_TAI64N_LEN);
	}
}

int
ox_tsstore_note(struct ox_tsstore *s, const uint8_t key[OX_KEY_LEN],
		const uint8_t ts[OX_TAI64N_LEN])
{
	int ret = raise_ts(s, key, ts);

	if (ret <= 0 || s->log == NULL)
		return ret < 0 ? ret : 0;
	put_line(s->log, key, ts);
	s->logged++;
	s->dirty = true;
	/* One write(2) per accepted handshake, against its Diffie-Hellman:
	 * in the kernel's page cache it outlives the process. */
	if (fflush(s->log) != 0)
		return -EIO;
	return 0;
}

int
ox_tsstore_flush(struct ox_tsstore *s, char *err, size_t errlen)
{
	if (s->log == NULL)
		return 0;
	/* A log four times the keys it speaks of is written anew. */
	if (s->logged > 4 * s->n + 1024)
		return compact(s, err, errlen);
	if (!s->dirty)
		return 0;
	s->dirty = false;
	if (fflush(s->log) != 0 || fdatasync(fileno(s->log)) != 0) {
		ox_errf(err, errlen, "%s: %s", s->path, strerror(errno));
		return -EIO;
	}
	return 0;
}
