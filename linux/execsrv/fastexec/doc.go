//go:build linux && cgo

// Package fastexec is the C half of mxc's exec fast path: a constructor
// that runs in every mxc-runtime process before the Go runtime starts (as
// libcontainer's nsenter does) and is either
//
//   - the client: an `exec ID CMD...` the fast path can honour exactly
//     (global flags --root, --log, --log-format, --config; exec flags
//     --env/-e and --cwd; no terminal, user, capabilities, process file,
//     preserved fds, cgroup or detach) reaches the container's exec server
//     over <root>/<id>/exec/sock, relays stdio and signals, writes the
//     exec audit event and exits with the process's status, all without
//     starting Go; anything unexpected returns to the Go CLI, which runs
//     the normal path;
//   - the server: `exec-server serve` inside the container, which forks
//     and execs requests and never starts Go, so that it stays small;
//   - `start ID` of a created container and `delete ID` of a stopped one
//     without an agent policy (start.c, delete.c; verb.c and state.c
//     shared): the exec fifo read and removed, or the cgroups and state dir
//     removed, as libcontainer does, after the checks the Go CLI's verb
//     makes, without starting Go; anything else returns to the Go CLI.
//     MXC_START_FAST, MXC_DELETE_FAST and their _DEBUG variables work as
//     the two switches below do for exec.
//
// Import it for its side effect from the mxc-runtime main package only.
// The Go half (starting the server, its files) is package execsrv; the
// design and threat model are in docs/design/exec.md.
//
// MXC_EXEC_FAST: "0" (or off/false/no) disables the client; "require"
// makes an eligible exec fail (exit 255) instead of taking the normal path
// (for tests); anything else is the default. MXC_EXEC_FAST_DEBUG=1 prints
// which path an eligible exec took, and why, on stderr.
package fastexec

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter -std=gnu11 -I${SRCDIR}/../../../internal/ctorargs
// #include "fastexec.h"
import "C"
