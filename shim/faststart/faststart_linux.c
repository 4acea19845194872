//go:build linux && cgo

/*
 * `containerd-shim-mxc-v2 ... start` handed to a spare shim, before the
 * Go runtime starts (see doc.go); and, in a spare, fds 3 and 4 held for
 * the task's sockets. Every path that is not the one case returns, and
 * the Go shim runs as if this file did not exist.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include "ctorargs.h"

/* package fastcleanup's shimc.h (that package is imported by this one's Go side) */
int mxc_shim_argv(int argc, char **argv, const char *verb, const char **id, const char **address);
int mxc_shim_write_all(int fd, const char *p, size_t n);

/* package shim's SpareDir, SpareFlag, spareMagic, statuses and bounds */
#define SPARE_DIR "/run/mxc-shim"
#define SPARE_FLAG "-mxc-spare"
#define MAGIC "MXCSPAR1"
#define SPARE_ARG_ROOM 256
#define SCHED_ENV "MXC_SPARE_SCHED"
#define ST_OK 0
#define ST_FALLBACK 1
#define ST_ERROR 2
#define MAX_STDIN (10 << 20)
#define MAX_PAYLOAD (1 << 20)
/* how long a start waits for the spare's answer */
#define REPLY_TIMEOUT_SEC 60
#define ENV_MODE "MXC_SHIM_SPARE"
/* pkg/shim's RunShim prefixes a failed start's error with the shim's name */
#define SHIM_NAME "io.containerd.mxc.v2"

static const char *getcwd_or_dash(void)
{
	static char cwd[PATH_MAX];
	return getcwd(cwd, sizeof cwd) ? cwd : "-";
}

/* hand_over returns to the Go start, saying why when asked to: in the
 * file MXC_SHIM_SPARE_DEBUG names (not on stderr, which containerd reads
 * together with stdout as the start's answer). */
static void hand_over(const char *why, const char *what)
{
	const char *path = getenv(ENV_MODE "_DEBUG");
	if (!path || path[0] != '/')
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	dprintf(fd, "containerd-shim-mxc-v2: start in %s: Go path: %s%s%s\n", getcwd_or_dash(), why, what ? ": " : "",
		what ? what : "");
	close(fd);
}

static int mode_off(void)
{
	const char *m = getenv(ENV_MODE);
	return m && (!strcmp(m, "0") || !strcmp(m, "off") || !strcmp(m, "false") || !strcmp(m, "no"));
}

/* is_start says whether argv is containerd's start command line
 * (mxc_shim_argv), with an address, stored in *address. */
static int is_start(int argc, char **argv, const char **address)
{
	const char *id;
	return mxc_shim_argv(argc, argv, "start", &id, address) && *address != NULL && (*address)[0] != 0;
}

/* mxc_spare_path is package shim's SparePath: FNV-1a 64 of the address. */
int mxc_spare_path(const char *address, char *out, size_t size)
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *)address; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	int n = snprintf(out, size, SPARE_DIR "/%016llx.sock", (unsigned long long)h);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

/* A growing buffer for the request. */
struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void put(struct buf *b, const void *data, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
	unsigned char le[4] = {v, v >> 8, v >> 16, v >> 24};
	put(b, le, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
	unsigned char le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(v >> (8 * i));
	put(b, le, 8);
}

static void put_str(struct buf *b, const char *s, size_t n)
{
	put_u32(b, (uint32_t)n);
	put(b, s, n);
}

/* read_full reads n bytes: 0 done, 1 EOF before any byte, -1 otherwise
 * (errno EAGAIN on the receive timeout). */
static int read_full(int fd, char *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EPIPE;
			return got == 0 ? 1 : -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* read_stdin reads what Go's start reads: at most MAX_STDIN bytes. */
static char *read_stdin(size_t *len)
{
	struct buf b = {0};
	char chunk[16384];
	for (;;) {
		size_t want = sizeof chunk;
		if (b.len + want > MAX_STDIN)
			want = MAX_STDIN - b.len;
		if (want == 0)
			break;
		ssize_t r = read(0, chunk, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(b.p);
			return NULL;
		}
		if (r == 0)
			break;
		put(&b, chunk, (size_t)r);
		if (b.failed) {
			free(b.p);
			return NULL;
		}
	}
	*len = b.len;
	return b.p ? b.p : calloc(1, 1);
}

/* restore_stdin gives the Go start the bytes this one read, from a memfd
 * at fd 0. It returns -1 if it could not (then the start cannot go on). */
static int restore_stdin(const char *data, size_t n)
{
	int fd = memfd_create("mxc-start-stdin", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (mxc_shim_write_all(fd, data, n) < 0 || lseek(fd, 0, SEEK_SET) < 0 || dup2(fd, 0) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* sched_entry is the SCHED_ENV entry a spawner gives a spare: its own
 * scheduling (policy, static priority, nice), which the spare runs with
 * once it is ready (package shim's restoreSched). */
static int sched_entry(char *out, size_t size)
{
	struct sched_param sp;
	int policy = sched_getscheduler(0);
	if (policy < 0 || sched_getparam(0, &sp) < 0)
		return -1;
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	if (errno)
		return -1;
	int n = snprintf(out, size, SCHED_ENV "=%d %d %d", policy & ~SCHED_RESET_ON_FORK, sp.sched_priority, nice);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

/* spawn_spare starts the next spare, as package shim's spawnSpare: its
 * own process group, / as working directory, stdio on /dev/null, the
 * start's environment with the collector off. The start process exits
 * next, so the spare's parent becomes init, as a spawned shim's does. */
static void spawn_spare(const char *address, char **envp)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return;
	self[n] = 0;
	pid_t pid = fork();
	if (pid != 0)
		return;
	setpgid(0, 0);
	int null = open("/dev/null", O_RDWR);
	if (null < 0)
		_exit(127);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	/* One call (Linux 5.9): a close per fd is a thousand system calls,
	 * each a trip through the hypervisor on some VMs. */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	if (chdir("/") < 0)
		_exit(127);
	size_t count = 0;
	for (char **e = envp; e && *e; e++)
		count++;
	char **env = calloc(count + 3, sizeof *env);
	if (!env)
		_exit(127);
	size_t k = 0;
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, "GOGC=", 5) && strncmp(*e, "MXC_GOGC_BEFORE=", 16) && strncmp(*e, SCHED_ENV "=", sizeof SCHED_ENV))
			env[k++] = *e;
	env[k++] = "GOGC=off"; /* helperheap.Env */
	static char sched[64];
	if (sched_entry(sched, sizeof sched) == 0)
		env[k++] = sched;
	env[k] = NULL;
	/* package shim's spareArgs: room for the command line of the shim
	 * the spare becomes */
	char *args[4 + SPARE_ARG_ROOM + 1] = {self, SPARE_FLAG, "-address", (char *)address};
	for (int i = 4; i < 4 + SPARE_ARG_ROOM; i++)
		args[i] = "";
	args[4 + SPARE_ARG_ROOM] = NULL;
	execve(self, args, env);
	_exit(127);
}

/* reserve_fds, in a spare: fds 3 and 4 held on /dev/null (close-on-exec)
 * so that the Go runtime puts nothing there; the task's sockets replace
 * them when the spare becomes its shim (package shim, become). */
static void reserve_fds(void)
{
	for (int fd = 3; fd <= 4; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null < 0)
			return;
		if (null != fd) {
			dup3(null, fd, O_CLOEXEC);
			close(null);
		}
	}
}

/* idle_sched, in a spare given SCHED_ENV: SCHED_IDLE for the Go
 * runtime's start-up and the spare's prewarm, which then use only CPU
 * that nothing else wants (the spare is spawned while a task is being
 * created); restoreSched puts the spawner's scheduling back before the
 * spare waits for a start. */
static void idle_sched(void)
{
	if (!getenv(SCHED_ENV))
		return;
	struct sched_param zero = {0};
	sched_setscheduler(0, SCHED_IDLE, &zero);
}

__attribute__((constructor)) static void mxc_shim_faststart(int cargc, char **cargv, char **cenvp)
{
	int argc;
	char **argv, **envp;
	if (!mxc_ctor_args(cargc, cargv, cenvp, &argc, &argv, &envp))
		return;
	if (argc >= 2 && !strcmp(argv[1], SPARE_FLAG)) {
		reserve_fds();
		idle_sched();
		return;
	}
	const char *address;
	if (!is_start(argc, argv, &address) || mode_off())
		return;
	const char *sc = getenv("SCHED_CORE");
	if (sc && sc[0]) {
		hand_over("SCHED_CORE is set", NULL);
		return;
	}
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	if (mxc_spare_path(address, path, sizeof path) < 0)
		return;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, path);
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
		hand_over("no spare", path);
		close(s);
		return;
	}
	struct stat st;
	char cwd[PATH_MAX];
	if (stat("/proc/self/exe", &st) < 0 || !getcwd(cwd, sizeof cwd)) {
		close(s);
		return;
	}
	size_t in_len;
	char *in = read_stdin(&in_len);
	if (!in) {
		/* what was read is lost: the Go start cannot read it either */
		fprintf(stderr, SHIM_NAME ": failed to read stdin: %s", strerror(errno));
		_exit(1);
	}

	struct buf req = {0};
	put(&req, MAGIC, 8);
	put_u64(&req, (uint64_t)st.st_dev);
	put_u64(&req, (uint64_t)st.st_ino);
	put_u32(&req, (uint32_t)argc);
	for (int i = 0; i < argc; i++)
		put_str(&req, argv[i], strlen(argv[i]));
	uint32_t envc = 0;
	for (char **e = envp; e && *e; e++)
		envc++;
	put_u32(&req, envc);
	for (char **e = envp; e && *e; e++)
		put_str(&req, *e, strlen(*e));
	put_str(&req, cwd, strlen(cwd));
	put_str(&req, in, in_len);

	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_SEC};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	unsigned char hdr[6];
	int r = -1;
	if (!req.failed && mxc_shim_write_all(s, req.p, req.len) == 0)
		r = read_full(s, (char *)hdr, sizeof hdr);
	free(req.p);
	if (r != 0) {
		if (r < 0 && errno == EAGAIN) {
			/* the spare took the start and did not answer */
			fprintf(stderr, SHIM_NAME ": the spare shim did not answer within %d s", REPLY_TIMEOUT_SEC);
			_exit(1);
		}
		/* the spare closed without reading (it was ending, or another
		 * start took it): nothing was done */
		close(s);
		if (restore_stdin(in, in_len) < 0) {
			fprintf(stderr, SHIM_NAME ": restore stdin: %s", strerror(errno));
			_exit(1);
		}
		free(in);
		hand_over("the spare did not take the start", NULL);
		return;
	}
	uint32_t plen = hdr[2] | hdr[3] << 8 | hdr[4] << 16 | (uint32_t)hdr[5] << 24;
	char *payload = plen <= MAX_PAYLOAD ? malloc(plen + 1) : NULL;
	if (!payload || read_full(s, payload, plen) != 0 || hdr[0] > ST_ERROR) {
		fprintf(stderr, SHIM_NAME ": bad answer from the spare shim");
		if (hdr[1])
			spawn_spare(address, envp);
		_exit(1);
	}
	payload[plen] = 0;
	close(s);
	int gone = hdr[1];
	switch (hdr[0]) {
	case ST_OK:
		if (gone)
			spawn_spare(address, envp);
		if (mxc_shim_write_all(1, payload, plen) < 0)
			_exit(1);
		_exit(0);
	case ST_ERROR:
		if (gone)
			spawn_spare(address, envp);
		fprintf(stderr, SHIM_NAME ": %s", payload);
		_exit(1);
	default: /* ST_FALLBACK: nothing was done */
		if (restore_stdin(in, in_len) < 0) {
			fprintf(stderr, SHIM_NAME ": restore stdin: %s", strerror(errno));
			_exit(1);
		}
		free(in);
		hand_over("the spare left the start to Go", payload);
		free(payload);
		return;
	}
}
