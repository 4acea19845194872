//go:build linux && cgo

/*
 * Pure logic shared by the client and the server: buffers, Go-compatible
 * JSON strings, the request codec, and the pieces of Go and libcontainer
 * behaviour the fast path must reproduce exactly (TrimSpace, Clean,
 * prepareEnv, the passwd lookup, LookPath). Tested through hooks.go.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fastexec.h"

void mxc_buf_add(struct mxc_buf *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

char *mxc_read_fd(int fd, size_t *len)
{
	struct mxc_buf b = {0};
	char tmp[8192];
	mxc_buf_add(&b, "", 0); /* a valid (empty) buffer even for an empty file */
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			mxc_buf_free(&b);
			return NULL;
		}
		if (n == 0)
			break;
		mxc_buf_add(&b, tmp, (size_t)n);
		if (b.len > (16u << 20))
			b.oom = 1;
	}
	if (b.oom) {
		mxc_buf_free(&b);
		errno = ENOMEM;
		return NULL;
	}
	*len = b.len;
	return b.p;
}

void mxc_buf_str(struct mxc_buf *b, const char *s) { mxc_buf_add(b, s, strlen(s)); }
void mxc_buf_char(struct mxc_buf *b, char c) { mxc_buf_add(b, &c, 1); }

void mxc_buf_free(struct mxc_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/*
 * decode_rune decodes one UTF-8 sequence as Go's utf8.DecodeRune: it
 * returns the rune and sets *size, or returns -1 with *size 1 for an
 * invalid byte (overlong forms, surrogates and values above U+10FFFF
 * included).
 */
static long decode_rune(const unsigned char *s, size_t n, size_t *size)
{
	*size = 1;
	if (n == 0)
		return -1;
	unsigned c = s[0];
	if (c < 0x80)
		return c;
	if (c < 0xC2 || c > 0xF4)
		return -1;
	if (c < 0xE0) {
		if (n < 2 || (s[1] & 0xC0) != 0x80)
			return -1;
		*size = 2;
		return ((long)(c & 0x1F) << 6) | (s[1] & 0x3F);
	}
	if (c < 0xF0) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return -1;
		if (c == 0xE0 && s[1] < 0xA0)
			return -1; /* overlong */
		if (c == 0xED && s[1] > 0x9F)
			return -1; /* surrogate */
		*size = 3;
		return ((long)(c & 0x0F) << 12) | ((long)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
	}
	if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
		return -1;
	if (c == 0xF0 && s[1] < 0x90)
		return -1;
	if (c == 0xF4 && s[1] > 0x8F)
		return -1;
	*size = 4;
	return ((long)(c & 0x07) << 18) | ((long)(s[1] & 0x3F) << 12) | ((long)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

void mxc_buf_json(struct mxc_buf *b, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	mxc_buf_char(b, '"');
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			/* Go's htmlSafeSet: printable ASCII but ", \, <, >, & */
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
				mxc_buf_char(b, (char)c);
				i++;
				continue;
			}
			char e[6] = {'\\', 0, 0, 0, 0, 0};
			switch (c) {
			case '\\':
			case '"':
				e[1] = (char)c;
				mxc_buf_add(b, e, 2);
				break;
			case '\b':
				mxc_buf_add(b, "\\b", 2);
				break;
			case '\f':
				mxc_buf_add(b, "\\f", 2);
				break;
			case '\n':
				mxc_buf_add(b, "\\n", 2);
				break;
			case '\r':
				mxc_buf_add(b, "\\r", 2);
				break;
			case '\t':
				mxc_buf_add(b, "\\t", 2);
				break;
			default:
				e[1] = 'u';
				e[2] = '0';
				e[3] = '0';
				e[4] = hex[c >> 4];
				e[5] = hex[c & 0xF];
				mxc_buf_add(b, e, 6);
			}
			i++;
			continue;
		}
		size_t size;
		long r = decode_rune(s + i, n - i, &size);
		if (r < 0) {
			mxc_buf_add(b, "\\ufffd", 6);
		} else if (r == 0x2028 || r == 0x2029) {
			mxc_buf_add(b, r == 0x2028 ? "\\u2028" : "\\u2029", 6);
		} else {
			mxc_buf_add(b, s + i, size);
		}
		i += size;
	}
	mxc_buf_char(b, '"');
}

int mxc_encode_request(const struct mxc_request *r, struct mxc_buf *out)
{
	struct mxc_request_hdr h = {
		.magic = MXC_REQ_MAGIC,
		.version = MXC_REQ_VERSION,
		.argc = (uint32_t)r->argc,
		.envc = (uint32_t)r->envc,
		.cwdlen = r->cwd ? (uint32_t)strlen(r->cwd) : 0,
	};
	if (r->argc < 1 || r->argc > MXC_REQ_MAX_STRINGS || r->envc < 0 || r->envc > MXC_REQ_MAX_STRINGS)
		return -1;
	mxc_buf_add(out, &h, sizeof h);
	if (r->cwd)
		mxc_buf_add(out, r->cwd, h.cwdlen);
	for (int i = 0; i < r->argc; i++)
		mxc_buf_add(out, r->argv[i], strlen(r->argv[i]) + 1);
	for (int i = 0; i < r->envc; i++)
		mxc_buf_add(out, r->env[i], strlen(r->env[i]) + 1);
	if (out->oom || out->len > MXC_REQ_MAX)
		return -1;
	return 0;
}

/* next_string returns the NUL-terminated string at *pos, or NULL. */
static char *next_string(char *data, size_t len, size_t *pos)
{
	if (*pos >= len)
		return NULL;
	char *s = data + *pos;
	char *z = memchr(s, '\0', len - *pos);
	if (!z)
		return NULL;
	*pos += (size_t)(z - s) + 1;
	return s;
}

int mxc_decode_request(char *data, size_t len, struct mxc_request *r)
{
	memset(r, 0, sizeof *r);
	struct mxc_request_hdr h;
	if (len < sizeof h || len > MXC_REQ_MAX)
		return -1;
	memcpy(&h, data, sizeof h);
	if (h.magic != MXC_REQ_MAGIC || h.version != MXC_REQ_VERSION)
		return -1;
	if (h.argc < 1 || h.argc > MXC_REQ_MAX_STRINGS || h.envc > MXC_REQ_MAX_STRINGS)
		return -1;
	size_t pos = sizeof h;
	if (h.cwdlen > len - pos)
		return -1;
	char *cwd = NULL;
	if (h.cwdlen > 0) {
		/* The cwd is not NUL-terminated on the wire: it must contain none. */
		if (memchr(data + pos, '\0', h.cwdlen))
			return -1;
		cwd = malloc(h.cwdlen + 1);
		if (!cwd)
			return -1;
		memcpy(cwd, data + pos, h.cwdlen);
		cwd[h.cwdlen] = '\0';
		pos += h.cwdlen;
	}
	r->cwd = cwd;
	r->argv = calloc(h.argc + 1, sizeof(char *));
	r->env = calloc(h.envc + 1, sizeof(char *));
	if (!r->argv || !r->env)
		goto fail;
	for (uint32_t i = 0; i < h.argc; i++)
		if (!(r->argv[i] = next_string(data, len, &pos)))
			goto fail;
	for (uint32_t i = 0; i < h.envc; i++)
		if (!(r->env[i] = next_string(data, len, &pos)))
			goto fail;
	if (pos != len)
		goto fail;
	r->argc = (int)h.argc;
	r->envc = (int)h.envc;
	return 0;
fail:
	mxc_free_request(r);
	return -1;
}

void mxc_free_request(struct mxc_request *r)
{
	free(r->cwd);
	free(r->argv);
	free(r->env);
	memset(r, 0, sizeof *r);
}

/* is_space is Go's unicode.IsSpace. */
static int is_space(long r)
{
	switch (r) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202F: case 0x205F: case 0x3000:
		return 1;
	}
	return r >= 0x2000 && r <= 0x200A;
}

void mxc_trim_space(const char *str, size_t n, size_t *start, size_t *end)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, size;
	while (i < n) {
		long r = decode_rune(s + i, n - i, &size);
		if (r < 0 || !is_space(r))
			break;
		i += size;
	}
	size_t j = n;
	while (j > i) {
		/* Find the start of the last rune (as utf8.DecodeLastRune). */
		size_t k = j - 1, lim = j > i + 4 ? j - 4 : i;
		while (k > lim && (s[k] & 0xC0) == 0x80)
			k--;
		long r = decode_rune(s + k, j - k, &size);
		if (r < 0 || k + size != j) {
			k = j - 1;
			r = -1;
		}
		if (r < 0 || !is_space(r))
			break;
		j = k;
	}
	*start = i;
	*end = j;
}

char *mxc_clean_path(const char *p)
{
	size_t n = strlen(p);
	char *out = malloc(n + 2);
	if (out)
		mxc_clean_into(p, n, out);
	return out;
}

void mxc_clean_into(const char *p, size_t n, char *out)
{
	int rooted = n > 0 && p[0] == '/';
	size_t w = 0, r = 0, dotdot = 0;
	if (rooted) {
		out[w++] = '/';
		r = 1;
		dotdot = 1;
	}
	while (r < n) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			for (; r < n && p[r] != '/'; r++)
				out[w++] = p[r];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
}

static int key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (int)(eq - kv) : -1;
}

int mxc_dedup_env(char **in, int n, char **out, int *home_set, const char **err)
{
	int m = 0;
	*home_set = 0;
	/* Walk backwards keeping the last occurrence of each key. */
	for (int i = n - 1; i >= 0; i--) {
		const char *kv = in[i];
		int k = key_len(kv);
		if (k < 0) {
			*err = "invalid environment variable: missing '='";
			return -1;
		}
		if (k == 0) {
			*err = "invalid environment variable: name cannot be empty";
			return -1;
		}
		int dup = 0;
		for (int j = i + 1; j < n && !dup; j++)
			dup = key_len(in[j]) == k && memcmp(in[j], kv, (size_t)k) == 0;
		if (dup)
			continue;
		if (k == 4 && memcmp(kv, "HOME", 4) == 0) {
			if (kv[5] == '\0')
				continue; /* an empty HOME is replaced by the passwd one */
			*home_set = 1;
		}
		out[m++] = (char *)kv;
	}
	for (int a = 0, b = m - 1; a < b; a++, b--) {
		char *t = out[a];
		out[a] = out[b];
		out[b] = t;
	}
	out[m] = NULL;
	return m;
}

/*
 * go_atoi is the value strconv.Atoi returns, errors ignored (as
 * moby/sys/user does): 0 on a syntax error, the clamped int64 on a range
 * error; ParseUint's loop decides which comes first.
 */
static long long go_atoi(const char *s, size_t n)
{
	size_t i = 0;
	int neg = 0;
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return 0;
	unsigned long long v = 0;
	int overflow = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		unsigned long long d = (unsigned long long)(s[i] - '0');
		if (v > (~0ULL - d) / 10) {
			overflow = 1; /* beyond uint64: ParseUint stops with ErrRange */
			break;
		}
		v = v * 10 + d;
	}
	unsigned long long cutoff = 1ULL << 63;
	if (!neg)
		return (overflow || v >= cutoff) ? INT64_MAX : (long long)v;
	if (overflow || v > cutoff)
		return INT64_MIN;
	return v == cutoff ? INT64_MIN : -(long long)v;
}

char *mxc_passwd_home(const char *data, size_t len, long uid, int readerr)
{
	if (readerr)
		return strdup("/");
	/* bufio.Scanner fails on a line of 64 KiB or more: then no user at all. */
	for (size_t at = 0; at < len;) {
		const char *nl = memchr(data + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - data) : len;
		if (end - at >= 64 * 1024)
			return strdup("/");
		at = end + 1;
	}
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - data) : len;
		size_t ll = end - pos;
		const char *line = data + pos;
		if (ll > 0 && line[ll - 1] == '\r')
			ll--; /* ScanLines drops a trailing \r */
		pos = nl ? end + 1 : len;
		size_t s, e;
		mxc_trim_space(line, ll, &s, &e);
		if (s == e)
			continue;
		/* name:pass:uid:gid:gecos:home:shell; missing fields stay zero. */
		const char *f = line + s;
		size_t fl = e - s;
		const char *fields[7] = {0};
		size_t flen[7] = {0};
		int nf = 0;
		size_t st = 0;
		for (size_t i = 0; i <= fl && nf < 7; i++) {
			if (i == fl || f[i] == ':') {
				fields[nf] = f + st;
				flen[nf] = i - st;
				nf++;
				st = i + 1;
			}
		}
		long long u = nf > 2 ? go_atoi(fields[2], flen[2]) : 0;
		if (u != uid)
			continue;
		char *home = malloc(flen[5] + 1);
		if (!home)
			return NULL;
		if (nf > 5)
			memcpy(home, fields[5], flen[5]);
		home[nf > 5 ? flen[5] : 0] = '\0';
		return home;
	}
	return strdup("/");
}

/* find_executable is os/exec's findExecutable. */
static int find_executable(const char *file)
{
	struct stat st;
	if (stat(file, &st) < 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		return -1;
	}
	if (syscall(SYS_faccessat2, AT_FDCWD, file, X_OK, AT_EACCESS) == 0)
		return 0;
	if (errno != ENOSYS && errno != EPERM)
		return -1;
	if (st.st_mode & 0111)
		return 0;
	errno = EACCES;
	return -1;
}

int mxc_lookpath(const char *file, const char *path, char **out) { return mxc_lookpath_dot(file, path, 0, out); }

int mxc_lookpath_dot(const char *file, const char *path, int accept_dot, char **out)
{
	*out = NULL;
	size_t half = mxc_lookpath_scratch(file, path);
	char *buf = malloc(2 * half);
	if (!buf)
		return -1;
	if (mxc_lookpath_into(file, path, accept_dot, buf, half) < 0) {
		int e = errno;
		free(buf);
		errno = e;
		return -1;
	}
	*out = buf;
	return 0;
}

size_t mxc_lookpath_scratch(const char *file, const char *path) { return strlen(path) + strlen(file) + 3; }

int mxc_lookpath_into(const char *file, const char *path, int accept_dot, char *buf, size_t half)
{
	if (strchr(file, '/')) {
		if (find_executable(file) < 0)
			return -1;
		memmove(buf, file, strlen(file) + 1);
		return 0;
	}
	/* filepath.SplitList("") is empty: nothing is searched. */
	if (file[0] == '\0' || path[0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	size_t fl = strlen(file);
	char *joined = buf + half, *clean = buf;
	const char *p = path;
	for (;;) {
		const char *c = strchr(p, ':');
		size_t dl = c ? (size_t)(c - p) : strlen(p);
		if (dl == 0) {
			joined[0] = '.';
			dl = 1;
		} else {
			memcpy(joined, p, dl);
		}
		joined[dl] = '/';
		memcpy(joined + dl + 1, file, fl + 1);
		mxc_clean_into(joined, dl + 1 + fl, clean);
		if (find_executable(clean) == 0) {
			if (clean[0] != '/' && !accept_dot) {
				/* Go returns exec.ErrDot here; leave that to the normal path. */
				errno = ENOENT;
				return -1;
			}
			return 0;
		}
		if (!c)
			break;
		p = c + 1;
	}
	errno = ENOENT;
	return -1;
}
