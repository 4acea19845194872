//go:build linux

// Package container is the Linux lifecycle driver of mxc-runtime: it loads an
// OCI bundle, resolves the agent policy, and drives runc's libcontainer to
// create, start, exec into, signal and destroy containers, keeping mxc's own
// record (policy, crash journal, enforcement state) next to libcontainer's.
//
// Layout of a container's state dir <root>/<id>/:
//
//	state.json   libcontainer's state (written at the end of a successful create)
//	mxc.json     mxc's record: phase, cgroup paths, enforcement results (written
//	             right after the dir exists, before anything with side effects,
//	             so that `delete --force` can undo a create killed at any point)
//	policy.json  the effective agent policy (spec.Effective), when one applies
//	audit.jsonl  audit events
//	exec/        the resident exec server's socket and info (linux/execsrv),
//	             when the fast exec path is on for this container
//	egress.json, monitor.json  what the policy engine set up (linux/enforce)
package container
