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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fastexec.h"

/*
 * try_start does everything up to the first byte of the fifo: 0 once the
 * init wrote it (committed), -1 when the Go CLI must run the command.
 */
static int try_start(struct mxc_verb *v, const struct mxc_globals *g, const char *id, char **fifo, int *fifofd,
		     const char **why)
{
	if (mxc_verb_open(g, id, v, why) < 0)
		return -1;
	/* libcontainer's Status: paused first, then the init, then the fifo. */
	if (mxc_frozen(v->st.freeze)) {
		*why = "the container is paused (or its freezer cannot be read)";
		return -1;
	}
	if (!mxc_process_is(v->st.pid, v->st.start, NULL)) {
		*why = "the init is not running";
		return -1;
	}
	struct stat st;
	*fifo = mxc_join3(v->statedir, "/", "exec.fifo");
	if (!*fifo || stat(*fifo, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		*why = "no exec fifo: not in the created state";
		return -1;
	}
	/* Non-blocking: the init may not be in its open yet; poll says when
	 * its byte is there and when it closed its end. */
	*fifofd = mxc_open(*fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (*fifofd < 0) {
		*why = "cannot open the exec fifo";
		return -1;
	}
	for (;;) {
		struct pollfd pf = {.fd = *fifofd, .events = POLLIN};
		int r = poll(&pf, 1, 100);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = "poll on the exec fifo";
			return -1;
		}
		if (r == 0) {
			/* As libcontainer's exec: an init gone meanwhile is the
			 * Go CLI's to report. */
			if (!mxc_process_is(v->st.pid, v->st.start, NULL)) {
				*why = "the init exited before writing to the exec fifo";
				return -1;
			}
			continue;
		}
		char b;
		ssize_t n = read(*fifofd, &b, 1);
		if (n == 1)
			return 0;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		/* EOF (or an error) before the byte: nothing was consumed. */
		*why = "the exec fifo closed without the init's byte";
		return -1;
	}
}

/* finish waits for the init to close its end (its exec), as io.ReadAll in
 * libcontainer's readFromExecFifo, and removes the fifo. */
static void finish(const char *fifo, int fifofd) __attribute__((noreturn));
static void finish(const char *fifo, int fifofd)
{
	char b[512];
	for (;;) {
		struct pollfd pf = {.fd = fifofd, .events = POLLIN};
		int r = poll(&pf, 1, 100);
		if (r < 0 && errno != EINTR)
			break;
		/* On a timeout too: once the byte was read, a writer is known,
		 * and read returns 0 only when it has closed. */
		ssize_t n = read(fifofd, b, sizeof b);
		if (n == 0)
			break;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
	}
	if (unlink(fifo) < 0 && errno != ENOENT) {
		fprintf(stderr, "mxc-runtime: start: remove %s: %s\n", fifo, strerror(errno));
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
	struct mxc_verb v;
	char *fifo = NULL;
	int fifofd = -1;
	const char *why = "unknown";
	if (try_start(&v, &g, argv[i], &fifo, &fifofd, &why) == 0) {
		if (mxc_env_debug("MXC_START_FAST"))
			fprintf(stderr, "mxc-runtime: start: fast path\n");
		finish(fifo, fifofd); /* holds the lock until the process exits */
	}
	if (fifofd >= 0)
		close(fifofd);
	free(fifo);
	mxc_verb_close(&v);
	mxc_hand_over("start", "MXC_START_FAST", mode, why);
}
