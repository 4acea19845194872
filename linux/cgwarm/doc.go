// Package cgwarm hides a kernel wait behind the runtime's own start-up.
//
// Moving a process into a cgroup (a write to cgroup.procs) write-locks the
// kernel's cgroup_threadgroup_rwsem, a percpu rwsem whose writer first
// waits for an RCU grace period unless another writer came within about
// one grace period before (rcu_sync). On hosts that do not mount cgroups
// with favordynmods, every container start therefore spends 5-25 ms in the
// write that moves the container's init into its cgroups (measured on 2-core
// VMs; docs/benchmarks.md, "The cgroup attach stall"), and runc and crun pay
// it too. That write comes ~10 ms into `create`: after the Go start-up, the
// spec, the state dir and the init's spawn.
//
// Start begins a no-op attach (the runtime's own pid, into the cgroup it
// is already in) in the background as soon as the process starts, so the
// grace period elapses while the runtime does that work; the real attach
// then finds the lock warm. The no-op changes no cgroup membership. Like
// any attach it holds cgroup_mutex while it waits, which the real attach
// would have done a few milliseconds later anyway.
//
// MXC_CGROUP_PREWARM=0 turns it off (for measuring it; bench/coldattach).
package cgwarm
