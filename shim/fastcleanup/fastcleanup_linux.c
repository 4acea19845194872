//go:build linux && cgo

/*
 * `containerd-shim-mxc-v2 ... delete` answered from the bundle, before
 * the Go runtime starts (see doc.go). Every path that is not the one
 * case returns, and the Go shim runs as if this file did not exist.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shimc.h"
#include "ctorargs.h"

/* package shim's DeletedMarker */
#define MARKER "mxc-deleted"
/* A DeleteResponse is at most ~40 bytes (pid, status, timestamp). */
#define MAX_RESPONSE 256
#define ENV_MODE "MXC_SHIM_FAST_CLEANUP"

enum { MODE_AUTO, MODE_OFF, MODE_REQUIRE };

static int mode_from_env(void)
{
	const char *m = getenv(ENV_MODE);
	if (!m || !m[0])
		return MODE_AUTO;
	if (!strcmp(m, "0") || !strcmp(m, "off") || !strcmp(m, "false") || !strcmp(m, "no"))
		return MODE_OFF;
	if (!strcmp(m, "require"))
		return MODE_REQUIRE;
	return MODE_AUTO;
}

/* hand_over returns to the Go shim, saying why when asked to. */
static void hand_over(int mode, const char *why, const char *what)
{
	if (mode == MODE_REQUIRE) {
		fprintf(stderr, "containerd-shim-mxc-v2: delete: fast clean-up required (%s=require): %s%s%s\n",
			ENV_MODE, why, what ? ": " : "", what ? what : "");
		_exit(2);
	}
	const char *d = getenv(ENV_MODE "_DEBUG");
	if (d && d[0] == '1')
		fprintf(stderr, "containerd-shim-mxc-v2: delete: Go path: %s%s%s\n", why, what ? ": " : "", what ? what : "");
}

/* is_delete says whether argv is containerd's clean-up command line
 * (mxc_shim_argv), with an id, stored in *id. */
static int is_delete(int argc, char **argv, const char **id)
{
	const char *address;
	return mxc_shim_argv(argc, argv, "delete", id, &address) && *id != NULL;
}

/* read_marker reads the bundle's marker into buf; it returns its length,
 * 0 when it is empty (an older shim's), -1 when it is missing, too large
 * or unreadable. */
static ssize_t read_marker(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	size_t n = 0;
	for (;;) {
		if (n == size) {
			close(fd);
			return -1;
		}
		ssize_t r = read(fd, buf + n, size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	return (ssize_t)n;
}

/* needs_escape: mountinfo escapes these in paths; such a rootfs path is
 * left to the Go path rather than compared escaped. */
static int needs_escape(const char *p)
{
	for (; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			return 1;
	return 0;
}

/* mounted_under says whether anything is mounted at or below dir in this
 * mount namespace (what mount.UnmountRecursive would unmount): 1 yes,
 * 0 no, -1 unknown. */
static int mounted_under(const char *dir)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	size_t dlen = strlen(dir);
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	while (getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
		char *p = line;
		for (int field = 0; field < 4 && p; field++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		if (!p)
			continue;
		char *end = strchr(p, ' ');
		if (end)
			*end = 0;
		if (!strncmp(p, dir, dlen) && (p[dlen] == 0 || p[dlen] == '/')) {
			found = 1;
			break;
		}
	}
	int err = ferror(f);
	free(line);
	fclose(f);
	return err ? -1 : found;
}

__attribute__((constructor)) static void mxc_shim_fastcleanup(int cargc, char **cargv, char **cenvp)
{
	int argc;
	char **argv, **envp;
	const char *id;
	if (!mxc_ctor_args(cargc, cargv, cenvp, &argc, &argv, &envp) || !is_delete(argc, argv, &id))
		return;
	int mode = mode_from_env();
	if (mode == MODE_OFF)
		return;
	if (!id[0] || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, "..")) {
		hand_over(mode, "id is not one path component", id);
		return;
	}
	/* The bundle as the Go path finds it: the working directory's parent
	 * joined with the id (containerd runs the clean-up in the bundle). */
	char cwd[PATH_MAX], bundle[PATH_MAX], path[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd)) {
		hand_over(mode, "no working directory", NULL);
		return;
	}
	char *slash = strrchr(cwd, '/');
	if (!slash) {
		hand_over(mode, "working directory is not absolute", cwd);
		return;
	}
	if (slash == cwd)
		slash++; /* the parent is / */
	*slash = 0;
	const char *sep = (cwd[0] == '/' && cwd[1] == 0) ? "" : "/";
	if ((size_t)snprintf(bundle, sizeof bundle, "%s%s%s", cwd, sep, id) >= sizeof bundle ||
	    (size_t)snprintf(path, sizeof path, "%s/" MARKER, bundle) >= sizeof path) {
		hand_over(mode, "bundle path too long", NULL);
		return;
	}
	char resp[MAX_RESPONSE];
	ssize_t n = read_marker(path, resp, sizeof resp);
	if (n < 0) {
		hand_over(mode, "no task deletion recorded in the bundle", path);
		return;
	}
	if (n == 0) {
		hand_over(mode, "the deletion marker has no response (an older shim's)", path);
		return;
	}
	if ((size_t)snprintf(path, sizeof path, "%s/rootfs", bundle) >= sizeof path || needs_escape(path)) {
		hand_over(mode, "rootfs path not comparable with mountinfo", bundle);
		return;
	}
	int m = mounted_under(path);
	if (m != 0) {
		hand_over(mode, m > 0 ? "a mount is left at or below the rootfs" : "mountinfo unreadable", path);
		return;
	}
	if (mxc_shim_write_all(1, resp, (size_t)n) < 0) {
		fprintf(stderr, "containerd-shim-mxc-v2: delete: write response: %s\n", strerror(errno));
		_exit(1);
	}
	_exit(0);
}
