//go:build linux

// Package execsrv is the Go half of mxc's exec fast path: the files of a
// container's resident exec server and what the runtime hands it.
//
// A container may have one exec server: a small C process (the mxc-runtime
// binary in its `exec-server serve` mode, package fastexec, which never
// starts the Go runtime) started in the container through the normal exec
// path, so it holds what a normal exec holds. `mxc-runtime exec ID CMD`
// reaches it from the host without starting Go either, and the server
// forks and execs the command. The design and its threat model are in
// docs/design/exec.md.
//
// Files, in <root>/<id>/exec/ (mode 0700: reachable only by the host's
// root; the container cannot see the host's state root at all):
//
//	sock         the listening SOCK_SEQPACKET socket (0600), whose fd the
//	             server inherits
//	info         what the client checks before using the server (server
//	             and init pid and start time, freezer file, bundle
//	             config.json identity, audit facts), one "key value" a line
//	lock         flock serialising server starts
//	starts       how many servers were started (a server that keeps dying
//	             is given up on)
//	unavailable  why this container has no fast path (the normal path is
//	             then always used)
//
// What the server reads at start, from fds it inherits: a config (the
// spec's cwd and environment, the UI variables to scrub from --env) and,
// for an agent container, a Landlock plan (the ruleset agent-exec would
// build), both as NUL-separated records "<tag><value>".
package execsrv
