//go:build linux && cgo

/*
 * libcontainer's state.json, read by `start` and `delete` without Go.
 *
 * Only the exact form libcontainer writes is read (encoding/json of its
 * State, fields in the struct's order, no indentation); anything else, and
 * any string with an escape in it, makes mxc_parse_state fail and the Go
 * CLI read the document. Inside a JSON string every '"' is escaped, so a
 * quote-delimited key found in the raw bytes is always a key of the
 * document's structure, never text an annotation or a path carried in.
 * start_test.go holds the reading to Go's on documents made by
 * encoding/json from libcontainer's State, hostile names included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fastexec.h"

static int lit(const char **p, const char *end, const char *s)
{
	size_t n = strlen(s);
	if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
		return 0;
	*p += n;
	return 1;
}

/* A non-negative integer as encoding/json writes one. */
static int uint_at(const char **p, const char *end, unsigned long long max, unsigned long long *v)
{
	const char *s = *p;
	if (s >= end || *s < '0' || *s > '9')
		return 0;
	if (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9')
		return 0;
	unsigned long long x = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (x > (max - d) / 10)
			return 0;
		x = x * 10 + d;
	}
	*v = x;
	*p = s;
	return 1;
}

/*
 * A JSON string without escapes (encoding/json escapes '"', '\\', control
 * characters, <, >, &, U+2028/9 and invalid UTF-8: any of those and the Go
 * CLI reads the document). *p is at the opening quote.
 */
static int plain_string(const char **p, const char *end, const char **s, size_t *n)
{
	const char *q = *p;
	if (q >= end || *q != '"')
		return 0;
	q++;
	const char *b = q;
	while (q < end && *q != '"') {
		if (*q == '\\' || (unsigned char)*q < 0x20)
			return 0;
		q++;
	}
	if (q >= end)
		return 0;
	*s = b;
	*n = (size_t)(q - b);
	*p = q + 1;
	return 1;
}

/* The first and the last occurrence of needle in data[0:len]. */
static const char *first_of(const char *data, size_t len, const char *needle)
{
	return memmem(data, len, needle, strlen(needle));
}

static const char *last_of(const char *data, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	if (len < n)
		return NULL;
	for (size_t i = len - n + 1; i-- > 0;)
		if (data[i] == needle[0] && memcmp(data + i, needle, n) == 0)
			return data + i;
	return NULL;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

void mxc_free_state(struct mxc_state *st)
{
	for (int i = 0; i < st->ncgroups; i++)
		free(st->cgroups[i]);
	free(st->cgroups);
	memset(st, 0, sizeof *st);
}

/* config's namespaces: [{"type":"T"} or {"type":"T","path":"P"}, ...];
 * *pid_private as configs.Namespaces.IsPrivate(NEWPID). */
static int namespaces(const char *data, size_t len, int *pid_private)
{
	const char *key = "\"namespaces\":[";
	const char *at = first_of(data, len, key);
	if (!at || last_of(data, len, key) != at)
		return -1;
	const char *p = at + strlen(key), *end = data + len;
	int seen = 0;
	*pid_private = 0;
	if (lit(&p, end, "]"))
		return 0;
	for (;;) {
		const char *t, *path = "";
		size_t tn, pn = 0;
		if (!lit(&p, end, "{\"type\":") || !plain_string(&p, end, &t, &tn))
			return -1;
		if (lit(&p, end, ",\"path\":") && !plain_string(&p, end, &path, &pn))
			return -1;
		if (!lit(&p, end, "}"))
			return -1;
		if (!seen && tn == 6 && !memcmp(t, "NEWPID", 6)) {
			seen = 1;
			*pid_private = pn == 0;
		}
		if (lit(&p, end, "]"))
			return 0;
		if (!lit(&p, end, ","))
			return -1;
	}
}

int mxc_parse_state(const char *data, size_t len, const char *id, struct mxc_state *st)
{
	memset(st, 0, sizeof *st);
	const char *p = data, *end = data + len;
	unsigned long long v, start;
	/*
	 * libcontainer's State starts with BaseState: id, init_process_pid,
	 * init_process_start, created, config.
	 */
	if (!lit(&p, end, "{\"id\":\"") || !lit(&p, end, id) || !lit(&p, end, "\",\"init_process_pid\":") ||
	    !uint_at(&p, end, INT_MAX, &v) || v == 0 || !lit(&p, end, ",\"init_process_start\":") ||
	    !uint_at(&p, end, ULLONG_MAX, &start) || !lit(&p, end, ",\"created\":\""))
		return -1;
	/*
	 * cgroup_paths comes after config, and namespace_paths (never omitted)
	 * right after it: the last such key is State's own. A key of that name
	 * inside config (a map key) sits earlier; when State has none (no
	 * cgroups: the key is omitted) what is found is not followed by
	 * namespace_paths, or is a net device's object, whose only key is
	 * "name": no freeze file, refused.
	 */
	const char *cg = last_of(data, len, ",\"cgroup_paths\":{");
	if (!cg)
		return -1;
	p = cg + strlen(",\"cgroup_paths\":{");
	const char *fz = NULL, *uni = NULL;
	size_t fzn = 0, unin = 0;
	if (!lit(&p, end, "}")) {
		for (;;) {
			const char *k, *val;
			size_t kn, vn;
			if (!plain_string(&p, end, &k, &kn) || !lit(&p, end, ":") || !plain_string(&p, end, &val, &vn))
				goto bad;
			if (kn == 7 && !memcmp(k, "freezer", 7)) {
				fz = val;
				fzn = vn;
			} else if (kn == 0) {
				uni = val;
				unin = vn;
			}
			char **more = realloc(st->cgroups, sizeof(char *) * (size_t)(st->ncgroups + 1));
			if (!more)
				goto bad;
			st->cgroups = more;
			if (!(st->cgroups[st->ncgroups] = dup_n(val, vn)))
				goto bad;
			st->ncgroups++;
			if (lit(&p, end, "}"))
				break;
			if (!lit(&p, end, ","))
				goto bad;
		}
	}
	if (!lit(&p, end, ",\"namespace_paths\":"))
		goto bad;
	/* What follows is State's own: namespace_paths, the descriptors, the
	 * Intel RDT paths (omitted when empty). */
	st->intelrdt = first_of(p, (size_t)(end - p), ",\"intel_rdt_path\":") != NULL;
	/* Hooks are config's, all six names always written, null when empty. */
	st->poststop = first_of(data, len, "\"poststop\":[") != NULL;
	if (namespaces(data, (size_t)(cg - data), &st->pid_private) < 0)
		goto bad;
	/* linux/container's FreezeFile: filepath.Join(path, file). */
	const char *dir, *file;
	size_t dn;
	if (fz && fzn) {
		dir = fz, dn = fzn, file = "freezer.state";
	} else if (uni && unin) {
		dir = uni, dn = unin, file = "cgroup.freeze";
	} else {
		goto bad;
	}
	char *joined = malloc(dn + strlen(file) + 2);
	if (!joined)
		goto bad;
	memcpy(joined, dir, dn);
	joined[dn] = '/';
	strcpy(joined + dn + 1, file);
	char *clean = mxc_clean_path(joined);
	free(joined);
	if (!clean || strlen(clean) >= sizeof st->freeze) {
		free(clean);
		goto bad;
	}
	strcpy(st->freeze, clean);
	free(clean);
	st->pid = (long)v;
	st->start = start;
	return 0;
bad:
	mxc_free_state(st);
	return -1;
}

char *mxc_read_file(const char *path, size_t *len)
{
	int fd = mxc_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0);
	if (fd < 0)
		return NULL;
	char *data = mxc_read_fd(fd, len);
	close(fd);
	return data;
}

char *mxc_join3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}
