// Package initmount makes some of a container's standard mounts, and its
// device nodes, from mxc's own code in the container's init, instead of
// leaving them to libcontainer: the view of the cgroup v1 hierarchies (the
// spec's "cgroup" mount at /sys/fs/cgroup), sysfs at /sys, the
// pseudo-filesystems under /dev (/dev/pts, /dev/shm, /dev/mqueue), and the
// nodes in /dev's tmpfs (/dev/null and the other defaults, and the spec's
// own there).
//
// Why: on a cgroup v1 host without a cgroup namespace, libcontainer turns
// that one spec mount into a tmpfs plus a bind mount and a read-only
// remount of the container's cgroup directory per hierarchy (11 on a
// typical host). libcontainer 1.5 wraps every one of those mounts in
// filepath-securejoin's path-resolution and procfs checks: ~120 system
// calls per hierarchy, ~1,300 of the ~2,900 calls of a container's init,
// ~2.5 ms of a ~21 ms `run` on a 2-core machine (docs/benchmarks.md). The
// checks exist because the destination lies in a rootfs an image controls;
// here the destination is one directory of the sysfs the init has just
// mounted, and everything below it is a tmpfs that this package has just
// made, so one resolution of the destination inside the root
// (openat2 RESOLVE_IN_ROOT) and plain mounts below it give the same safety.
//
// What it produces is what libcontainer's mountCgroupV1 produces, step for
// step: the tmpfs (nosuid, nodev, noexec, mode=755) with the mount's
// propagation flags, for each v1 hierarchy in /proc/self/mountinfo order a
// directory named after its mount point, the init's own cgroup of that
// hierarchy bind-mounted there (MS_BIND|MS_REC plus the mount's flags),
// the propagation flags, a remount with the mount's flags, and the
// symlinks for co-mounted controllers (cpu -> cpu,cpuacct).
// integration/runtime compares the container's mountinfo with and without
// this package.
//
// When: after libcontainer's own mounts and before pivot_root, the moment
// libcontainer runs the prestart and createRuntime hooks in the runtime
// (its procHooks sync). The runtime removes the cgroup mount from
// libcontainer's configuration and puts a function hook first in the
// prestart list; the hook tells the init to mount and waits for its
// answer, while libcontainer's init waits for the hooks to finish. So the
// mounts exist, as before, when any hook of the spec runs and when the
// init goes on to pivot_root, masked paths and read-only paths.
//
// Where the init is told: a SOCK_SEQPACKET socketpair. The runtime appends
// one end to the init's ExtraFiles, last (after agentexec's memfds and the
// init hello), and queues one message on it before the init starts: a
// magic prefix and the mount's parameters (rootfs, flags, propagation).
// `mxc-runtime init` looks only at the fd right below libcontainer's own
// fds (the last ExtraFile), and takes it only if it is a SOCK_SEQPACKET
// socket whose queued message starts with the magic (internal/initfd's
// Claim: peeked, so a socket passed through by a client, or another
// package's, is left as it was). It marks it close-on-exec, so the agent's
// program never gets it.
//
// In a cgroup namespace (the session tier's) libcontainer mounts each
// hierarchy itself instead of a bind (its root is then the container's
// cgroup), each through the same checked path; this package does the same
// with one mount per hierarchy.
//
// Which mounts (Take): the longest run at the end of the spec's mount
// list of mounts this package can make. Only the end, because the runtime
// spec has mounts made in their listed order (runtime-tools checks it in
// mountinfo), and libcontainer makes what it keeps before the hooks run:
// a mount this package made before one libcontainer keeps would come
// after it. runc's spec ends with /dev/pts, /dev/shm, /dev/mqueue, /sys
// and /sys/fs/cgroup, which are all taken; docker's, CRI's and ctr's add
// mounts after them (binds of /etc/hosts and the like, a /run tmpfs), so
// theirs stay with libcontainer. The policy's own mounts (masks of denied
// files, appended to the spec by linux/enforce) are not the user's list:
// they are made first, unless they lie at, above or below a taken mount,
// which then stays with libcontainer.
//
// What can be made, besides the conditions for the whole container (a
// mount namespace, not rootless, no SELinux mount label; nothing with an
// id mapping, recursive attributes, extensions, cleared flags or bind
// flags):
//   - the cgroup view: a "cgroup" mount at /sys/fs/cgroup on a cgroup v1
//     host, in sysfs at /sys, not in a user namespace without a cgroup
//     namespace (libcontainer bind-mounts host paths into one);
//   - sysfs at /sys, in an ordinary directory of the image (made if
//     missing; a symlink or a file there fails the container, as with
//     libcontainer);
//   - devpts at /dev/pts, a tmpfs at /dev/shm, mqueue at /dev/mqueue: in
//     the tmpfs libcontainer mounted at /dev (checked again by the init),
//     read-write (libcontainer remounts a read-only tmpfs after pivot_root,
//     from its own list), with no device node of the spec inside them.
//
// In a user namespace too: these filesystems need the namespace they
// belong to (the network namespace for sysfs, the IPC one for mqueue) to
// be owned by the container's user namespace, and the mount succeeds or
// fails with the same mount(2) call whoever makes it. libcontainer does
// nothing else for them there.
//
// Device nodes: libcontainer makes them after every mount (mknod, the
// mode set again past the umask, the owner; in a user namespace a bind
// mount of the host's node on an empty file), through the same checked
// path resolution, ~0.15 ms each (six default nodes: ~0.8-1.0 ms of the
// init's CPU, perf). This package makes the longest run at the end of the
// spec's list of nodes named directly in /dev, with /dev libcontainer's
// tmpfs and nothing mounted at or below them, the same way, after the
// mounts it takes: mounts then nodes, as libcontainer orders them (which
// shows in mountinfo when they are binds). Not the entries libcontainer
// makes after the nodes (/dev/ptmx, the /dev/fd and stdio symlinks,
// /dev/core) nor the console: for a node of the spec there, libcontainer's
// order decides what the container gets.
//
// Each mount is made as libcontainer's mountToRootfs makes it: a
// directory 0755, the mount with the spec's source, type, flags and data
// through an fd resolved inside the root, then its propagation flags.
// Each costs libcontainer 1.5 ~0.3 ms of checked path resolution (0.9 ms
// for /dev's three in a `run`, measured with them removed), this package a
// few system calls.
//
// MXC_INIT_MOUNTS=0 (or MXC_CGROUPFS=0, this package's older name) in the
// runtime's environment turns the package off (A/B benchmarks, the
// comparison tests).
package initmount
