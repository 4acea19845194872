//go:build linux && cgo

/*
 * The policy monitor's C stage: `mxc-runtime policy-monitor CONFIG` started
 * by the runtime with MXC_PREMON_EXE set (linux/enforce/latemonitor_linux.go;
 * the variables are listed in linux/monitor/stage_linux.go).
 *
 * A container's monitor has work only now and then: a DNS query for the
 * egress gate it hosts, a denied packet to report, an OOM kill, the
 * timeout. Most short containers have none of it, and the Go monitor's
 * start alone (~30 ms of CPU on a VM whose page faults trap to the host)
 * was the largest single cost of a policy `run`. This stage holds
 * everything the Go monitor would wait on, without a Go runtime:
 *
 *   - the init's pidfd: its exit with nothing pending ends the monitor as
 *     the Go monitor's would (or, while it hosts the gate, leaves only the
 *     sockets to hold until delete);
 *   - the OOM notification of the memory cgroup (v1 eventfd, v2 inotify on
 *     memory.events), and the kill count when it started watching;
 *   - the timeout: the start of the container (exec.fifo removed, seen with
 *     inotify) recorded in monitor.started as the Go monitor records it,
 *     and a timer for a little before the deadline;
 *   - the egress gate's sockets (bound by the runtime): their first
 *     readable byte.
 *
 * On the first of those it execs the Go monitor (MXC_PREMON_EXE, same pid,
 * same descriptors), which finds what woke it waiting where it was: the
 * query in its socket, the kill in the cgroup's count (MXC_MONITOR_OOM_BASE),
 * the start in monitor.started. SIGTERM or SIGINT ends it (as they end the
 * Go monitor); SIGHUP (a pod's gate: containers joined or left) is nothing
 * to do here, since the Go monitor reads the namespace's refs when it
 * starts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "fastexec.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define PREMON_MAX_WAKE 16

extern char **environ;

static struct {
	const char *exe;   /* the Go monitor */
	char **argv;
	sigset_t orig_mask;
	int have_base;     /* OOM kill count known at the start */
	unsigned long long base;
	char state_dir[PATH_MAX];
} pm;

static void pm_fail(const char *what)
{
	fprintf(stderr, "policy monitor (C stage): %s: %s\n", what, strerror(errno));
}

/* read_small reads a small file into buf (NUL-terminated); -1 on error. */
static ssize_t read_small(const char *path, char *buf, size_t n)
{
	int fd = mxc_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t got = 0;
	while ((size_t)got < n - 1) {
		ssize_t r = read(fd, buf + got, n - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	close(fd);
	buf[got] = 0;
	return got;
}

/* key_value reads "key value" from a flat-keyed cgroup file. */
static int key_value(const char *path, const char *key, unsigned long long *v)
{
	char buf[4096];
	if (read_small(path, buf, sizeof buf) < 0)
		return -1;
	size_t kl = strlen(key);
	for (char *line = buf; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (!strncmp(line, key, kl) && line[kl] == ' ') {
			char *end;
			errno = 0;
			*v = strtoull(line + kl + 1, &end, 10);
			return errno ? -1 : 0;
		}
		line = next;
	}
	return -1;
}

/* proc_start is field 22 of /proc/PID/stat (start time in clock ticks). */
static unsigned long long proc_start(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof buf) < 0)
		return 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* After ") ": field 3 (state) onwards; field 22 is the 20th. */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int state_path(char *out, size_t n, const char *name)
{
	return (size_t)snprintf(out, n, "%s/%s", pm.state_dir, name) < n ? 0 : -1;
}

/* started_ns reads monitor.started (Unix nanoseconds), 0 if absent. */
static long long started_ns(void)
{
	char path[PATH_MAX], buf[64];
	if (state_path(path, sizeof path, "monitor.started") < 0 || read_small(path, buf, sizeof buf) <= 0)
		return 0;
	return strtoll(buf, NULL, 10);
}

/* record_start writes monitor.started as the Go monitor does. */
static long long record_start(void)
{
	long long t = now_ns();
	char path[PATH_MAX], buf[32];
	if (state_path(path, sizeof path, "monitor.started") == 0) {
		int fd = mxc_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			int n = snprintf(buf, sizeof buf, "%lld", t);
			if (write(fd, buf, n) != n)
				pm_fail("write monitor.started");
			close(fd);
		}
	}
	return t;
}

/* wake execs the Go monitor: the environment without MXC_PREMON_*, plus
 * what it needs to know; signals as they were, but SIGHUP ignored until
 * the Go monitor catches it (one sent meanwhile must not kill it). */
static void __attribute__((noreturn)) wake(const char *why)
{
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	char **env = calloc(n + 3, sizeof *env);
	static char woken[64], base[64];
	if (!env) {
		pm_fail("calloc");
		_exit(1);
	}
	size_t k = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "MXC_PREMON_", 11))
			env[k++] = *e;
	snprintf(woken, sizeof woken, "MXC_MONITOR_PRE_WOKEN=%s", why);
	env[k++] = woken;
	if (pm.have_base) {
		snprintf(base, sizeof base, "MXC_MONITOR_OOM_BASE=%llu", pm.base);
		env[k++] = base;
	}
	env[k] = NULL;
	signal(SIGHUP, SIG_IGN);
	sigprocmask(SIG_SETMASK, &pm.orig_mask, NULL);
	pm.argv[0] = (char *)pm.exe;
	execve(pm.exe, pm.argv, env);
	pm_fail(pm.exe);
	_exit(1);
}

/* arm_oom starts watching the memory cgroup dir; returns the fd to poll. */
static int arm_oom(const char *dir, int v2, char *count_file, size_t n)
{
	if ((size_t)snprintf(count_file, n, "%s/%s", dir, v2 ? "memory.events" : "memory.oom_control") >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* The count first: a kill after it wakes us, none is missed. */
	pm.have_base = key_value(count_file, "oom_kill", &pm.base) == 0;
	if (v2) {
		int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (fd < 0 || inotify_add_watch(fd, count_file, IN_MODIFY) < 0) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	char ctl_path[PATH_MAX];
	if ((size_t)snprintf(ctl_path, sizeof ctl_path, "%s/cgroup.event_control", dir) >= sizeof ctl_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int ctl = mxc_open(count_file, O_RDONLY | O_CLOEXEC, 0);
	if (ctl < 0)
		return -1;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		close(ctl);
		return -1;
	}
	char line[64];
	int len = snprintf(line, sizeof line, "%d %d", efd, ctl);
	int ev = mxc_open(ctl_path, O_WRONLY | O_CLOEXEC, 0);
	int ok = ev >= 0 && write(ev, line, len) == len;
	int saved = errno;
	if (ev >= 0)
		close(ev);
	/* The registration holds the eventfd; the control file is not needed. */
	close(ctl);
	if (!ok) {
		close(efd);
		errno = saved;
		return -1;
	}
	return efd;
}

/* oom_killed reports whether the cgroup counted a kill since the start. */
static int oom_killed(const char *count_file)
{
	unsigned long long v;
	return pm.have_base && key_value(count_file, "oom_kill", &v) == 0 && v > pm.base;
}

static void arm_timer(int tfd, long long at_ns)
{
	long long now = now_ns();
	if (at_ns <= now)
		at_ns = now + 1;
	struct itimerspec its = {0};
	its.it_value.tv_sec = at_ns / 1000000000LL;
	its.it_value.tv_nsec = at_ns % 1000000000LL;
	if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		pm_fail("timerfd_settime");
		wake("timer-error");
	}
}

static long long env_ll(const char *name, long long def)
{
	const char *v = getenv(name);
	return v && *v ? strtoll(v, NULL, 10) : def;
}

enum { P_SIG, P_INIT, P_OOM, P_DIR, P_TIMER, P_WAKE };

void mxc_premonitor_main(int argc, char **argv)
{
	pm.exe = getenv("MXC_PREMON_EXE");
	pm.argv = argv;
	const char *slash = strrchr(argv[2], '/');
	if (!pm.exe || !*pm.exe || !slash || (size_t)(slash - argv[2]) >= sizeof pm.state_dir) {
		fprintf(stderr, "policy monitor (C stage): bad invocation\n");
		_exit(2);
	}
	memcpy(pm.state_dir, argv[2], slash - argv[2]);
	pm.state_dir[slash - argv[2]] = 0;

	/* As oomguard.Protect: the agent is what exhausts memory. */
	int adj = mxc_open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC, 0);
	if (adj >= 0) {
		if (write(adj, "-999", 4) < 0) {
			/* without CAP_SYS_RESOURCE the inherited score stays */
		}
		close(adj);
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &pm.orig_mask);
	struct pollfd fds[P_WAKE + PREMON_MAX_WAKE];
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		fds[i] = (struct pollfd){.fd = -1, .events = POLLIN};
	fds[P_SIG].fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fds[P_SIG].fd < 0) {
		pm_fail("signalfd");
		wake("error");
	}

	/* Nothing before the runtime recorded our pid: EOF instead of its
	 * byte means it died first, and nobody would ever stop us. */
	int commit = (int)env_ll("MXC_PREMON_COMMIT", -1);
	if (commit >= 0) {
		char c;
		ssize_t r;
		while ((r = read(commit, &c, 1)) < 0 && errno == EINTR) {
		}
		if (r != 1)
			_exit(0);
		close(commit);
	}
	if (env_ll("MXC_PREMON_EAGER", 0) == 1)
		wake("watch");

	/* The init: gone (or another process by now) means nothing to watch. */
	int pid = (int)env_ll("MXC_PREMON_PID", 0);
	unsigned long long start = strtoull(getenv("MXC_PREMON_START") ? getenv("MXC_PREMON_START") : "0", NULL, 10);
	int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pidfd < 0 || proc_start(pid) != start)
		_exit(0);
	fds[P_INIT].fd = pidfd;

	/* The gate's sockets. */
	int nwake = 0;
	const char *w = getenv("MXC_PREMON_WAKE");
	while (w && *w && nwake < PREMON_MAX_WAKE) {
		char *end;
		long fd = strtol(w, &end, 10);
		if (end == w || fd < 3) {
			fprintf(stderr, "policy monitor (C stage): bad MXC_PREMON_WAKE\n");
			wake("error");
		}
		fds[P_WAKE + nwake++].fd = (int)fd;
		w = *end == ',' ? end + 1 : end;
	}

	char count_file[PATH_MAX] = "";
	const char *oom = getenv("MXC_PREMON_OOM");
	int v2 = env_ll("MXC_PREMON_OOM_V2", 0) == 1;
	if (oom && *oom) {
		fds[P_OOM].fd = arm_oom(oom, v2, count_file, sizeof count_file);
		if (fds[P_OOM].fd < 0) {
			pm_fail("oom notifications");
			wake("oom-error"); /* the Go monitor tries, and reports */
		}
	}

	long long timeout_ms = env_ll("MXC_PREMON_TIMEOUT_MS", 0);
	long long lead_ms = env_ll("MXC_PREMON_LEAD_MS", 2000);
	long long deadline = 0;
	if (timeout_ms > 0) {
		fds[P_TIMER].fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
		if (fds[P_TIMER].fd < 0) {
			pm_fail("timerfd_create");
			wake("error");
		}
		long long t0 = started_ns();
		if (!t0) {
			/* Watch for the exec fifo's removal before looking for it. */
			char fifo[PATH_MAX];
			struct stat st;
			fds[P_DIR].fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
			if (fds[P_DIR].fd < 0 || inotify_add_watch(fds[P_DIR].fd, pm.state_dir, IN_DELETE) < 0) {
				pm_fail("watch the state dir");
				wake("error");
			}
			if (state_path(fifo, sizeof fifo, "exec.fifo") == 0 && lstat(fifo, &st) < 0 && errno == ENOENT)
				t0 = record_start();
		}
		if (t0) {
			deadline = t0 + timeout_ms * 1000000LL;
			arm_timer(fds[P_TIMER].fd, deadline - lead_ms * 1000000LL);
			if (fds[P_DIR].fd >= 0) {
				close(fds[P_DIR].fd);
				fds[P_DIR].fd = -1;
			}
		}
	}

	for (;;) {
		int n = poll(fds, P_WAKE + nwake, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			pm_fail("poll");
			wake("error");
		}
		if (fds[P_SIG].revents) {
			struct signalfd_siginfo si;
			while (read(fds[P_SIG].fd, &si, sizeof si) == sizeof si)
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					_exit(0);
		}
		for (int i = 0; i < nwake; i++)
			if (fds[P_WAKE + i].revents)
				wake("gate");
		if (fds[P_OOM].revents) {
			if (v2) {
				char buf[4096];
				while (read(fds[P_OOM].fd, buf, sizeof buf) > 0) {
				}
				if (oom_killed(count_file))
					wake("oom");
			} else {
				uint64_t v;
				if (read(fds[P_OOM].fd, &v, sizeof v) < 0 && errno != EAGAIN)
					pm_fail("read oom eventfd");
				/* It is signalled once more when the cgroup goes. */
				char ctl_path[PATH_MAX];
				snprintf(ctl_path, sizeof ctl_path, "%s/cgroup.event_control", oom);
				if (access(ctl_path, F_OK) == 0)
					wake("oom");
				close(fds[P_OOM].fd);
				fds[P_OOM].fd = -1;
			}
		}
		if (fds[P_DIR].revents) {
			char buf[sizeof(struct inotify_event) + NAME_MAX + 1] __attribute__((aligned(__alignof__(struct inotify_event))));
			ssize_t len;
			int started = 0, gone = 0;
			while ((len = read(fds[P_DIR].fd, buf, sizeof buf)) > 0) {
				for (char *p = buf; p < buf + len;) {
					struct inotify_event *ev = (struct inotify_event *)p;
					if (ev->len && !strcmp(ev->name, "exec.fifo"))
						started = 1;
					if (ev->mask & IN_IGNORED)
						gone = 1;
					p += sizeof *ev + ev->len;
				}
			}
			if (started) {
				long long t0 = started_ns();
				if (!t0)
					t0 = record_start();
				deadline = t0 + timeout_ms * 1000000LL;
				arm_timer(fds[P_TIMER].fd, deadline - lead_ms * 1000000LL);
			}
			if (started || gone) {
				close(fds[P_DIR].fd);
				fds[P_DIR].fd = -1;
			}
		}
		if (fds[P_TIMER].revents)
			wake("timeout");
		if (fds[P_INIT].revents) {
			/* The init exited. A kill of it by the OOM killer is counted
			 * before it dies: the Go monitor reports it. */
			if (count_file[0] && oom_killed(count_file))
				wake("oom");
			if (!nwake)
				_exit(0);
			/* The gate stays until delete: only its sockets and the
			 * signals are left to watch. */
			for (int i = P_INIT; i < P_WAKE; i++) {
				if (fds[i].fd >= 0)
					close(fds[i].fd);
				fds[i].fd = -1;
			}
		}
	}
}
