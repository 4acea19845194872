// Package inithello lets a container's init tell the runtime that it
// exists, in its own namespaces, as soon as its Go code starts.
//
// Why: the egress filter and the policy monitor need the init's pid (its
// network namespace, its pidfd). libcontainer hands the runtime that pid
// only when (*Container).Start returns, which is after the init's Go
// start-up, its configuration and every mount of the rootfs: ~20 ms on a
// 2-core machine, during which the runtime waits and the second core is
// mostly idle. nsexec (C, before the Go runtime) has made every namespace by
// the time `mxc-runtime init` runs Go code, so from that moment the
// namespace can be programmed. With a hello at that moment, mxc programs
// the egress filter and configures the monitor while the init sets up its
// rootfs, instead of after (docs/benchmarks.md has the figures).
//
// How: the runtime makes a SOCK_SEQPACKET socketpair and appends one end
// to the init's ExtraFiles, right after agentexec's two memfds (fd E+2,
// where E is the "mxc-agent-exe" placeholder FixupInitFDs finds). The init
// sends one byte on it (Send) and marks it close-on-exec, so that the
// agent's program never gets it. The runtime's end has SO_PASSCRED: the
// kernel attaches the sender's pid to the message, translated into the
// runtime's pid namespace (the init is pid 1 in its own), and nothing in
// the message itself has to be trusted.
//
// Safety of the fd choice (internal/initfd): libcontainer puts the
// process's ExtraFiles at fds 3.. in order and its own fds (console, init
// and sync sockets, log pipe) after them, with their numbers in the init's
// environment. E+2 is taken only if it lies below all of those and is a
// SOCK_SEQPACKET socket on which Pair queued the hello's magic message;
// otherwise (an exec, a container without the hello, whose E+2 may be
// another package's socket such as linux/initmount's) Send leaves it alone.
package inithello
