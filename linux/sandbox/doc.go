// Package sandbox runs one host command under an agent policy, with no
// bundle and no container: the `mxc-runtime sandbox` verb that coding
// agents call for every tool command.
//
// The command sees the host's filesystem, read-only except the policy's
// readwritePaths, with deniedPaths masked; Landlock (when the policy lists
// paths, everything unlisted is out of reach), the agent seccomp profile,
// no_new_privs and the policy's capability bound apply as in a container;
// it gets a network namespace of its own with only loopback, the host's
// network when the policy allows all egress and has no network rule, and,
// when the policy allows some egress, the namespace of egress.NewSandbox
// (slirp4netns behind the same nftables table and DNS gate as a
// container; root only).
//
// It is built for latency. As root, there is no fork at all: the calling
// thread unshares its mount and network namespaces, sets up the mounts,
// restricts itself and execs the command, which therefore keeps the pid,
// the stdio, the terminal and the exit status of the `sandbox` process;
// signals reach it directly. A non-root caller needs a user namespace,
// which a multi-threaded Go process cannot unshare, so the command then
// runs in a child started in new user, mount and network namespaces; the
// parent forwards signals and passes its exit status through. A sandbox
// with an egress filter also runs the command in a child (in the
// filtered namespace and a mount namespace of its own): the sandbox
// process holds the network (slirp4netns, the gate) while the command
// runs and tears it down after.
package sandbox
