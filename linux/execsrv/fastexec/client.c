//go:build linux && cgo

/*
 * The client: `mxc-runtime exec ID CMD...` without starting Go.
 *
 * It reads <root>/<id>/exec/info (written by the runtime when it started
 * the server), checks that the container still runs, is not paused and
 * that its bundle's config.json is the one the server was made from, then
 * sends the request with three fresh pipes as the process's stdio (the
 * normal path gives the process pipes too, chowned the same way) and
 * relays the caller's stdio through them, forwards signals, writes the
 * `exec` audit event, and exits with the process's status.
 *
 * Until the server says the process started, every problem returns to the
 * caller, and the Go CLI runs the normal path (which also restarts a dead
 * server). After that the client is committed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "fastexec.h"

/* Room for <root>/<id>/exec/... (root up to PATH_MAX, id up to 1024). */
#define PATHBUF (4096 + 1024 + 64)

struct info {
	long init_pid;
	unsigned long long init_start;
	long server_pid;
	unsigned long long server_start;
	char freeze[4096];
	char bundle[4096];
	unsigned long long cfg_dev, cfg_ino, cfg_size, cfg_msec, cfg_mnsec;
	long stdio_uid, root_gid;
	int audit;
	char uid[32];
	char agent[2048]; /* a JSON string literal, empty when there is none */
	int have_init, have_cfg, have_root;
};

int mxc_read_small(const char *path, char *buf, size_t cap)
{
	int fd = mxc_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n < cap - 1) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return (int)n;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * clear_info empties in without writing its string buffers past their
 * first byte: each untouched page of this process's memory is one page
 * fault less, and under a hypervisor that shadows page tables a fault
 * costs tens of microseconds (docs/benchmarks.md, "Page faults").
 */
static void clear_info(struct info *in)
{
	in->init_pid = in->server_pid = 0;
	in->init_start = in->server_start = 0;
	in->freeze[0] = in->bundle[0] = in->uid[0] = in->agent[0] = '\0';
	in->cfg_dev = in->cfg_ino = in->cfg_size = in->cfg_msec = in->cfg_mnsec = 0;
	in->stdio_uid = in->root_gid = 0;
	in->audit = in->have_init = in->have_cfg = in->have_root = 0;
}

static int parse_info(char *data, struct info *in)
{
	clear_info(in);
	int version = 0;
	for (char *line = data, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		const char *k = line, *v = sp + 1;
		if (!strcmp(k, "v"))
			version = atoi(v);
		else if (!strcmp(k, "init"))
			in->have_init = sscanf(v, "%ld %llu", &in->init_pid, &in->init_start) == 2;
		else if (!strcmp(k, "server"))
			sscanf(v, "%ld %llu", &in->server_pid, &in->server_start);
		else if (!strcmp(k, "freeze"))
			copy_field(in->freeze, sizeof in->freeze, v);
		else if (!strcmp(k, "bundle"))
			copy_field(in->bundle, sizeof in->bundle, v);
		else if (!strcmp(k, "config"))
			in->have_cfg = sscanf(v, "%llu %llu %llu %llu %llu", &in->cfg_dev, &in->cfg_ino, &in->cfg_size,
					      &in->cfg_msec, &in->cfg_mnsec) == 5;
		else if (!strcmp(k, "stdio"))
			in->have_root = sscanf(v, "%ld %ld", &in->stdio_uid, &in->root_gid) == 2;
		else if (!strcmp(k, "audit"))
			in->audit = atoi(v);
		else if (!strcmp(k, "uid"))
			copy_field(in->uid, sizeof in->uid, v);
		else if (!strcmp(k, "agent"))
			copy_field(in->agent, sizeof in->agent, v);
	}
	if (version != 1 || !in->have_init || !in->have_cfg || !in->have_root || !in->bundle[0] || !in->uid[0])
		return -1;
	return 0;
}

/* proc_state reads a process's state letter and start time from /proc. */
static int proc_state(long pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (mxc_read_small(path, buf, sizeof buf) <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	*state = *p;
	/* starttime is field 22; the state is field 3. */
	for (int f = 3; f < 22; f++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return 0;
}

int mxc_process_is(long pid, unsigned long long start, char *state)
{
	unsigned long long st;
	char s;
	if (pid <= 0 || proc_state(pid, &s, &st) < 0 || st != start)
		return 0;
	if (state)
		*state = s;
	return s != 'Z' && s != 'X' && s != 'x';
}

/* frozen: the freezer says the container is paused (or it cannot tell). */
int mxc_frozen(const char *path)
{
	if (!path[0])
		return 0;
	char buf[64];
	if (mxc_read_small(path, buf, sizeof buf) < 0)
		return 1;
	buf[strcspn(buf, "\n")] = '\0';
	size_t n = strlen(path);
	if (n >= 13 && !strcmp(path + n - 13, "freezer.state"))
		return strcmp(buf, "THAWED") != 0;
	return strcmp(buf, "0") != 0; /* cgroup v2 cgroup.freeze */
}

static int debug_on;
static const char *fallback_reason;

static int why(const char *reason)
{
	fallback_reason = reason;
	return -1;
}

/* The exec audit event, exactly as audit.Writer.Emit writes it. */
static void write_audit(const char *statedir, const char *id, struct mxc_cmdline *cl, struct info *in)
{
	struct mxc_buf b = {0}, args = {0};
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char tbuf[64];
	int n = snprintf(tbuf, sizeof tbuf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (ts.tv_nsec) {
		/* RFC3339Nano: up to nine digits, trailing zeros dropped. */
		char frac[16];
		snprintf(frac, sizeof frac, ".%09ld", ts.tv_nsec);
		size_t fl = strlen(frac);
		while (frac[fl - 1] == '0')
			frac[--fl] = '\0';
		snprintf(tbuf + n, sizeof tbuf - (size_t)n, "%s", frac);
	}
	mxc_buf_str(&b, "{\"time\":\"");
	mxc_buf_str(&b, tbuf);
	mxc_buf_str(&b, "Z\",\"container\":");
	mxc_buf_json(&b, id, strlen(id));
	if (in->agent[0] && strcmp(in->agent, "\"\"") != 0) {
		mxc_buf_str(&b, ",\"agent\":");
		mxc_buf_str(&b, in->agent);
	}
	mxc_buf_str(&b, ",\"kind\":\"exec\",\"detail\":{\"args\":");
	for (int i = 0; i < cl->argc; i++) {
		if (i)
			mxc_buf_char(&args, ' ');
		mxc_buf_str(&args, cl->argv[i]);
	}
	mxc_buf_json(&b, args.p ? args.p : "", args.len);
	mxc_buf_str(&b, ",\"uid\":");
	mxc_buf_json(&b, in->uid, strlen(in->uid));
	mxc_buf_str(&b, "}}\n");
	if (!b.oom) {
		char path[PATHBUF];
		int fd = -1;
		/* No O_CREAT: racing with a delete, it would put the log back
		 * into a state dir being removed (audit.Append in Go). */
		if ((size_t)snprintf(path, sizeof path, "%s/audit.jsonl", statedir) < sizeof path)
			fd = mxc_open(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0);
		if (fd >= 0) {
			ssize_t w = write(fd, b.p, b.len);
			(void)w;
			close(fd);
		}
	}
	mxc_buf_free(&b);
	mxc_buf_free(&args);
}

/* One relayed stream: the caller's fd on one side, our pipe end on the other. */
struct relay {
	int from, to;    /* read from, write to; -1 when closed */
	int ours;        /* which of from/to is our pipe (closed at the end) */
	size_t len, off; /* pending bytes */
	size_t chunk;    /* largest write that cannot block */
	int done;
	/* Never cleared: only the pages data passes through are touched (a
	 * relay of a silent process costs no page fault). */
	char *buf;
};
#define RELAY_BUF 65536

static void relay_init(struct relay *r, char *buf, int from, int to, int ours, size_t chunk)
{
	r->buf = buf;
	r->from = from;
	r->to = to;
	r->ours = ours;
	r->len = r->off = 0;
	r->chunk = chunk;
	r->done = 0;
}

static size_t chunk_for(int fd)
{
	struct stat st;
	/* A pipe or terminal may only have PIPE_BUF free when poll says
	 * writable; regular files and /dev/null never block. */
	if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && st.st_rdev == (dev_t)makedev(1, 3))))
		return RELAY_BUF;
	return 4096;
}

static void relay_close(struct relay *r)
{
	if (r->ours >= 0)
		close(r->ours);
	r->ours = r->from = r->to = -1;
	r->done = 1;
}

/* relay_step moves data after poll; revents for from and to. */
static void relay_step(struct relay *r, short rev_from, short rev_to)
{
	if (r->done)
		return;
	if (r->len == 0 && (rev_from & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
		ssize_t n = read(r->from, r->buf, RELAY_BUF);
		if (n > 0) {
			r->len = (size_t)n;
			r->off = 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			relay_close(r);
			return;
		}
	}
	if (r->len > 0 && (rev_to & (POLLOUT | POLLERR | POLLHUP | POLLNVAL))) {
		size_t want = r->len - r->off;
		if (want > r->chunk)
			want = r->chunk;
		ssize_t n = write(r->to, r->buf + r->off, want);
		if (n > 0) {
			r->off += (size_t)n;
			if (r->off == r->len)
				r->len = r->off = 0;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			relay_close(r);
		}
	}
}

static int send_msg(int fd, uint32_t type, int32_t value)
{
	struct mxc_msg m = {.magic = MXC_MSG_MAGIC, .type = type, .value = value};
	return send(fd, &m, sizeof m, MSG_NOSIGNAL) == (ssize_t)sizeof m ? 0 : -1;
}

/* recv_msg reads one server message: 1, 0 on EOF, -1 on error. */
static int recv_msg(int fd, struct mxc_msg *m, char *text, size_t cap)
{
	char buf[sizeof *m + 1024];
	ssize_t n = recv(fd, buf, sizeof buf, 0);
	if (n == 0)
		return 0;
	if (n < (ssize_t)sizeof *m)
		return -1;
	memcpy(m, buf, sizeof *m);
	if (m->magic != MXC_MSG_MAGIC || m->textlen > (size_t)n - sizeof *m)
		return -1;
	size_t tl = m->textlen < cap - 1 ? m->textlen : cap - 1;
	memcpy(text, buf + sizeof *m, tl);
	text[tl] = '\0';
	return 1;
}

struct attempt {
	char statedir[PATHBUF], dir[PATHBUF];
	struct info in;
	int sock, logfd, sfd;
	int in_p[2], out_p[2], err_p[2];
	sigset_t oldmask;
	int masked;
};

static void undo(struct attempt *a)
{
	int *fds[] = {&a->sock, &a->logfd, &a->sfd, &a->in_p[0], &a->in_p[1], &a->out_p[0],
		      &a->out_p[1], &a->err_p[0], &a->err_p[1]};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	if (a->masked)
		sigprocmask(SIG_SETMASK, &a->oldmask, NULL);
	a->masked = 0;
}

/*
 * wait_started waits for the server's answer to the request. A server
 * that stops answering while our request still sits unread in its queue
 * (stopped by a signal, or frozen) is killed, so that the request can
 * never run later, and the normal path takes over.
 */
static int wait_started(struct attempt *a, int *pid)
{
	struct mxc_msg m;
	char text[1024];
	for (;;) {
		struct pollfd p = {.fd = a->sock, .events = POLLIN};
		int r = poll(&p, 1, 500);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			int outq = 0;
			char st = 0;
			int alive = mxc_process_is(a->in.server_pid, a->in.server_start, &st);
			if (ioctl(a->sock, SIOCOUTQ, &outq) == 0 && outq > 0 && alive && (st == 'T' || st == 't' || mxc_frozen(a->in.freeze))) {
				kill((pid_t)a->in.server_pid, SIGKILL);
				return why("the exec server does not answer (stopped or frozen); killed it");
			}
			if (!alive && outq > 0)
				return why("the exec server is gone");
			continue;
		}
		int got = recv_msg(a->sock, &m, text, sizeof text);
		if (got <= 0)
			return why("the exec server closed the connection");
		if (m.type == MXC_MSG_STARTED) {
			*pid = m.value;
			return 0;
		}
		if (m.type == MXC_MSG_FALLBACK) {
			static char reason[1100];
			snprintf(reason, sizeof reason, "the exec server refused: %s", text);
			return why(reason);
		}
		return why("unexpected answer from the exec server");
	}
}

static int try_start(struct attempt *a, struct mxc_cmdline *cl, int *pid)
{
	/* With 0, 1 or 2 closed, our own fds would take their place. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			return why("stdin, stdout or stderr is closed");
	char path[PATHBUF + 16], buf[16384];
	if ((size_t)snprintf(a->statedir, sizeof a->statedir, "%s/%s", cl->root, cl->id) >= sizeof a->statedir ||
	    (size_t)snprintf(a->dir, sizeof a->dir, "%s/exec", a->statedir) >= sizeof a->dir)
		return why("path too long");
	snprintf(path, sizeof path, "%s/info", a->dir);
	if (mxc_read_small(path, buf, sizeof buf) <= 0)
		return why("no exec server for this container");
	if (parse_info(buf, &a->in) < 0)
		return why("unreadable exec server info");
	if (!mxc_process_is(a->in.init_pid, a->in.init_start, NULL))
		return why("the container's init is not running");
	if (mxc_frozen(a->in.freeze))
		return why("the container is paused");
	/* The normal path re-reads the bundle's process at every exec. */
	struct stat st;
	if ((size_t)snprintf(path, sizeof path, "%s/config.json", a->in.bundle) >= sizeof path || stat(path, &st) < 0 || (unsigned long long)st.st_dev != a->in.cfg_dev ||
	    (unsigned long long)st.st_ino != a->in.cfg_ino || (unsigned long long)st.st_size != a->in.cfg_size ||
	    (unsigned long long)st.st_mtim.tv_sec != a->in.cfg_msec ||
	    (unsigned long long)st.st_mtim.tv_nsec != a->in.cfg_mnsec)
		return why("the bundle's config.json changed since the exec server started");
	if (cl->log) {
		/* As the CLI's `before`: the log file is created even if unused. */
		a->logfd = mxc_open(cl->log, O_CREAT | O_WRONLY | O_APPEND | O_SYNC | O_CLOEXEC, 0644);
		if (a->logfd < 0)
			return why("cannot open --log");
	}

	/* Catch every signal from here on, as the normal path does. */
	sigset_t all;
	sigfillset(&all);
	int sync_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
	for (size_t i = 0; i < sizeof sync_sigs / sizeof sync_sigs[0]; i++)
		sigdelset(&all, sync_sigs[i]);
	if (sigprocmask(SIG_BLOCK, &all, &a->oldmask) < 0)
		return why("sigprocmask");
	a->masked = 1;
	a->sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->sfd < 0)
		return why("signalfd");

	a->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (a->sock < 0)
		return why("socket");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", a->dir) >= sizeof sa.sun_path) {
		/* Too long for sockaddr_un: connect through /proc/self/fd. */
		int dfd = mxc_open(a->dir, O_PATH | O_CLOEXEC | O_DIRECTORY, 0);
		if (dfd < 0)
			return why("open the exec server dir");
		snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/sock", dfd);
		int r = connect(a->sock, (struct sockaddr *)&sa, sizeof sa);
		close(dfd);
		if (r < 0)
			return why("connect to the exec server");
	} else if (connect(a->sock, (struct sockaddr *)&sa, sizeof sa) < 0) {
		return why("connect to the exec server");
	}

	if (pipe2(a->in_p, O_CLOEXEC) < 0 || pipe2(a->out_p, O_CLOEXEC) < 0 || pipe2(a->err_p, O_CLOEXEC) < 0)
		return why("pipe");
	/* Owned as the normal path leaves them: libcontainer's InitializeIO
	 * gives them to the container's root, its fixStdioPermissions then
	 * the uid to the process's user (so that it can open /dev/stdout). */
	int pfds[] = {a->in_p[0], a->in_p[1], a->out_p[0], a->out_p[1], a->err_p[0], a->err_p[1]};
	if (a->in.stdio_uid != 0 || a->in.root_gid != 0)
		for (size_t i = 0; i < 6; i++)
			if (fchown(pfds[i], (uid_t)a->in.stdio_uid, (gid_t)a->in.root_gid) < 0)
				return why("fchown the stdio pipes");

	struct mxc_request req = {.cwd = (char *)cl->cwd, .argc = cl->argc, .argv = cl->argv, .envc = cl->envc, .env = cl->env};
	struct mxc_buf b = {0};
	if (mxc_encode_request(&req, &b) < 0) {
		mxc_buf_free(&b);
		return why("the command line is too large for the exec server");
	}
	int fds[3] = {a->in_p[0], a->out_p[1], a->err_p[1]};
	char cbuf[CMSG_SPACE(sizeof fds)];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = {.iov_base = b.p, .iov_len = b.len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof fds);
	memcpy(CMSG_DATA(c), fds, sizeof fds);
	ssize_t sent = sendmsg(a->sock, &mh, MSG_NOSIGNAL);
	mxc_buf_free(&b);
	if (sent < 0)
		return why(errno == EMSGSIZE ? "the command line is too large for the exec server" : "send to the exec server");
	close(a->in_p[0]);
	close(a->out_p[1]);
	close(a->err_p[1]);
	a->in_p[0] = a->out_p[1] = a->err_p[1] = -1;
	return wait_started(a, pid);
}

static void run_committed(struct attempt *a, struct mxc_cmdline *cl)
{
	if (a->in.audit)
		write_audit(a->statedir, cl->id, cl, &a->in);
	if (a->logfd >= 0) {
		close(a->logfd);
		a->logfd = -1;
	}
	fcntl(a->in_p[1], F_SETFL, O_NONBLOCK);
	fcntl(a->out_p[0], F_SETFL, O_NONBLOCK);
	fcntl(a->err_p[0], F_SETFL, O_NONBLOCK);
	static struct relay rin, rout, rerr;
	static char bufs[3][RELAY_BUF];
	relay_init(&rin, bufs[0], 0, a->in_p[1], a->in_p[1], RELAY_BUF);
	relay_init(&rout, bufs[1], a->out_p[0], 1, a->out_p[0], chunk_for(1));
	relay_init(&rerr, bufs[2], a->err_p[0], 2, a->err_p[0], chunk_for(2));
	a->in_p[1] = a->out_p[0] = a->err_p[0] = -1;
	int status = -1;
	for (;;) {
		if (status >= 0 && rout.done && rerr.done)
			_exit(status);
		struct pollfd p[8];
		int n = 0, isock = -1, isig = -1;
		struct relay *rs[3] = {&rin, &rout, &rerr};
		int ifrom[3], ito[3];
		if (status < 0 && a->sock >= 0) {
			isock = n;
			p[n++] = (struct pollfd){.fd = a->sock, .events = POLLIN};
		}
		isig = n;
		p[n++] = (struct pollfd){.fd = a->sfd, .events = POLLIN};
		for (int k = 0; k < 3; k++) {
			struct relay *r = rs[k];
			ifrom[k] = ito[k] = -1;
			if (r->done)
				continue;
			if (r->len == 0) {
				ifrom[k] = n;
				p[n++] = (struct pollfd){.fd = r->from, .events = POLLIN};
			} else {
				ito[k] = n;
				p[n++] = (struct pollfd){.fd = r->to, .events = POLLOUT};
			}
		}
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(255);
		}
		if (isock >= 0 && p[isock].revents) {
			struct mxc_msg m;
			char text[1024];
			int got = recv_msg(a->sock, &m, text, sizeof text);
			if (got > 0 && m.type == MXC_MSG_EXITED) {
				status = m.value & 0xff;
				/* The process is gone: stop feeding its stdin. */
				relay_close(&rin);
			} else if (got <= 0) {
				fprintf(stderr, "mxc-runtime: exec failed: lost the exec server of container %s before the process exited\n", cl->id);
				_exit(255);
			}
		}
		if (p[isig].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(a->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				int s = (int)si.ssi_signo;
				if (status >= 0 || s == SIGCHLD || s == SIGURG || s == SIGPIPE || s == SIGWINCH)
					continue;
				send_msg(a->sock, MXC_MSG_SIGNAL, s);
			}
		}
		for (int k = 0; k < 3; k++) {
			short rf = ifrom[k] >= 0 ? p[ifrom[k]].revents : 0;
			short rt = ito[k] >= 0 ? p[ito[k]].revents : 0;
			if (rf || rt)
				relay_step(rs[k], rf, rt);
		}
	}
}

void mxc_client(struct mxc_cmdline *cl, int mode)
{
	debug_on = mxc_env_debug("MXC_EXEC_FAST");
	struct attempt a;
	/* Not memset: 21 KiB of mostly unused path and info buffers (see
	 * clear_info). */
	a.statedir[0] = a.dir[0] = '\0';
	clear_info(&a.in);
	a.masked = 0;
	a.sock = a.logfd = a.sfd = -1;
	a.in_p[0] = a.in_p[1] = a.out_p[0] = a.out_p[1] = a.err_p[0] = a.err_p[1] = -1;
	int pid = 0;
	if (try_start(&a, cl, &pid) == 0) {
		if (debug_on)
			fprintf(stderr, "mxc-runtime: exec: fast path (pid %d in the container)\n", pid);
		run_committed(&a, cl); /* does not return */
	}
	undo(&a);
	mxc_hand_over("exec", "MXC_EXEC_FAST", mode, fallback_reason);
}
