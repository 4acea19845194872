// Package helperheap is the heap policy of mxc's long-lived helper
// processes: the policy monitor and the egress gate.
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
