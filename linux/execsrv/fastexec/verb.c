//go:build linux && cgo

/*
 * The part of `start ID` and `delete ID` without Go that is the same for
 * both (start.c, delete.c): everything the Go CLI's verb does before it
 * looks at the container's status.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fastexec.h"

static int fail(const char **why, const char *reason)
{
	*why = reason;
	return -1;
}

int mxc_verb_open(const struct mxc_globals *g, const char *id, struct mxc_verb *v, const char **why)
{
	memset(v, 0, sizeof *v);
	v->lockfd = v->logfd = -1;
	char cwd[PATH_MAX];
	const char *wd = getcwd(cwd, sizeof cwd);
	v->root = mxc_abs_root(g->root ? g->root : MXC_DEFAULT_ROOT, wd);
	if (!v->root)
		return fail(why, "--root");
	v->statedir = mxc_join3(v->root, "/", id);
	v->lock = mxc_join3(v->root, "/.locks/", id);
	if (!v->statedir || !v->lock)
		return fail(why, "out of memory");
	struct stat st;
	if (lstat(v->statedir, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail(why, "no state dir");
	if (g->log && g->log[0]) {
		/* As the CLI's `before`: the log file is created even if unused. */
		v->logfd = mxc_open(g->log, O_CREAT | O_WRONLY | O_APPEND | O_SYNC | O_CLOEXEC, 0644);
		if (v->logfd < 0)
			return fail(why, "cannot open --log");
	}
	/* linux/container's Lock: flock on <root>/.locks/<id> (made if
	 * missing, as the Go CLI does: a failed delete removes it), the file
	 * still the one at that path once locked. */
	v->lockfd = mxc_open(v->lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (v->lockfd < 0)
		return fail(why, "cannot open the lock file");
	if (flock(v->lockfd, LOCK_EX | LOCK_NB) < 0)
		return fail(why, "another verb holds the container's lock");
	struct stat held, cur;
	if (fstat(v->lockfd, &held) < 0 || stat(v->lock, &cur) < 0 || held.st_ino != cur.st_ino ||
	    held.st_dev != cur.st_dev)
		return fail(why, "the lock file was replaced");
	char *path = mxc_join3(v->statedir, "/", "state.json");
	if (!path)
		return fail(why, "out of memory");
	size_t len = 0;
	char *data = mxc_read_file(path, &len);
	free(path);
	if (!data)
		return fail(why, "cannot read state.json");
	int parsed = mxc_parse_state(data, len, id, &v->st);
	free(data);
	if (parsed < 0)
		return fail(why, "state.json is not in the form expected");
	return 0;
}

void mxc_verb_close(struct mxc_verb *v)
{
	if (v->logfd >= 0)
		close(v->logfd);
	if (v->lockfd >= 0)
		close(v->lockfd);
	free(v->root);
	free(v->statedir);
	free(v->lock);
	mxc_free_state(&v->st);
	memset(v, 0, sizeof *v);
	v->lockfd = v->logfd = -1;
}
