package monitor

import (
	"fmt"
	"os"
	"strconv"

	"mxc.dev/mxc/linux/egress"
)

// The monitor can start as a C stage (the constructor of mxc-runtime:
// linux/execsrv/fastexec/premonitor.c) that waits, without a Go runtime,
// for the first thing that needs the Go monitor, and then execs it in the
// same process: see docs/design/enforcement.md, "The monitor's C stage".
// The runtime starts the C stage with the PreEnv* variables; the C stage
// hands over with PreWokenEnv (and OOMBaseEnv).
const (
	// PreExeEnv names the Go monitor's binary; its presence makes
	// `mxc-runtime policy-monitor` start as the C stage.
	PreExeEnv = "MXC_PREMON_EXE"
	// PreCommitEnv is the read end of the commit pipe: the C stage waits
	// for one byte on it (the runtime recorded its pid) and exits at EOF.
	PreCommitEnv = "MXC_PREMON_COMMIT"
	// PreEagerEnv ("1") has the C stage exec the Go monitor as soon as it
	// is committed (to watch a pod's gate).
	PreEagerEnv = "MXC_PREMON_EAGER"
	// PrePidEnv and PreStartEnv name the container's init (pid, start
	// time in clock ticks since boot).
	PrePidEnv   = "MXC_PREMON_PID"
	PreStartEnv = "MXC_PREMON_START"
	// PreTimeoutEnv is process.timeout in milliseconds (absent: none).
	PreTimeoutEnv = "MXC_PREMON_TIMEOUT_MS"
	// PreOOMEnv is the memory cgroup's directory (absent: no OOM watch);
	// PreOOMV2Env is "1" when it is a cgroup v2 directory.
	PreOOMEnv   = "MXC_PREMON_OOM"
	PreOOMV2Env = "MXC_PREMON_OOM_V2"
	// PreWakeEnv lists the descriptors (the egress gate's sockets) whose
	// first readable byte needs the Go monitor.
	PreWakeEnv = "MXC_PREMON_WAKE"
	// PreLeadEnv is how long before the timeout's deadline the C stage
	// starts the Go monitor (milliseconds; default 2000).
	PreLeadEnv = "MXC_PREMON_LEAD_MS"

	// PreWokenEnv tells the Go monitor that it was started late, by the C
	// stage: no readiness or
	// configuration pipes, the configuration is in its file, and the
	// gate's instruction and sockets come with egress.AdoptEnv. Its value
	// says what woke it (for the log).
	PreWokenEnv = "MXC_MONITOR_PRE_WOKEN"
	// OOMBaseEnv is the OOM kill count when the C stage started watching.
	OOMBaseEnv = "MXC_MONITOR_OOM_BASE"
)

// stage is how this monitor process was started.
type stage struct {
	pre     bool
	woken   string
	adopt   *egress.Adoption
	oomBase *uint64
}

// stageFromEnv reads (and removes) the hand-over variables.
func stageFromEnv() (stage, error) {
	var st stage
	st.woken, st.pre = os.LookupEnv(PreWokenEnv)
	os.Unsetenv(PreWokenEnv)
	if v, ok := os.LookupEnv(OOMBaseEnv); ok {
		os.Unsetenv(OOMBaseEnv)
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return st, fmt.Errorf("%s: %w", OOMBaseEnv, err)
		}
		st.oomBase = &n
	}
	a, err := egress.AdoptionFromEnv()
	if err != nil {
		return st, err
	}
	st.adopt = a
	if st.pre {
		fmt.Fprintf(os.Stderr, "policy monitor: Go stage started (%s)\n", st.woken)
	}
	return st, nil
}
