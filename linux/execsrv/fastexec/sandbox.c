//go:build linux && cgo

/*
 * `mxc-runtime sandbox --policy FILE [--] CMD ARGS...` without starting Go,
 * for the common case: a root caller, a plan the Go side already compiled
 * for exactly this policy (linux/sandbox, cache_linux.go), and a network
 * namespace with loopback only (or the host's). It does what
 * sandbox.Run does for a root caller, in the same order: unshare the mount
 * (and network) namespace, make the host's view read-only but the
 * read-write trees, mask the denied paths, bring up lo, no_new_privs, the
 * capability bound, then the last step (laststep.c) and execve in place:
 * the command keeps the pid, stdio, terminal, signals and exit status.
 *
 * The plan cache (/run/mxc-sandbox/plans/<key>) cannot be a way around a
 * policy: the key is the SHA-256 of the policy file's content, the node
 * config's content and the identity of this binary, and the plan repeats
 * it; every directory on the way and the plan itself must be root's and
 * writable by no one else, opened without following symlinks. Anything
 * else -- not root, a command line or a file the C path does not take
 * exactly as the Go CLI, no plan or a stale one, another Landlock ABI --
 * returns before anything changed, and the Go path runs (and writes the
 * plan for next time). MXC_SANDBOX_FAST=0 disables this path, "require"
 * makes a fallback fail (exit 125; tests and benchmarks);
 * MXC_SANDBOX_FAST_DEBUG=1 says which path ran and why.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#ifndef __GLIBC__
/* musl's sys/mount.h stops at mount(2); the mount API comes from the kernel's. */
#include <linux/mount.h>
#endif
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "fastexec.h"

#define PLAN_DIR_PARENT "mxc-sandbox"
#define PLAN_DIR "plans"
#define DEFAULT_CONFIG "/etc/mxc/config.yaml"
#define MAX_POLICY (1u << 20)
#define EXIT_SETUP 125

#define is mxc_is_flag

/* go_getenv is syscall.Getenv: the first entry of the name. */
static const char *go_getenv(char **envp, const char *name, int *found)
{
	size_t n = strlen(name);
	*found = 0;
	for (char **e = envp; e && *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=') {
			*found = 1;
			return *e + n + 1;
		}
	return NULL;
}

int mxc_parse_sandbox_cmdline(int argc, char **argv, char **envp, struct mxc_sbcmd *c)
{
	memset(c, 0, sizeof *c);
	struct mxc_globals g;
	int i = mxc_parse_globals(argc, argv, "sandbox", &g);
	/* --root: the sandbox keeps no state under it; --log creates a file,
	 * which is the Go CLI's to do. */
	if (i < 0 || g.nlog > 0 || g.nconfig > 1)
		return 0;
	const char *config = g.config;
	int nconfig = g.nconfig;
	int npolicy = 0, naudit = 0;
	while (i < argc) {
		const char *name = NULL, *value = NULL;
		size_t nl = 0;
		int r = mxc_parse_flag(argc, argv, &i, &name, &nl, &value);
		if (r == 0 || r == 2)
			break;
		if (r < 0)
			return 0;
		if (is(name, nl, "policy") || is(name, nl, "p")) {
			c->policy = value;
			npolicy++;
		} else if (is(name, nl, "audit")) {
			naudit++; /* only a networked sandbox (the Go path) writes it */
		} else {
			return 0;
		}
	}
	if (npolicy != 1 || naudit > 1 || c->policy[0] == '\0')
		return 0;
	char **args = argv + i;
	int n = argc - i;
	if (n > 0 && !strcmp(args[0], "--"))
		args++, n--;
	if (n == 0)
		return 0;
	c->argv = args;
	c->argc = n;
	if (nconfig) {
		c->config = config;
	} else {
		int found;
		const char *v = go_getenv(envp, "MXC_CONFIG", &found);
		c->config = found ? v : DEFAULT_CONFIG;
	}
	return 1;
}

void mxc_exe_identity(const struct stat *st, char *buf, size_t cap)
{
	snprintf(buf, cap, "%llu:%llu:%lld:%lld.%09ld:%lld.%09ld", (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
		 (long)st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, (long)st->st_ctim.tv_nsec);
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void mxc_sandbox_key(const unsigned char *pol, size_t pn, const unsigned char *node, size_t nn, const char *exe_id, unsigned char key[32])
{
	unsigned char h[32];
	char ph[65], nh[65];
	mxc_sha256(pol, pn, h);
	hex(h, 32, ph);
	if (node) {
		mxc_sha256(node, nn, h);
		hex(h, 32, nh);
	} else {
		strcpy(nh, "none");
	}
	struct mxc_buf b = {0};
	mxc_buf_str(&b, "mxc-sandbox-plan-v1\npolicy ");
	mxc_buf_str(&b, ph);
	mxc_buf_str(&b, "\nnode ");
	mxc_buf_str(&b, nh);
	mxc_buf_str(&b, "\nexe ");
	mxc_buf_str(&b, exe_id);
	mxc_buf_str(&b, "\n");
	if (b.oom)
		memset(key, 0, 32); /* matches no plan */
	else
		mxc_sha256(b.p, b.len, key);
	mxc_buf_free(&b);
}

int mxc_go_getwd(char **envp, char **out)
{
	*out = NULL;
	struct stat dot, d;
	if (stat(".", &dot) < 0)
		return 1;
	int found;
	const char *pwd = go_getenv(envp, "PWD", &found);
	if (pwd && pwd[0] == '/' && stat(pwd, &d) == 0 && d.st_dev == dot.st_dev && d.st_ino == dot.st_ino) {
		*out = strdup(pwd);
		return 1;
	}
	char buf[4096];
	long n;
	do
		n = syscall(SYS_getcwd, buf, sizeof buf);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ENAMETOOLONG ? 0 : 1; /* Go's slow path: leave it to Go */
	if (n < 1 || n > (long)sizeof buf || buf[n - 1] != '\0' || buf[0] != '/')
		return 1;
	*out = strdup(buf);
	return 1;
}

/* read_file reads a regular file of at most max bytes: 0, -1 with errno
 * (ENOENT: none), or -2: not something the C path reads (the Go path
 * does). A FIFO or a terminal is never opened for reading twice. */
static int read_file(int dirfd, const char *path, size_t max, unsigned char **data, size_t *len, int trusted)
{
	int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (trusted ? O_NOFOLLOW : 0);
	int fd = mxc_openat(dirfd, path, flags, 0);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max ||
	    (trusted && (st.st_uid != 0 || (st.st_mode & 022) || st.st_nlink != 1))) {
		close(fd);
		return -2;
	}
	size_t n = (size_t)st.st_size, got = 0;
	unsigned char *buf = malloc(n + 1);
	if (!buf) {
		close(fd);
		return -2;
	}
	while (got <= n) {
		/* One byte beyond the size: a file that grew is not taken. */
		ssize_t r = read(fd, buf + got, n + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != n) {
		free(buf);
		return -2;
	}
	*data = buf;
	*len = n;
	return 0;
}

/* trusted_dir opens name under dirfd as a directory that is root's and
 * writable by no one else, without following a symlink. */
static int trusted_dir(int dirfd, const char *name)
{
	int fd = mxc_openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

static int open_plans_dir(void)
{
	int root = trusted_dir(AT_FDCWD, "/");
	if (root < 0)
		return -1;
	int run = trusted_dir(root, "run");
	close(root);
	if (run < 0)
		return -1;
	int sb = trusted_dir(run, PLAN_DIR_PARENT);
	close(run);
	if (sb < 0)
		return -1;
	int plans = trusted_dir(sb, PLAN_DIR);
	close(sb);
	return plans;
}

static void fail_setup(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail_setup(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dprintf(2, "mxc-runtime: sandbox: %s\n", msg);
	_exit(EXIT_SETUP);
}

/* setup_mounts is sandbox.setupMounts. */
static void setup_mounts(const struct mxc_plan *p)
{
	if (mount("", "/", "", MS_REC | MS_SLAVE, "") < 0)
		fail_setup("make mounts private: %s", strerror(errno));
	int *trees = calloc((size_t)p->nrw + 1, sizeof(int));
	if (!trees)
		fail_setup("out of memory");
	for (int i = 0; i < p->nrw; i++) {
		trees[i] = (int)syscall(SYS_open_tree, AT_FDCWD, p->rw[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (trees[i] < 0) {
			if (errno == ENOENT)
				continue; /* nothing there to grant */
			fail_setup("readwritePaths: open_tree %s: %s", p->rw[i], strerror(errno));
		}
	}
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof attr) < 0)
		fail_setup("make the host's view read-only: %s", strerror(errno));
	for (int i = 0; i < p->nrw; i++) {
		if (trees[i] < 0)
			continue;
		if (syscall(SYS_move_mount, trees[i], "", AT_FDCWD, p->rw[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
			fail_setup("readwritePaths: move_mount %s: %s", p->rw[i], strerror(errno));
	}
	/* classifyDenied: what exists, by what stat(2) says, files first. */
	char **clean = calloc((size_t)p->ndeny + 1, sizeof(char *));
	int *isdir = calloc((size_t)p->ndeny + 1, sizeof(int));
	if (!clean || !isdir)
		fail_setup("out of memory");
	for (int i = 0; i < p->ndeny; i++) {
		struct stat st;
		if (stat(p->deny[i], &st) < 0)
			continue;
		if (!(clean[i] = mxc_clean_path(p->deny[i])))
			fail_setup("out of memory");
		isdir[i] = S_ISDIR(st.st_mode);
	}
	for (int i = 0; i < p->ndeny; i++) {
		if (!clean[i] || isdir[i])
			continue;
		if (mount("/dev/null", clean[i], "", MS_BIND, "") < 0)
			fail_setup("deniedPaths: mask %s: %s", clean[i], strerror(errno));
		if (mount("", clean[i], "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV, "") < 0)
			fail_setup("deniedPaths: mask read-only %s: %s", clean[i], strerror(errno));
	}
	for (int i = 0; i < p->ndeny; i++) {
		if (!clean[i] || !isdir[i])
			continue;
		if (mount("tmpfs", clean[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0755") < 0)
			fail_setup("deniedPaths: mask %s: %s", clean[i], strerror(errno));
	}
	for (int i = 0; i < p->nrw; i++)
		if (trees[i] >= 0)
			close(trees[i]);
}

static void loopback_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail_setup("loopback: %s", strerror(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		fail_setup("loopback flags: %s", strerror(errno));
	ifr.ifr_flags = (short)(ifr.ifr_flags | IFF_UP);
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		fail_setup("loopback up: %s", strerror(errno));
	close(fd);
}

/* bound_caps is sandbox.boundCaps with the plan's mask of kept capabilities. */
static void bound_caps(uint64_t keep)
{
	long last = 40;
	char buf[32];
	int fd = mxc_open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC, 0);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			char *end;
			long v = strtol(buf, &end, 10);
			if (end != buf && v >= 0 && v < 64)
				last = v;
		}
	}
	for (long i = 0; i <= last; i++) {
		if (i < 41 && (keep >> i) & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
			fail_setup("drop capability %ld from the bounding set: %s", i, strerror(errno));
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		fail_setup("capget: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		uint32_t m = (uint32_t)(keep >> (32 * i));
		data[i].effective &= m;
		data[i].permitted &= m;
		data[i].inheritable &= m;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail_setup("capset: %s", strerror(errno));
}

static int sb_debug;
static const char *sb_mode(char **envp)
{
	int found;
	const char *m = go_getenv(envp, "MXC_SANDBOX_FAST", &found);
	return m ? m : "";
}

/* try_plan finds the plan for c: 0 and p on success, -1 with *why. */
static int try_plan(struct mxc_sbcmd *c, struct mxc_plan *p, unsigned char **pdata, const char **why)
{
	unsigned char *pol = NULL, *node = NULL;
	size_t pn = 0, nn = 0;
	int r = read_file(AT_FDCWD, c->policy, MAX_POLICY, &pol, &pn, 0);
	if (r < 0) {
		*why = "the policy file is not a regular file the C path reads";
		return -1;
	}
	if (c->config[0]) {
		r = read_file(AT_FDCWD, c->config, MAX_POLICY, &node, &nn, 0);
		if (r == -1 && errno == ENOENT)
			node = NULL;
		else if (r < 0) {
			free(pol);
			*why = "the node config is not a regular file the C path reads";
			return -1;
		}
	}
	struct stat exe;
	if (stat("/proc/self/exe", &exe) < 0) {
		free(pol);
		free(node);
		*why = "stat /proc/self/exe";
		return -1;
	}
	char id[160], name[65];
	mxc_exe_identity(&exe, id, sizeof id);
	unsigned char key[32];
	mxc_sandbox_key(pol, pn, node, nn, id, key);
	free(pol);
	free(node);
	hex(key, 32, name);
	int dir = open_plans_dir();
	if (dir < 0) {
		*why = "no trusted plan directory";
		return -1;
	}
	unsigned char *data = NULL;
	size_t len = 0;
	r = read_file(dir, name, MXC_REC_MAX, &data, &len, 1);
	close(dir);
	if (r < 0) {
		*why = r == -1 && errno == ENOENT ? "no plan for this policy yet" : "the plan file is not trusted";
		return -1;
	}
	const char *err;
	if (mxc_decode_plan(data, len, MXC_REC_MAGIC_SANDBOX, p, &err) < 0) {
		free(data);
		*why = "the plan file does not decode";
		return -1;
	}
	if (memcmp(p->key, key, 32) != 0) {
		mxc_free_plan(p);
		free(data);
		*why = "the plan was written for another key";
		return -1;
	}
	*pdata = data;
	return 0;
}

void mxc_sandbox_main(int argc, char **argv, char **envp)
{
	const char *mode = sb_mode(envp);
	if (!strcmp(mode, "0") || !strcmp(mode, "off") || !strcmp(mode, "false") || !strcmp(mode, "no"))
		return;
	int require = !strcmp(mode, "require");
	int found;
	const char *dbg = go_getenv(envp, "MXC_SANDBOX_FAST_DEBUG", &found);
	sb_debug = dbg && dbg[0] == '1';
	const char *why = NULL;
	struct mxc_sbcmd c;
	struct mxc_plan p;
	unsigned char *data = NULL;
	char *cwd = NULL;
	memset(&p, 0, sizeof p);
	if (!mxc_parse_sandbox_cmdline(argc, argv, envp, &c)) {
		/* Not a command line we take: no debug output, no require. */
		return;
	}
	if (geteuid() != 0) {
		why = "not root";
		goto go;
	}
	if (try_plan(&c, &p, &data, &why) < 0)
		goto go;
	if (mxc_step_ready(&p, &why) < 0)
		goto go;
	if (!mxc_go_getwd(envp, &cwd)) {
		why = "the working directory's path is too long";
		goto go;
	}
	/* Committed: from here on every failure is the sandbox's (125) or the
	 * command's (126/127), as on the Go path. */
	if (sb_debug)
		dprintf(2, "mxc-runtime sandbox: C path\n");
	int flags = CLONE_NEWNS;
	if (!(p.sbflags & MXC_SB_HOSTNET))
		flags |= CLONE_NEWNET;
	if (unshare(flags) < 0)
		fail_setup("unshare mount/network namespaces: %s", strerror(errno));
	setup_mounts(&p);
	if (!(p.sbflags & MXC_SB_HOSTNET))
		loopback_up();
	if (cwd) {
		int r = chdir(cwd); /* land on the new mounts */
		(void)r;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail_setup("no_new_privs: %s", strerror(errno));
	bound_caps(p.capmask);
	mxc_step_exec(&p, c.argv, envp, "mxc-runtime sandbox");
go:
	mxc_free_plan(&p);
	free(data);
	free(cwd);
	if (require) {
		dprintf(2, "mxc-runtime: sandbox: the C path was required (MXC_SANDBOX_FAST=require): %s\n", why ? why : "?");
		_exit(EXIT_SETUP);
	}
	if (sb_debug)
		dprintf(2, "mxc-runtime sandbox: Go path: %s\n", why ? why : "?");
}
