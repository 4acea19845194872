//go:build linux && cgo

/*
 * `mxc-runtime [global flags] delete ID` of a stopped container without an
 * agent policy, without starting Go.
 *
 * Deleting such a container is what libcontainer's destroy of a stopped
 * container does: its cgroups removed, its state dir removed; then the
 * lock file goes (linux/container's Delete). Through the Go CLI that is
 * ~1-2 ms of work behind Go's start-up and the state's decoding, paid by
 * every container a client removes (the containerd shim after each task,
 * docker rm, podman rm).
 *
 * Everything else is the Go CLI's, and it gets the command back before
 * anything is removed: a container that is not stopped or is paused
 * (with --force, which podman always passes, the Go CLI kills it), an
 * agent policy to tear down (mxc.json has a policy digest), poststop
 * hooks, a pid namespace that is not the container's own (the other
 * processes of its cgroups must be killed), Intel RDT, a cgroup that one
 * rmdir does not remove (sub-cgroups: the Go CLI walks and retries),
 * anything unexpected in state.json. A cgroup or state file
 * removed before such a hand-over is one less for the Go CLI's delete,
 * which tolerates what is already gone.
 *
 * MXC_DELETE_FAST: "0" (or off/false/no) disables it; "require" makes a
 * delete it would hand over fail instead (exit 255; tests).
 * MXC_DELETE_FAST_DEBUG=1 says on stderr which path a delete took, and why.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fastexec.h"

/* rm_tree is os.RemoveAll of name under at: symlinks are removed, not
 * followed. 0, or -1 with errno. */
static int rm_tree(int at, const char *name, int depth)
{
	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	if (depth > 64) {
		errno = ELOOP;
		return -1;
	}
	int fd = mxc_openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (rm_tree(dirfd(d), e->d_name, depth + 1) < 0) {
			rc = -1;
			break;
		}
	}
	int saved = errno;
	closedir(d);
	if (rc < 0) {
		errno = saved;
		return -1;
	}
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

/*
 * try_delete: 0 never returns (the container is deleted and the process
 * exits); -1 when the Go CLI must run the command.
 */
static int try_delete(struct mxc_verb *v, const struct mxc_globals *g, const char *id, const char **why)
{
	if (mxc_verb_open(g, id, v, why) < 0)
		return -1;
	if (!v->st.pid_private) {
		*why = "no pid namespace of its own: the Go CLI kills what is left in its cgroups";
		return -1;
	}
	if (v->st.poststop) {
		*why = "poststop hooks";
		return -1;
	}
	if (v->st.intelrdt) {
		*why = "an Intel RDT group";
		return -1;
	}
	/* mxc's record: a policy digest means policy state to tear down
	 * (monitor, egress filter, session tier), which is the Go CLI's. */
	char *path = mxc_join3(v->statedir, "/", "mxc.json");
	size_t len = 0;
	char *rec = path ? mxc_read_file(path, &len) : NULL;
	free(path);
	if (!rec) {
		*why = "no mxc.json";
		return -1;
	}
	int policy = strstr(rec, "\"policyDigest\"") != NULL;
	free(rec);
	if (policy) {
		*why = "an agent policy to tear down";
		return -1;
	}
	/* libcontainer's Status: paused first, then the init. */
	if (mxc_frozen(v->st.freeze)) {
		*why = "the container is paused (or its freezer cannot be read)";
		return -1;
	}
	if (mxc_process_is(v->st.pid, v->st.start, NULL)) {
		*why = "the container is not stopped";
		return -1;
	}
	/* libcontainer's destroy: the cgroups, then the state dir. */
	for (int k = 0; k < v->st.ncgroups; k++) {
		const char *cg = v->st.cgroups[k];
		if (cg[0] != '/') {
			*why = "a relative cgroup path";
			return -1;
		}
		if (rmdir(cg) < 0 && errno != ENOENT) {
			*why = "a cgroup that one rmdir does not remove";
			return -1;
		}
	}
	if (rm_tree(AT_FDCWD, v->statedir, 0) < 0) {
		*why = "the state dir could not be removed";
		return -1;
	}
	/* linux/container's Lock.ReleaseAndRemove: unlink, then unlock. */
	unlink(v->lock);
	return 0;
}

void mxc_delete_main(int argc, char **argv)
{
	int mode = mxc_env_mode("MXC_DELETE_FAST");
	if (mode == MXC_MODE_OFF)
		return;
	struct mxc_globals g;
	int i = mxc_parse_globals(argc, argv, "delete", &g);
	if (i < 0)
		return;
	/* `delete [--force] ID`: --force (-f; Go's flag package takes one or
	 * two dashes) changes nothing for a stopped container, and anything
	 * it would change (kill a running one, clean up an interrupted
	 * create) is handed over anyway. Other flags (--help, --force=...)
	 * and more arguments are the Go CLI's. */
	for (; i < argc - 1; i++) {
		const char *f = argv[i];
		if (strcmp(f, "-f") && strcmp(f, "--f") && strcmp(f, "-force") && strcmp(f, "--force"))
			return;
	}
	if (i != argc - 1 || argv[i][0] == '-' || !mxc_valid_id(argv[i]))
		return;
	struct mxc_verb v;
	const char *why = "unknown";
	if (try_delete(&v, &g, argv[i], &why) == 0) {
		if (mxc_env_debug("MXC_DELETE_FAST"))
			fprintf(stderr, "mxc-runtime: delete: fast path\n");
		_exit(0);
	}
	mxc_verb_close(&v);
	mxc_hand_over("delete", "MXC_DELETE_FAST", mode, why);
}
