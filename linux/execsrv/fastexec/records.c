//go:build linux && cgo

/*
 * The record files the Go side writes for the C last step and the C
 * sandbox (format: linux/agentexec/records_linux.go). The decoder accepts
 * exactly one encoding of a plan: every length is checked against the
 * data before it is used, sizes and counts are bounded, reserved fields
 * must be zero, records come in non-decreasing type order and a singleton
 * at most once. Tested by a decode/encode round trip under fuzzing
 * (hooks.go, fastexec_test.go).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fastexec.h"

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* copy_path returns a NUL-terminated copy of a path payload, NULL if it is
 * empty, holds a NUL or memory is short. */
static char *copy_path(const unsigned char *p, size_t n)
{
	if (n == 0 || memchr(p, '\0', n))
		return NULL;
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int push_path(char ***list, int *n, char *s)
{
	if (*n >= MXC_MAX_SBPATHS)
		return -1;
	char **l = realloc(*list, sizeof(char *) * (size_t)(*n + 1));
	if (!l)
		return -1;
	l[(*n)++] = s;
	*list = l;
	return 0;
}

void mxc_free_plan(struct mxc_plan *p)
{
	for (int i = 0; i < p->nrules; i++)
		free(p->rules[i].path);
	free(p->rules);
	for (int i = 0; i < p->nprogs; i++)
		free(p->progs[i].insns);
	for (int i = 0; i < p->nrw; i++)
		free(p->rw[i]);
	free(p->rw);
	for (int i = 0; i < p->ndeny; i++)
		free(p->deny[i]);
	free(p->deny);
	memset(p, 0, sizeof *p);
}

int mxc_decode_plan(const unsigned char *d, size_t len, uint32_t magic, struct mxc_plan *p, const char **err)
{
	memset(p, 0, sizeof *p);
	*err = NULL;
#define BAD(msg)                  \
	do {                      \
		*err = (msg);     \
		goto fail;        \
	} while (0)
	if (len < 16 || len > MXC_REC_MAX)
		BAD("size");
	if (rd32(d) != magic)
		BAD("magic");
	if (rd32(d + 4) != MXC_REC_VERSION)
		BAD("version");
	if (rd64(d + 8) != (uint64_t)len)
		BAD("length");
	p->magic = magic;
	uint32_t last = 0;
	size_t pos = 16;
	while (pos < len) {
		if (len - pos < 8)
			BAD("truncated record header");
		uint32_t type = rd32(d + pos), n = rd32(d + pos + 4);
		pos += 8;
		if ((size_t)n > len - pos)
			BAD("truncated record");
		const unsigned char *v = d + pos;
		pos += n;
		if (type < last)
			BAD("record order");
		int repeatable = type == MXC_REC_LLRULE || type == MXC_REC_SECCOMP || type == MXC_REC_SBRW || type == MXC_REC_SBDENY;
		if (type == last && !repeatable)
			BAD("repeated record");
		last = type;
		int sandbox_only = type >= MXC_REC_SBKEY;
		if (type < MXC_REC_JSON || type > MXC_REC_SBDENY || (magic == MXC_REC_MAGIC_CONFIG && sandbox_only) ||
		    (magic == MXC_REC_MAGIC_SANDBOX && type == MXC_REC_JSON))
			BAD("record type");
		switch (type) {
		case MXC_REC_JSON:
			p->has_json = 1;
			p->json = v;
			p->json_len = n;
			break;
		case MXC_REC_CPLAN:
			if (n != 8 || rd32(v + 4) != 0 || (rd32(v) & ~MXC_CPLAN_REQUIRE))
				BAD("cplan record");
			p->cplan = 1;
			p->cflags = rd32(v);
			break;
		case MXC_REC_LANDLOCK:
			if (n != 40)
				BAD("landlock record");
			p->landlock = 1;
			p->ll_min_abi = rd32(v);
			p->ll_plan_abi = rd32(v + 4);
			p->ll_attrsize = rd32(v + 8);
			p->ll_apply = rd32(v + 12);
			p->ll_handled = rd64(v + 16);
			p->ll_scoped = rd64(v + 24);
			p->ll_flags = rd64(v + 32);
			if (p->ll_apply > 1 || (p->ll_attrsize != 8 && p->ll_attrsize != 16 && p->ll_attrsize != 24))
				BAD("landlock record");
			break;
		case MXC_REC_LLRULE: {
			if (!p->landlock || n < 9 || p->nrules >= MXC_MAX_RULES)
				BAD("landlock rule");
			char *path = copy_path(v + 8, n - 8);
			if (!path)
				BAD("landlock rule path");
			struct mxc_ll_rule *r = realloc(p->rules, sizeof *r * (size_t)(p->nrules + 1));
			if (!r) {
				free(path);
				BAD("memory");
			}
			p->rules = r;
			p->rules[p->nrules++] = (struct mxc_ll_rule){.access = rd64(v), .path = path};
			break;
		}
		case MXC_REC_SECCOMP: {
			if (n < 16 || (n - 8) % 8 != 0 || (n - 8) / 8 > MXC_BPF_MAXINSNS || rd32(v + 4) != 0 ||
			    p->nprogs >= MXC_MAX_PROGS)
				BAD("seccomp record");
			size_t sz = n - 8;
			void *insns = malloc(sz);
			if (!insns)
				BAD("memory");
			memcpy(insns, v + 8, sz);
			p->progs[p->nprogs++] = (struct mxc_prog){.flags = rd32(v), .len = (uint32_t)(sz / 8), .insns = insns};
			break;
		}
		case MXC_REC_SBKEY:
			if (n != 32)
				BAD("key record");
			p->has_key = 1;
			memcpy(p->key, v, 32);
			break;
		case MXC_REC_SBFLAGS:
			if (n != 16 || rd32(v + 4) != 0 || (rd32(v) & ~MXC_SB_HOSTNET))
				BAD("sandbox flags record");
			p->has_sbflags = 1;
			p->sbflags = rd32(v);
			p->capmask = rd64(v + 8);
			break;
		case MXC_REC_SBRW:
		case MXC_REC_SBDENY: {
			char *path = copy_path(v, n);
			if (!path)
				BAD("sandbox path");
			int r = type == MXC_REC_SBRW ? push_path(&p->rw, &p->nrw, path) : push_path(&p->deny, &p->ndeny, path);
			if (r < 0) {
				free(path);
				BAD("sandbox paths");
			}
			break;
		}
		}
	}
	if (magic == MXC_REC_MAGIC_SANDBOX && (!p->cplan || !p->has_key || !p->has_sbflags))
		BAD("incomplete sandbox plan");
	return 0;
fail:
#undef BAD
	mxc_free_plan(p);
	return -1;
}

static void add32(struct mxc_buf *b, uint32_t v) { mxc_buf_add(b, &v, sizeof v); }
static void add64(struct mxc_buf *b, uint64_t v) { mxc_buf_add(b, &v, sizeof v); }
static void rec(struct mxc_buf *b, uint32_t type, uint32_t n)
{
	add32(b, type);
	add32(b, n);
}

int mxc_encode_plan(const struct mxc_plan *p, struct mxc_buf *b)
{
	add32(b, p->magic);
	add32(b, MXC_REC_VERSION);
	add64(b, 0);
	if (p->has_json) {
		rec(b, MXC_REC_JSON, (uint32_t)p->json_len);
		mxc_buf_add(b, p->json, p->json_len);
	}
	if (p->cplan) {
		rec(b, MXC_REC_CPLAN, 8);
		add32(b, p->cflags);
		add32(b, 0);
	}
	if (p->landlock) {
		rec(b, MXC_REC_LANDLOCK, 40);
		add32(b, p->ll_min_abi);
		add32(b, p->ll_plan_abi);
		add32(b, p->ll_attrsize);
		add32(b, p->ll_apply);
		add64(b, p->ll_handled);
		add64(b, p->ll_scoped);
		add64(b, p->ll_flags);
	}
	for (int i = 0; i < p->nrules; i++) {
		size_t n = strlen(p->rules[i].path);
		rec(b, MXC_REC_LLRULE, (uint32_t)(8 + n));
		add64(b, p->rules[i].access);
		mxc_buf_add(b, p->rules[i].path, n);
	}
	for (int i = 0; i < p->nprogs; i++) {
		rec(b, MXC_REC_SECCOMP, 8 + 8 * p->progs[i].len);
		add32(b, p->progs[i].flags);
		add32(b, 0);
		mxc_buf_add(b, p->progs[i].insns, 8 * (size_t)p->progs[i].len);
	}
	if (p->has_key) {
		rec(b, MXC_REC_SBKEY, 32);
		mxc_buf_add(b, p->key, 32);
	}
	if (p->has_sbflags) {
		rec(b, MXC_REC_SBFLAGS, 16);
		add32(b, p->sbflags);
		add32(b, 0);
		add64(b, p->capmask);
	}
	for (int i = 0; i < p->nrw; i++) {
		rec(b, MXC_REC_SBRW, (uint32_t)strlen(p->rw[i]));
		mxc_buf_str(b, p->rw[i]);
	}
	for (int i = 0; i < p->ndeny; i++) {
		rec(b, MXC_REC_SBDENY, (uint32_t)strlen(p->deny[i]));
		mxc_buf_str(b, p->deny[i]);
	}
	if (b->oom)
		return -1;
	uint64_t total = b->len;
	memcpy(b->p + 8, &total, sizeof total);
	return 0;
}
