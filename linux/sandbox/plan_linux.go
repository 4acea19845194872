//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/linux/egress"
	"mxc.dev/mxc/linux/enforce"
	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/seccomp"
	"mxc.dev/mxc/spec"
)

// Plan is what a sandbox enforces; Compile derives it from a policy.
type Plan struct {
	// ReadWrite are bound writable over the read-only host view.
	ReadWrite []string `json:"readWrite,omitempty"`
	// Denied are masked (a file by an empty read-only file, a directory by
	// an empty read-only tmpfs).
	Denied []string `json:"denied,omitempty"`
	// HostNet keeps the host's network namespace (egress default allow,
	// nothing to filter); otherwise a new one with loopback only, unless
	// Egress.
	HostNet bool `json:"hostNet,omitempty"`
	// Egress: the policy allows some egress, so the command gets the
	// network namespace of egress.NewSandbox (slirp4netns, the nftables
	// table and the DNS gate) and runs in a child of the sandbox, which
	// tears the network down when it exits.
	Egress bool `json:"egress,omitempty"`
	// Net is what the egress filter needs beyond the plan (never sent to
	// the stage child). The caller fills it in (Exe at least).
	Net NetOptions `json:"-"`
	// Caps is the capability bound (upper-case names).
	Caps []string `json:"caps,omitempty"`
	// Agent is the last step: Landlock and seccomp.
	Agent agentexec.Config `json:"agent"`
}

// NetOptions configure a networked sandbox (Plan.Egress).
type NetOptions struct {
	// Policy is the effective policy (Compile sets it).
	Policy *spec.Effective
	// Exe is the mxc-runtime binary: the DNS gate and the stage child.
	Exe string
	// DNS is the node config's gate settings; nil means the host's
	// resolv.conf and the default TTL clamp.
	DNS *spec.DNSConfig
	// AuditPath receives dns.deny and net.deny events (JSON lines); empty
	// drops them.
	AuditPath string
	// RunDir is egress's run dir (default egress.DefaultRunDir) and
	// StateRoot where the sandbox keeps its state while it runs (default
	// DefaultStateRoot).
	RunDir, StateRoot string
	// HostNetNSPath, if set, is where slirp4netns and the gate run
	// (tests); default the caller's namespace.
	HostNetNSPath string
}

// Compile checks that a sandbox can enforce eff on this host and returns
// the plan. A rule it cannot enforce is an error naming it, never a
// silent weakening.
func Compile(eff *spec.Effective, allowDegraded bool) (*Plan, error) {
	p := &eff.Policy
	switch p.Isolation {
	case "", spec.TierProcess:
	default:
		return nil, fmt.Errorf("isolation %s: the sandbox verb runs the process tier only (run the agent in a container for %s)", p.Isolation, p.Isolation)
	}
	if p.Mode == spec.ModeAudit {
		return nil, errors.New("mode audit: the sandbox verb only enforces")
	}
	if r := p.Resources; r != nil && (r.CPUs > 0 || r.Memory > 0 || r.Pids > 0) {
		return nil, errors.New("resources: the sandbox verb does not set cgroup limits yet; run the agent in a container for cpus, memory and pids limits")
	}
	if eff.Timeout() > 0 {
		return nil, errors.New("process.timeout: the sandbox verb execs the command in place and has no supervisor to end it; run the agent in a container, or let the caller time it out")
	}
	pl := &Plan{}
	enforcesNet, err := egress.Enforces(eff)
	if err != nil {
		return nil, err
	}
	switch {
	case !enforcesNet && eff.EgressDefault() == spec.Allow:
		pl.HostNet = true
	case len(eff.EgressAllow()) > 0 || eff.EgressDefault() == spec.Allow:
		// Some egress is allowed: slirp4netns, the table and the gate
		// (egress.NewSandbox). Default deny with no allow rule keeps the
		// bare loopback-only namespace: nothing to filter, no helper to
		// start on the path of every tool command.
		pl.Egress = true
		pl.Net.Policy = eff
	}
	for _, r := range eff.FSRules() {
		switch r.Access {
		case spec.AccessReadWrite:
			pl.ReadWrite = append(pl.ReadWrite, r.Path)
		case spec.AccessDenied:
			pl.Denied = append(pl.Denied, r.Path)
		}
	}
	netCaps := map[string]bool{}
	for _, c := range egress.NetCaps {
		netCaps[c] = true
	}
	for c := range enforce.AllowedCaps(p) {
		if pl.Egress && netCaps[c] {
			// CAP_NET_ADMIN rewrites the table, CAP_NET_RAW's packet
			// sockets skip it.
			return nil, fmt.Errorf("process.capabilities: %s would let the command bypass the egress filter; drop it", c)
		}
		pl.Caps = append(pl.Caps, c)
	}
	sort.Strings(pl.Caps)

	abi := landlock.Effective()
	rules := &landlock.Ruleset{LogNewExec: true}
	if eff.RestrictsFiles() {
		rules.HandleFS = true
		for _, r := range eff.FSRules() {
			switch r.Access {
			case spec.AccessReadOnly:
				rules.Paths = append(rules.Paths, landlock.PathRule{Path: r.Path, Access: landlock.ReadOnly})
			case spec.AccessReadWrite:
				rules.Paths = append(rules.Paths, landlock.PathRule{Path: r.Path, Access: landlock.ReadWrite})
			}
		}
		for _, d := range enforce.ImplicitDevices {
			rules.Paths = append(rules.Paths, landlock.PathRule{Path: d, Access: landlock.DeviceRW})
		}
		for _, d := range enforce.ImplicitReadOnly {
			rules.Paths = append(rules.Paths, landlock.PathRule{Path: d, Access: landlock.ReadOnly})
		}
	}
	// The command shares the host's pid namespace: only Landlock keeps it
	// from signalling (and, always, from ptracing) host processes.
	rules.Scoped |= landlock.ScopeSignal
	if pl.HostNet && enforce.UIDisabled(p) {
		rules.Scoped |= landlock.ScopeAbstractUnixSocket
	}
	var gaps []string
	if rules.HandleFS && abi < 3 {
		gaps = append(gaps, fmt.Sprintf("filesystem: Landlock ABI 3 is needed (this kernel has %d)", abi))
	}
	if abi < 6 {
		gaps = append(gaps, fmt.Sprintf("process: keeping the command from signalling host processes needs Landlock ABI 6 (this kernel has %d)", abi))
	}
	if !seccomp.Enabled {
		gaps = append(gaps, "process: the agent seccomp profile (this mxc-runtime was built without seccomp support)")
	}
	if len(gaps) > 0 && !allowDegraded {
		return nil, fmt.Errorf("this host cannot enforce the policy: %s", strings.Join(gaps, "; "))
	}
	if abi >= 1 {
		pl.Agent.Landlock = rules
		pl.Agent.MinLandlockABI = abi
	}
	if seccomp.Enabled {
		pp := p.Process
		pl.Agent.AgentSeccomp = &seccomp.Options{AllowPtrace: pp != nil && pp.AllowPtrace}
	}
	return pl, nil
}

// classifyDenied tells files from directories among the denied paths that
// exist (a path that does not exist has nothing to hide).
func classifyDenied(paths []string) (files, dirs []string) {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			dirs = append(dirs, filepath.Clean(p))
		} else {
			files = append(files, filepath.Clean(p))
		}
	}
	return files, dirs
}
