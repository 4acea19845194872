//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mxc.dev/mxc/bench/internal/cgattach"
)

// The cgroup attach stall. Moving a process into a cgroup (a write to
// cgroup.procs) write-locks the kernel's global cgroup_threadgroup_rwsem,
// a percpu rwsem: unless another attach happened within about one RCU
// grace period, the writer first waits for a grace period (rcu_sync), 5-25
// ms on this VM. Every runtime moves its container's init into its
// cgroups once per start, so every row of the table may carry the stall,
// and whether it does depends on the host (a favordynmods cgroup mount,
// kernel 6.18's per-threadgroup lock) and on other attaches nearby in time
// (a busy CI keeps it warm). attachProbe measures it so that a run states
// which case it was taken in; docs/benchmarks.md has the details.

// attachProbeGap is the quiet time before each probe: longer than the
// grace periods seen here, so each sample shows the cold case.
const attachProbeGap = 60 * time.Millisecond

// attachProbe times n writes of a fresh process's pid to cgroup.procs of
// a scratch pids cgroup, each after attachProbeGap without attaches of its
// own, and returns the median.
func attachProbe(n int) (time.Duration, error) {
	base := "/sys/fs/cgroup/pids"
	if cgroupMode() == "v2" {
		base = "/sys/fs/cgroup"
	}
	dir := filepath.Join(base, fmt.Sprintf("mxc-bench-attach-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, fmt.Errorf("attach probe: %w", err)
	}
	defer os.Remove(dir)
	var samples []time.Duration
	for i := 0; i < n; i++ {
		time.Sleep(attachProbeGap)
		d, err := cgattach.Time(dir)
		if err != nil {
			return 0, err
		}
		samples = append(samples, d)
	}
	return Summarize(samples).Median, nil
}

// attachProbeText is the probe's line for the run's description.
func attachProbeText() string {
	d, err := attachProbe(5)
	if err != nil {
		return fmt.Sprintf("not measured (%v)", err)
	}
	return fmt.Sprintf("%.2f ms (median of 5 pids written to cgroup.procs, each after %d ms without an attach)", float64(d.Microseconds())/1000, attachProbeGap.Milliseconds())
}
