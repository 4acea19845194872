// Package monitor is the per-container policy monitor: the process that
// watches one container while its init runs. It kills the container when
// process.timeout runs out, reports oom and fs.deny audit events (the
// latter from kernel audit records of Landlock denials), and hosts the
// container's egress DNS gate (linux/egress). The policy engine
// (linux/enforce) spawns it and writes its Config.
//
// It runs as `mxc-monitor policy-monitor CONFIG`: a binary of its own,
// half the size of mxc-runtime (no libcontainer, no CLI), so that the
// process every policy container keeps has half as much binary resident
// (RSS 7.7 MiB against ~15 with a single container). mxc-runtime keeps the same verb, used when mxc-monitor
// is not installed next to it.
package monitor
