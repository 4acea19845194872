// Package helperheap is the heap policy of mxc's long-lived helper
// processes: the policy monitor and the egress gate, and (Delay) the
// containerd shim.
//
// They sleep almost all the time, so they keep a small heap (GOGC=25).
// But a small heap goal from the first allocation means several garbage
// collections while the helper starts up (the Go runtime, the audit log,
// the gate's DNS server: 1-2 MiB of allocations), ~3 ms of CPU per
// container measured with perf, spent in the busiest moment of a
// container's creation on a machine whose `run` is CPU-bound. So a helper
// starts with the collector off (its spawner sets GOGC=off, which the Go
// runtime reads before any allocation), a memory limit as the safety net,
// and turns GOGC=25 on once it has settled.
package helperheap

import (
	"math"
	"os"
	"runtime/debug"
	"time"
)

// Env is the environment entry a spawner gives a helper.
const Env = "GOGC=off"

// startLimit bounds the heap while the collector is off: far above what
// a helper allocates at start-up, far below anything that would hurt.
const startLimit = 64 << 20

// Settle is how long after Start the collector comes on.
const Settle = time.Second

// Start keeps the collector off (bar startLimit) for Settle, then sets
// GOGC=25 with no limit. Call it first thing in the helper's main.
func Start() {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(startLimit)
	time.AfterFunc(Settle, settled)
}

func settled() {
	debug.SetGCPercent(25)
	debug.SetMemoryLimit(math.MaxInt64)
}

// Delay keeps the collector off (bar startLimit) for d, then restores the
// setting the process started with (GOGC from its environment, default
// 100). For the containerd shim: containerd starts it for every container
// (and the same binary twice more, for `start` and the clean-up), and a
// fresh Go heap's 4 MiB goal means collections during the task's creation
// that perf puts at about a fifth of the shim's CPU; once running, it
// keeps the runc shim's heap policy.
func Delay(d time.Duration) {
	prev := debug.SetGCPercent(-1)
	if prev < 0 {
		return // GOGC=off: nothing to restore, and no limit wanted
	}
	prevLimit := debug.SetMemoryLimit(startLimit)
	time.AfterFunc(d, func() {
		debug.SetGCPercent(prev)
		debug.SetMemoryLimit(prevLimit)
	})
}

// beforeEnv carries, into a process started with GOGC=off by OffForChildren,
// the GOGC its starter had (possibly empty), to be restored by Inherit.
const beforeEnv = "MXC_GOGC_BEFORE"

// OffForChildren has the processes this one starts next begin with the
// collector off (GOGC=off in its environment): a Go program's package
// initialisation runs before its main can turn the collector off. The
// child calls RestoreEnv, and Delay to turn its collector on later.
func OffForChildren() {
	if _, set := os.LookupEnv(beforeEnv); set {
		return
	}
	os.Setenv(beforeEnv, os.Getenv("GOGC"))
	os.Setenv("GOGC", "off")
}

// RestoreEnv, in a process started under OffForChildren, puts its
// starter's GOGC back into its environment, for the processes it starts;
// its own collector, off since its start, is the caller's to turn on
// (Delay). It reports whether the process was started that way.
func RestoreEnv() bool {
	before, ok := os.LookupEnv(beforeEnv)
	if !ok {
		return false
	}
	os.Unsetenv(beforeEnv)
	if before == "" {
		os.Unsetenv("GOGC")
	} else {
		os.Setenv("GOGC", before)
	}
	return true
}
