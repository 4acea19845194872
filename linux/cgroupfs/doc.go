// Package cgroupfs mounts a container's view of the cgroup v1 hierarchies
// (the spec's "cgroup" mount at /sys/fs/cgroup) from mxc's own code in the
// container's init, instead of leaving it to libcontainer.
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
// integration/cgroupfs compares the container's mountinfo with and without
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
// Only the plain case is taken (Take): cgroup v1, a mount namespace, no
// user namespace without a cgroup namespace (libcontainer bind-mounts host
// paths into it), no SELinux mount label, one "cgroup" mount, at
// /sys/fs/cgroup, after a sysfs mount at /sys, and no later mount at, below
// or above /sys/fs/cgroup (such a mount would be mounted before this one
// instead of after it). Anything else stays with libcontainer.
// MXC_CGROUPFS=0 in the runtime's environment turns the package off (A/B
// benchmarks, the comparison test).
package cgroupfs
