package monitor

import "mxc.dev/mxc/internal/monitorwatch"

// Verb is the hidden CLI verb of the per-container monitor, in
// mxc-runtime and in mxc-monitor.
const Verb = monitorwatch.Verb

// ConfigFile is the monitor's configuration in the state dir (for a
// restart).
const ConfigFile = monitorwatch.ConfigFile

// defaultRoot is mxc-runtime's --root default (cmd/mxc-runtime).
const defaultRoot = "/run/mxc"

// Config is what the monitor watches: written by the policy engine
// (linux/enforce) to the monitor's config pipe and to monitor.json.
type Config struct {
	ID          string            `json:"id"`
	Root        string            `json:"root"`
	StateDir    string            `json:"stateDir"`
	Agent       string            `json:"agent,omitempty"`
	InitPid     int               `json:"initPid"`
	InitStart   uint64            `json:"initStart"`
	TimeoutMs   uint64            `json:"timeoutMs,omitempty"`
	OOM         bool              `json:"oom,omitempty"`
	KernelAudit bool              `json:"kernelAudit,omitempty"`
	HostPID     bool              `json:"hostPID,omitempty"`
	Cgroups     map[string]string `json:"cgroups,omitempty"`
	// Gate: the monitor is the egress gate's host (egress.GateHost): it
	// serves the namespace's DNS gate in-process, or stands by to take it
	// over (pods), and restarts it when it fails. Instructions come on fd
	// 4, readiness goes out on fd 5.
	Gate bool `json:"gate,omitempty"`
}

// Needed reports whether there is anything to watch: a monitor costs a
// process per container, so none is started for nothing.
func (m *Config) Needed() bool { return m.TimeoutMs > 0 || m.OOM || m.KernelAudit || m.Gate }

// StartedFile records when the container started (the exec fifo went
// away), so that a restarted monitor keeps the original timeout.
const StartedFile = "monitor.started"

// ConfigFDEnv tells the monitor to read its configuration from a pipe
// (fd 6) instead of the file named on its command line: it is started
// before the configuration is complete.
const ConfigFDEnv = "MXC_MONITOR_CONFIG_FD"
