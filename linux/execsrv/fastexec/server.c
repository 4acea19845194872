//go:build linux && cgo

/*
 * The exec server: `mxc-runtime exec-server serve --listen-fd L
 * --config-fd C --ready-fd R [--landlock-fd K]`, started in the container
 * through the normal exec path (so it holds the namespaces, cgroups,
 * uid/gids, capabilities, no_new_privs, rlimits, keyring and, for an agent
 * container, the seccomp filters a normal exec holds), never starting Go.
 *
 * Per request it prepares libcontainer's environment (spec env + --env, UI
 * scrub, dedup, HOME from /etc/passwd) and starts a child that does what
 * the rest of the normal path would do for `exec ID CMD`: new session, the
 * request's pipes as stdio, chdir, the agent's Landlock ruleset built and
 * applied exactly as agent-exec applies it (a fresh domain per process),
 * the PATH lookup, and execve. Anything that fails before execve is
 * reported as FALLBACK: nothing ran, the client takes the normal path,
 * which reports the error as it always does.
 *
 * The child is a vfork-style clone (CLONE_VM | CLONE_VFORK) on a stack of
 * its own, not a fork: it shares the server's memory until its execve, so
 * nothing is copied, write-protected and torn down again per exec (a
 * fork's page-table work is most of the server's time under a hypervisor
 * that shadows page tables: docs/benchmarks.md, "Page faults"). Sharing
 * memory means the child must not allocate: if it were killed inside
 * malloc (it runs with the container's credentials, so the container's
 * processes may signal it), the server's heap would be left half-updated.
 * It only makes system calls and writes its struct spawn.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "fastexec.h"

/* Landlock's uapi, with the ABI 6 field the distribution headers lack. */
struct ll_ruleset_attr {
	uint64_t handled_fs, handled_net, scoped;
};
struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
#define LL_RULE_PATH_BENEATH 1

struct rule {
	uint64_t access;
	char *path;
};

static struct {
	char *cwd;
	char **env;
	int envc;
	char **scrub;
	int nscrub;
	int landlock;
	uint64_t handled, scoped, flags;
	size_t attrsize;
	struct rule *rules;
	int nrules;
} cfg;

struct conn {
	int fd;
	pid_t pid;
};
static struct conn *conns;
static int nconns;

/* The signals whose disposition is not SIG_DFL in the server (SIGPIPE, and
 * whatever it inherited ignored), found once when it starts: a child puts
 * back only these. Handlers do not survive execve anyway, but an ignored
 * signal would, and the server sets no disposition after it starts. */
static sigset_t not_default;

static void find_not_default(void)
{
	sigemptyset(&not_default);
	for (int s = 1; s < NSIG; s++) {
		struct sigaction sa;
		if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &sa) < 0)
			continue;
		if (sa.sa_handler != SIG_DFL)
			sigaddset(&not_default, s);
	}
}
#define MAX_CONNS 1024
#define MAX_ENV 4096

static void fatal_ready(int rfd, const char *msg)
{
	if (rfd >= 0) {
		char buf[512];
		int n = snprintf(buf, sizeof buf, "E%s: %s", msg, strerror(errno));
		ssize_t w = write(rfd, buf, (size_t)n);
		(void)w;
	}
	_exit(1);
}

static int push(char ***list, int *n, char *s)
{
	char **l = realloc(*list, sizeof(char *) * (size_t)(*n + 2));
	if (!l)
		return -1;
	l[(*n)++] = s;
	l[*n] = NULL;
	*list = l;
	return 0;
}

/* load_records reads NUL-separated records "<tag><value>" from fd. */
static int load_records(int fd, int landlock)
{
	size_t len = 0;
	char *data = mxc_read_fd(fd, &len);
	if (!data)
		return -1;
	int version = 0;
	for (size_t pos = 0; pos < len;) {
		char *rec = data + pos;
		size_t rl = strnlen(rec, len - pos);
		if (pos + rl >= len) {
			errno = EINVAL;
			return -1; /* unterminated record */
		}
		pos += rl + 1;
		if (rl == 0)
			continue;
		char tag = rec[0], *v = rec + 1;
		switch (tag) {
		case 'V':
			version = atoi(v);
			break;
		case 'W':
			if (!landlock)
				cfg.cwd = v;
			break;
		case 'E':
			if (!landlock && push(&cfg.env, &cfg.envc, v) < 0)
				return -1;
			break;
		case 'S':
			if (!landlock && push(&cfg.scrub, &cfg.nscrub, v) < 0)
				return -1;
			break;
		case 'h':
			cfg.handled = strtoull(v, NULL, 10);
			break;
		case 's':
			cfg.scoped = strtoull(v, NULL, 10);
			break;
		case 'f':
			cfg.flags = strtoull(v, NULL, 10);
			break;
		case 'z':
			cfg.attrsize = strtoull(v, NULL, 10);
			break;
		case 'r': {
			char *sp = strchr(v, ' ');
			if (!sp) {
				errno = EINVAL;
				return -1;
			}
			*sp = '\0';
			struct rule *r = realloc(cfg.rules, sizeof *r * (size_t)(cfg.nrules + 1));
			if (!r)
				return -1;
			cfg.rules = r;
			cfg.rules[cfg.nrules++] = (struct rule){.access = strtoull(v, NULL, 10), .path = sp + 1};
			break;
		}
		default:
			errno = EINVAL;
			return -1;
		}
	}
	if (version != 1) {
		errno = EINVAL;
		return -1;
	}
	if (landlock) {
		if (cfg.attrsize != 8 && cfg.attrsize != 16 && cfg.attrsize != 24) {
			errno = EINVAL;
			return -1;
		}
		cfg.landlock = 1;
	} else if (!cfg.cwd || cfg.cwd[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static int send_msg(int fd, uint32_t type, int32_t value, const char *text)
{
	char buf[sizeof(struct mxc_msg) + 512];
	size_t tl = text ? strnlen(text, 511) : 0;
	struct mxc_msg m = {.magic = MXC_MSG_MAGIC, .type = type, .value = value, .textlen = (uint32_t)tl};
	memcpy(buf, &m, sizeof m);
	if (tl)
		memcpy(buf + sizeof m, text, tl);
	return send(fd, buf, sizeof m + tl, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ? -1 : 0;
}

/* What a child reports when it could not exec: nothing ran. */
struct child_err {
	int err;
	char what[200];
};

/*
 * One child's start: prepared by the server, read by the child, which
 * writes only failed and ce (the server reads them once clone returns,
 * after the child's execve or exit).
 */
struct spawn {
	struct mxc_request *rq;
	int fds[3];
	char **env; /* the process's environment */
	const char *path; /* its PATH, NULL without one */
	char *scratch; /* 2 * half bytes for the PATH lookup */
	size_t half;
	int failed;
	struct child_err ce;
};

static void child_fail(struct spawn *sp, const char *what, int err) __attribute__((noreturn));
static void child_fail(struct spawn *sp, const char *what, int err)
{
	sp->ce.err = err;
	snprintf(sp->ce.what, sizeof sp->ce.what, "%s", what);
	sp->failed = 1;
	_exit(127);
}

/* apply_landlock builds and applies the ruleset as landlock.Ruleset.Apply. */
static int apply_landlock(const char **what)
{
	struct ll_ruleset_attr attr = {.handled_fs = cfg.handled, .scoped = cfg.scoped};
	long rfd = syscall(SYS_landlock_create_ruleset, &attr, cfg.attrsize, 0);
	if (rfd < 0) {
		*what = "landlock_create_ruleset";
		return -1;
	}
	for (int i = 0; i < cfg.nrules; i++) {
		int pfd = mxc_open(cfg.rules[i].path, O_PATH | O_CLOEXEC, 0);
		if (pfd < 0) {
			if (errno == ENOENT || errno == ENOTDIR || errno == EACCES)
				continue; /* nothing there to grant */
			*what = "landlock: open a rule path";
			return -1;
		}
		struct stat st;
		if (fstat(pfd, &st) < 0) {
			*what = "landlock: stat a rule path";
			return -1;
		}
		uint64_t access = cfg.rules[i].access & cfg.handled;
		if (!S_ISDIR(st.st_mode))
			access &= MXC_LL_FILE_RIGHTS;
		if (access) {
			struct ll_path_beneath pb = {.allowed_access = access, .parent_fd = pfd};
			if (syscall(SYS_landlock_add_rule, rfd, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
				*what = "landlock_add_rule";
				return -1;
			}
		}
		close(pfd);
	}
	if (syscall(SYS_landlock_restrict_self, rfd, cfg.flags) < 0) {
		*what = "landlock_restrict_self";
		return -1;
	}
	close((int)rfd);
	return 0;
}

static int scrubbed(const char *kv)
{
	size_t k = strcspn(kv, "=");
	for (int i = 0; i < cfg.nscrub; i++)
		if (strlen(cfg.scrub[i]) == k && memcmp(cfg.scrub[i], kv, k) == 0)
			return 1;
	return 0;
}

/*
 * build_env is the process's environment as libcontainer builds it: the
 * spec's, then the request's (less the scrubbed UI variables), deduplicated
 * keeping the last, and HOME from the container's /etc/passwd when unset
 * (runc's getUserHome: "/" failing that). *home is the malloc'd HOME entry
 * to free with the array, if one was added. -1 with *what and errno when
 * it cannot be built (the normal path reports the error).
 */
static char **build_env(struct mxc_request *rq, char **home, const char **what)
{
	*home = NULL;
	int n = cfg.envc + rq->envc;
	if (n > MAX_ENV) {
		*what = "too many environment variables";
		errno = E2BIG;
		return NULL;
	}
	char **all = calloc((size_t)n + 1, sizeof(char *));
	char **env = calloc((size_t)n + 3, sizeof(char *));
	if (!all || !env) {
		free(all);
		free(env);
		*what = "env";
		errno = ENOMEM;
		return NULL;
	}
	int m = 0;
	for (int i = 0; i < cfg.envc; i++)
		all[m++] = cfg.env[i];
	for (int i = 0; i < rq->envc; i++)
		if (!scrubbed(rq->env[i]))
			all[m++] = rq->env[i];
	int home_set = 0;
	const char *err = NULL;
	int k = mxc_dedup_env(all, m, env, &home_set, &err);
	free(all);
	if (k < 0) {
		free(env);
		*what = err;
		errno = EINVAL;
		return NULL;
	}
	if (!home_set) {
		size_t len = 0;
		char *data = NULL;
		int fd = mxc_open("/etc/passwd", O_RDONLY | O_CLOEXEC, 0);
		if (fd >= 0) {
			data = mxc_read_fd(fd, &len);
			close(fd);
		}
		char *h = mxc_passwd_home(data ? data : "", data ? len : 0, (long)getuid(), data == NULL);
		free(data);
		char *kv = h ? malloc(strlen(h) + 6) : NULL;
		if (kv) {
			strcpy(kv, "HOME=");
			strcat(kv, h);
		}
		free(h);
		if (!kv) {
			free(env);
			*what = "HOME";
			errno = ENOMEM;
			return NULL;
		}
		env[k++] = kv;
		env[k] = NULL;
		*home = kv;
	}
	return env;
}

static int child(void *arg) __attribute__((noreturn));
static int child(void *arg)
{
	struct spawn *sp = arg;
	struct mxc_request *rq = sp->rq;
	/* A fresh process: default dispositions, nothing blocked. (Its
	 * dispositions are its own: no CLONE_SIGHAND.) */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&not_default, s) == 1)
			sigaction(s, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own session, without a controlling terminal. */
	setsid();
	for (int i = 0; i < 3; i++)
		if (dup2(sp->fds[i], i) < 0)
			child_fail(sp, "dup2", errno);
	/* Only 0, 1 and 2 reach the program (libcontainer closes the rest). */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

	const char *cwd = rq->cwd ? rq->cwd : cfg.cwd;
	if (chdir(cwd) < 0)
		child_fail(sp, "chdir", errno);
	if (cfg.landlock) {
		const char *what = NULL;
		if (apply_landlock(&what) < 0)
			child_fail(sp, what, errno);
	}
	/* agent-exec looks the command up after Landlock, with the env's PATH. */
	if (!sp->path && !strchr(rq->argv[0], '/'))
		child_fail(sp, "no PATH to look the command up in", ENOENT);
	if (mxc_lookpath_into(rq->argv[0], sp->path ? sp->path : "", 0, sp->scratch, sp->half) < 0)
		child_fail(sp, "look up the command", errno);
	execve(sp->scratch, rq->argv, sp->env);
	child_fail(sp, "execve", errno);
}

/* The child's stack, made once: its pages are faulted in by the first
 * child and reused by every later one. The lowest page is a guard. */
#define CHILD_STACK (256 * 1024)
static char *child_stack;

/*
 * spawn starts rq's process: the pid (> 0) once it has exec'd; -1 with
 * *what and errno when nothing ran (the child is reaped).
 */
static pid_t spawn(struct mxc_request *rq, int fds[3], const char **what)
{
	char *home = NULL;
	char **env = build_env(rq, &home, what);
	if (!env)
		return -1;
	struct spawn sp = {.rq = rq, .env = env};
	memcpy(sp.fds, fds, sizeof sp.fds);
	for (char **e = env; *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			sp.path = *e + 5;
	sp.half = mxc_lookpath_scratch(rq->argv[0], sp.path ? sp.path : "");
	sp.scratch = malloc(2 * sp.half);
	pid_t pid = -1;
	if (!sp.scratch) {
		*what = "memory";
		errno = ENOMEM;
	} else {
		/* Returns once the child has called execve or exited. */
		pid = clone(child, child_stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &sp);
		if (pid < 0) {
			*what = "clone";
		} else if (sp.failed) {
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			/* Kept past this frame for the caller's message (one
			 * request at a time: the server has one thread). */
			static struct child_err failed;
			failed = sp.ce;
			failed.what[sizeof failed.what - 1] = '\0';
			pid = -1;
			*what = failed.what;
			errno = failed.err;
		}
	}
	int e = errno;
	free(sp.scratch);
	free(home);
	free(env);
	errno = e;
	return pid;
}

static void drop_conn(int i)
{
	close(conns[i].fd);
	conns[i] = conns[--nconns];
}

/* handle_request reads one request from conn i and starts its process. */
static void handle_request(int i)
{
	struct conn *c = &conns[i];
	char *buf = malloc(MXC_REQ_MAX);
	if (!buf) {
		send_msg(c->fd, MXC_MSG_FALLBACK, ENOMEM, "out of memory");
		drop_conn(i);
		return;
	}
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = {.iov_base = buf, .iov_len = MXC_REQ_MAX};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		free(buf);
		return;
	}
	int fds[8], nfds = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int j = 0; j < k && nfds < 8; j++)
				memcpy(&fds[nfds++], CMSG_DATA(cm) + (size_t)j * sizeof(int), sizeof(int));
		}
	}
	struct mxc_request rq;
	const char *bad = NULL;
	if (n <= 0)
		bad = "no request";
	else if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		bad = "request too large";
	else if (nfds != 3)
		bad = "a request carries exactly three fds";
	else if (mxc_decode_request(buf, (size_t)n, &rq) < 0)
		bad = "malformed request";
	if (bad) {
		for (int j = 0; j < nfds; j++)
			close(fds[j]);
		free(buf);
		if (n > 0)
			send_msg(c->fd, MXC_MSG_FALLBACK, EINVAL, bad);
		drop_conn(i);
		return;
	}
	const char *what = NULL;
	pid_t pid = spawn(&rq, fds, &what);
	int e = errno;
	for (int j = 0; j < 3; j++)
		close(fds[j]);
	if (pid < 0) {
		/* It never ran: let the normal path do the work. */
		char text[300];
		snprintf(text, sizeof text, "%s: %s", what ? what : "start", strerror(e));
		send_msg(c->fd, MXC_MSG_FALLBACK, e, text);
		mxc_free_request(&rq);
		free(buf);
		drop_conn(i);
		return;
	}
	mxc_free_request(&rq);
	free(buf);
	c->pid = pid;
	if (send_msg(c->fd, MXC_MSG_STARTED, pid, NULL) < 0)
		c->pid = -pid; /* the client is gone; the process runs on */
}

static void reap(void)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return;
		int code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		for (int i = 0; i < nconns; i++) {
			if (conns[i].pid == pid) {
				send_msg(conns[i].fd, MXC_MSG_EXITED, code, NULL);
				drop_conn(i);
				break;
			}
		}
	}
}

static void on_client(int i, short rev)
{
	struct conn *c = &conns[i];
	if (c->pid == 0) {
		if (rev & POLLIN) {
			handle_request(i);
			return;
		}
		drop_conn(i);
		return;
	}
	if (rev & POLLIN) {
		struct mxc_msg m;
		ssize_t n = recv(c->fd, &m, sizeof m, MSG_DONTWAIT);
		if (n == (ssize_t)sizeof m && m.magic == MXC_MSG_MAGIC && m.type == MXC_MSG_SIGNAL) {
			if (c->pid > 0 && m.value > 0 && m.value < NSIG)
				kill(c->pid, m.value);
			return;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
	}
	/* The client went away (or spoke nonsense): the process runs on, as
	 * after a normal-path exec whose runtime died; it is reaped later. */
	drop_conn(i);
}

void mxc_server_main(int argc, char **argv)
{
	int lfd = -1, cfd = -1, rfd = -1, llfd = -1;
	for (int i = 3; i + 1 < argc; i += 2) {
		int v = atoi(argv[i + 1]);
		if (!strcmp(argv[i], "--listen-fd"))
			lfd = v;
		else if (!strcmp(argv[i], "--config-fd"))
			cfd = v;
		else if (!strcmp(argv[i], "--ready-fd"))
			rfd = v;
		else if (!strcmp(argv[i], "--landlock-fd"))
			llfd = v;
	}
	if (rfd < 3)
		rfd = -1;
	/* Keep other processes of the container away from our fds and memory
	 * (/proc/<pid>/fd, ptrace, pidfd_getfd need ptrace access). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fatal_ready(rfd, "exec-server: prctl(PR_SET_DUMPABLE)");
	if (lfd < 3 || cfd < 3) {
		errno = EINVAL;
		fatal_ready(rfd, "exec-server serve: --listen-fd and --config-fd are required");
	}
	if (load_records(cfd, 0) < 0)
		fatal_ready(rfd, "exec-server: read the config");
	close(cfd);
	if (llfd >= 3) {
		if (load_records(llfd, 1) < 0)
			fatal_ready(rfd, "exec-server: read the Landlock plan");
		close(llfd);
	}
	if (rfd >= 0) {
		/*
		 * Wait for the runtime's go-ahead (it has set the late rlimits on
		 * this process by then), and leave the runtime's process tree:
		 * the child the runtime started exits, so the server is re-parented
		 * inside the container (to its init, or to the host's reaper when
		 * the container shares the host's pid namespace), never to a host
		 * process that outlives the container's init and would have to
		 * reap it before the container's pid namespace can go away.
		 */
		char go = 0;
		ssize_t n;
		do
			n = read(rfd, &go, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1 || go != 'G')
			_exit(1);
		pid_t pid = fork();
		if (pid < 0)
			fatal_ready(rfd, "exec-server: fork");
		if (pid > 0)
			_exit(0);
	}
	prctl(PR_SET_NAME, "mxc-exec-server", 0, 0, 0);
	setsid();
	if (fcntl(lfd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(lfd, F_SETFL, O_NONBLOCK) < 0)
		fatal_ready(rfd, "exec-server: the listening socket");
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fatal_ready(rfd, "exec-server: signalfd");
	signal(SIGPIPE, SIG_IGN);
	find_not_default();
	conns = calloc(MAX_CONNS, sizeof *conns);
	struct pollfd *p = calloc(MAX_CONNS + 2, sizeof *p);
	if (!conns || !p)
		fatal_ready(rfd, "exec-server: memory");
	child_stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (child_stack == MAP_FAILED || mprotect(child_stack, 4096, PROT_NONE) < 0)
		fatal_ready(rfd, "exec-server: the children's stack");
	if (rfd >= 0) {
		/* The runtime reads our pid from the message's credentials. */
		ssize_t w = write(rfd, "R", 1);
		(void)w;
		close(rfd);
	}
	for (;;) {
		int n = 0;
		p[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		p[n++] = (struct pollfd){.fd = lfd, .events = nconns < MAX_CONNS ? POLLIN : 0};
		int base = n;
		for (int i = 0; i < nconns; i++)
			p[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		/* Connections first (indices shift as they are dropped, so walk
		 * backwards), then exits, then new connections. */
		for (int i = n - 1; i >= base; i--)
			if (p[i].revents)
				on_client(i - base, p[i].revents);
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
				;
			reap();
		}
		if (p[1].revents & POLLIN) {
			for (;;) {
				int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				if (fd < 0)
					break;
				if (nconns >= MAX_CONNS) {
					close(fd);
					break;
				}
				conns[nconns++] = (struct conn){.fd = fd};
			}
		}
	}
}
