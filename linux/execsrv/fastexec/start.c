//go:build linux && cgo

/*
 * `mxc-runtime [global flags] start ID` without starting Go.
 *
 * start is the container's exec fifo: the created init waits to open it
 * for writing; start opens it for reading, reads the byte the init writes,
 * waits until the init closes it (its exec) and removes it, as
 * libcontainer's Container.Exec does. That is a fraction of a millisecond
 * of work behind ~5 ms of Go start-up and state decoding, and every client
 * that creates and then starts (the containerd shim for docker, ctr and
 * CRI; podman) pays it once per container.
 *
 * Under the container's lock (tried without waiting: a holder means another
 * verb is at work, and the Go CLI waits for it), it checks what the Go
 * CLI's start checks -- the state dir and libcontainer's state.json, the
 * init alive with its recorded start time, its cgroup not frozen, the exec
 * fifo there -- and returns to the Go CLI on any doubt, before anything is
 * read from the fifo; the Go CLI then answers (and words every error) as
 * it always does. Once the init's byte is read the container is started
 * and the fast path is committed.
 *
 * MXC_START_FAST: "0" (or off/false/no) disables it; "require" makes a
 * start it would hand to the Go CLI fail instead (exit 255; for tests).
 * MXC_START_FAST_DEBUG=1 says on stderr which path a start took, and why.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fastexec.h"

#define DEFAULT_ROOT "/run/mxc"
/* libcontainer's state.json of a large config is tens of KiB. */
#define STATE_MAX (16u << 20)

static const char *reason;

static int why(const char *r)
{
	reason = r;
	return -1;
}

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

/* The last occurrence of needle in data. */
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

int mxc_parse_start_state(const char *data, size_t len, const char *id, long *pid, unsigned long long *start,
			  char *freeze, size_t cap)
{
	const char *p = data, *end = data + len;
	unsigned long long v, st;
	/*
	 * libcontainer's State starts with BaseState, fields in this order
	 * (encoding/json keeps the struct's order): id, init_process_pid,
	 * init_process_start, created, config.
	 */
	if (!lit(&p, end, "{\"id\":\"") || !lit(&p, end, id) || !lit(&p, end, "\",\"init_process_pid\":") ||
	    !uint_at(&p, end, INT_MAX, &v) || v == 0 || !lit(&p, end, ",\"init_process_start\":") ||
	    !uint_at(&p, end, ULLONG_MAX, &st) || !lit(&p, end, ",\"created\":\""))
		return -1;
	/*
	 * cgroup_paths comes after config, and namespace_paths (never omitted)
	 * right after it: the last such key is State's own. A key of that name
	 * inside config (a map key) sits earlier; when State has none (no
	 * cgroups: the key is omitted) what is found is not followed by
	 * namespace_paths, or has neither of the keys looked for.
	 */
	const char *cg = last_of(data, len, ",\"cgroup_paths\":{");
	if (!cg)
		return -1;
	p = cg + strlen(",\"cgroup_paths\":{");
	const char *fz = NULL, *uni = NULL;
	size_t fzn = 0, unin = 0;
	if (p < end && *p == '}') {
		p++;
	} else {
		for (;;) {
			const char *k, *val;
			size_t kn, vn;
			if (!plain_string(&p, end, &k, &kn) || !lit(&p, end, ":") || !plain_string(&p, end, &val, &vn))
				return -1;
			if (kn == 7 && !memcmp(k, "freezer", 7)) {
				fz = val;
				fzn = vn;
			} else if (kn == 0) {
				uni = val;
				unin = vn;
			}
			if (lit(&p, end, "}"))
				break;
			if (!lit(&p, end, ","))
				return -1;
		}
	}
	if (!lit(&p, end, ",\"namespace_paths\":"))
		return -1;
	/* linux/container's freezeFile: filepath.Join(path, file). */
	const char *dir, *file;
	size_t dn;
	if (fz && fzn) {
		dir = fz, dn = fzn, file = "freezer.state";
	} else if (uni && unin) {
		dir = uni, dn = unin, file = "cgroup.freeze";
	} else {
		return -1;
	}
	size_t fl = strlen(file);
	char *joined = malloc(dn + fl + 2);
	if (!joined)
		return -1;
	memcpy(joined, dir, dn);
	joined[dn] = '/';
	memcpy(joined + dn + 1, file, fl + 1);
	char *clean = mxc_clean_path(joined);
	free(joined);
	if (!clean)
		return -1;
	size_t cn = strlen(clean);
	if (cn >= cap) {
		free(clean);
		return -1;
	}
	memcpy(freeze, clean, cn + 1);
	free(clean);
	*pid = (long)v;
	*start = st;
	return 0;
}

/* read_state reads a whole state.json (malloc'd, NUL-terminated). */
static char *read_state(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	size_t cap = 64 << 10, n = 0;
	char *b = malloc(cap + 1);
	while (b) {
		if (n == cap) {
			if (cap >= STATE_MAX) {
				free(b);
				b = NULL;
				break;
			}
			cap *= 2;
			char *nb = realloc(b, cap + 1);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(b);
			b = NULL;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (b) {
		b[n] = '\0';
		*len = n;
	}
	return b;
}

struct attempt {
	char *root, *statedir, *fifo;
	int lockfd, logfd, fifofd;
};

static void undo(struct attempt *a)
{
	int *fds[] = {&a->fifofd, &a->logfd, &a->lockfd};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	free(a->root);
	free(a->statedir);
	free(a->fifo);
	a->root = a->statedir = a->fifo = NULL;
}

static char *join3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

/*
 * try_start does everything up to the first byte of the fifo. 0: the init
 * wrote its byte (committed); -1: the Go CLI must run the command.
 */
static int try_start(struct attempt *a, const struct mxc_globals *g, const char *id, int *committed)
{
	char cwd[PATH_MAX];
	const char *wd = getcwd(cwd, sizeof cwd);
	a->root = mxc_abs_root(g->root ? g->root : DEFAULT_ROOT, wd);
	if (!a->root)
		return why("--root");
	a->statedir = join3(a->root, "/", id);
	a->fifo = a->statedir ? join3(a->statedir, "/", "exec.fifo") : NULL;
	if (!a->fifo)
		return why("out of memory");
	struct stat st;
	if (lstat(a->statedir, &st) < 0 || !S_ISDIR(st.st_mode))
		return why("no state dir");
	if (g->log && g->log[0]) {
		/* As the CLI's `before`: the log file is created even if unused. */
		a->logfd = open(g->log, O_CREAT | O_WRONLY | O_APPEND | O_SYNC | O_CLOEXEC, 0644);
		if (a->logfd < 0)
			return why("cannot open --log");
	}
	/* linux/container's Lock: flock on <root>/.locks/<id>, the file
	 * still the one at that path once locked. */
	char *lock = join3(a->root, "/.locks/", id);
	if (!lock)
		return why("out of memory");
	a->lockfd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (a->lockfd < 0) {
		free(lock);
		return why("no lock file");
	}
	struct stat held, cur;
	int locked = flock(a->lockfd, LOCK_EX | LOCK_NB) == 0;
	int same = locked && fstat(a->lockfd, &held) == 0 && stat(lock, &cur) == 0 && held.st_ino == cur.st_ino &&
		   held.st_dev == cur.st_dev;
	free(lock);
	if (!locked)
		return why("another verb holds the container's lock");
	if (!same)
		return why("the lock file was replaced");

	char *path = join3(a->statedir, "/", "state.json");
	if (!path)
		return why("out of memory");
	size_t len = 0;
	char *data = read_state(path, &len);
	free(path);
	if (!data)
		return why("cannot read state.json");
	long pid;
	unsigned long long start;
	char freeze[PATH_MAX];
	int parsed = mxc_parse_start_state(data, len, id, &pid, &start, freeze, sizeof freeze);
	free(data);
	if (parsed < 0)
		return why("state.json is not in the form expected");
	/* libcontainer's Status: paused first, then the init, then the fifo. */
	if (mxc_frozen(freeze))
		return why("the container is paused (or its freezer cannot be read)");
	if (!mxc_process_is(pid, start, NULL))
		return why("the init is not running");
	if (stat(a->fifo, &st) < 0 || !S_ISFIFO(st.st_mode))
		return why("no exec fifo: not in the created state");
	/* Non-blocking: the init may not be in its open yet; poll says when
	 * its byte is there and when it closed its end. */
	a->fifofd = open(a->fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (a->fifofd < 0)
		return why("cannot open the exec fifo");
	for (;;) {
		struct pollfd pf = {.fd = a->fifofd, .events = POLLIN};
		int r = poll(&pf, 1, 100);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return why("poll on the exec fifo");
		if (r == 0) {
			/* As libcontainer's exec: an init gone meanwhile is the
			 * Go CLI's to report. */
			if (!mxc_process_is(pid, start, NULL))
				return why("the init exited before writing to the exec fifo");
			continue;
		}
		char b;
		ssize_t n = read(a->fifofd, &b, 1);
		if (n == 1) {
			*committed = 1;
			return 0;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		/* EOF (or an error) before the byte: nothing was consumed. */
		return why("the exec fifo closed without the init's byte");
	}
}

/* finish waits for the init to close its end (its exec), as io.ReadAll in
 * libcontainer's readFromExecFifo, and removes the fifo. */
static void finish(struct attempt *a) __attribute__((noreturn));
static void finish(struct attempt *a)
{
	char b[512];
	for (;;) {
		struct pollfd pf = {.fd = a->fifofd, .events = POLLIN};
		int r = poll(&pf, 1, 100);
		if (r < 0 && errno != EINTR)
			break;
		/* On a timeout too: once the byte was read, a writer is known,
		 * and read returns 0 only when it has closed. */
		ssize_t n = read(a->fifofd, b, sizeof b);
		if (n == 0)
			break;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
	}
	if (unlink(a->fifo) < 0 && errno != ENOENT) {
		fprintf(stderr, "mxc-runtime: start: remove %s: %s\n", a->fifo, strerror(errno));
		_exit(1);
	}
	_exit(0);
}

void mxc_start_main(int argc, char **argv)
{
	int mode = mxc_env_mode("MXC_START_FAST");
	if (mode == MXC_MODE_OFF)
		return;
	struct mxc_globals g;
	int i = mxc_parse_globals(argc, argv, "start", &g);
	/* Exactly `start ID`: a flag (--help) or more arguments are the Go
	 * CLI's to answer. */
	if (i < 0 || i != argc - 1 || argv[i][0] == '-' || !mxc_valid_id(argv[i]))
		return;
	const char *d = getenv("MXC_START_FAST_DEBUG");
	int debug = d && d[0] == '1';
	struct attempt a = {.lockfd = -1, .logfd = -1, .fifofd = -1};
	int committed = 0;
	if (try_start(&a, &g, argv[i], &committed) == 0 && committed) {
		if (debug)
			fprintf(stderr, "mxc-runtime: start: fast path\n");
		finish(&a);
	}
	undo(&a);
	if (mode == MXC_MODE_REQUIRE) {
		fprintf(stderr, "mxc-runtime: start failed: fast path required (MXC_START_FAST=require): %s\n",
			reason ? reason : "unknown");
		_exit(255);
	}
	if (debug)
		fprintf(stderr, "mxc-runtime: start: normal path: %s\n", reason ? reason : "unknown");
}
