//go:build linux

package enforce

import (
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/seccomp"
	"mxc.dev/mxc/spec"
)

// ImplicitDevices are granted read-write by every Landlock ruleset that
// restricts files: a shell cannot work without /dev/null, nor a terminal
// program without its tty. None of them reaches data.
var ImplicitDevices = []string{
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
	"/dev/tty", "/dev/ptmx", "/dev/pts",
}

// ImplicitReadOnly are granted read-only by every ruleset that restricts
// files: /proc, which ps, shells and language runtimes read. Landlock still
// refuses /proc/<pid>/{root,cwd,fd,mem,environ} of processes outside the
// agent's domain (its ptrace rule), and a path reached through a /proc
// magic link is checked where it really is.
var ImplicitReadOnly = []string{"/proc"}

// hostFacts are what the enforcement depends on besides the policy.
type hostFacts struct {
	ABI            int  // Landlock ABI reached (kernel's, capped at MaxKnownABI)
	Seccomp        bool // this binary can install seccomp filters
	HostNet        bool // the container shares the host's network namespace
	HostPID        bool // the container shares the host's pid namespace
	SandboxWithout bool // sandbox verb: host namespaces by construction
}

// UIDisabled reports whether the host's display, clipboard, input and
// session sockets must be out of reach.
func UIDisabled(p *spec.AgentPolicy) bool {
	u := p.UI
	if u == nil || u.Disable {
		return true
	}
	return u.Clipboard == "" || u.Clipboard == "none" || u.Injection == nil || !*u.Injection
}

// landlockRules builds the agent's ruleset: the policy's path rules
// (denied paths excluded: they are masked at mount level, and Landlock
// cannot carve a hole in a granted tree), the implicit device and /proc
// rules, and the scopes the namespaces do not already give.
func landlockRules(eff *spec.Effective, f hostFacts) *landlock.Ruleset {
	p := &eff.Policy
	r := &landlock.Ruleset{LogNewExec: true}
	if eff.RestrictsFiles() && p.Mode != spec.ModeAudit {
		r.HandleFS = true
		for _, pr := range eff.FSRules() {
			switch pr.Access {
			case spec.AccessReadOnly:
				r.Paths = append(r.Paths, landlock.PathRule{Path: pr.Path, Access: landlock.ReadOnly})
			case spec.AccessReadWrite:
				r.Paths = append(r.Paths, landlock.PathRule{Path: pr.Path, Access: landlock.ReadWrite})
			}
		}
		for _, d := range ImplicitDevices {
			r.Paths = append(r.Paths, landlock.PathRule{Path: d, Access: landlock.DeviceRW})
		}
		for _, d := range ImplicitReadOnly {
			r.Paths = append(r.Paths, landlock.PathRule{Path: d, Access: landlock.ReadOnly})
		}
	}
	if p.Mode != spec.ModeAudit {
		// Scopes cut the agent off from processes outside its domain, and
		// each exec of a container has a domain of its own: scoping a
		// container that has its own namespaces would only keep `exec`'d
		// processes from signalling the init. So scope what the namespaces
		// do not separate.
		if UIDisabled(p) && f.HostNet {
			r.Scoped |= landlock.ScopeAbstractUnixSocket
		}
		if f.HostPID {
			r.Scoped |= landlock.ScopeSignal
		}
	}
	return r
}

// missing lists, naming each rule, what this host cannot enforce.
func missing(eff *spec.Effective, f hostFacts, r *landlock.Ruleset) []string {
	var out []string
	if r.HandleFS {
		switch {
		case f.ABI < 1:
			out = append(out, "filesystem.readonlyPaths/readwritePaths: Landlock is not available on this kernel (not built in or not enabled at boot)")
		case f.ABI < 3:
			out = append(out, fmt.Sprintf("filesystem.readwritePaths: truncating files outside the read-write paths can only be refused with Landlock ABI 3 (this kernel has ABI %d)", f.ABI))
		}
	}
	if r.Scoped&landlock.ScopeAbstractUnixSocket != 0 && f.ABI < 6 {
		out = append(out, fmt.Sprintf("ui.disable: the container shares the host's network namespace, where the host's abstract unix sockets (X11's @/tmp/.X11-unix) are reachable; refusing them needs Landlock ABI 6 (this kernel has ABI %d) or a network namespace of its own", f.ABI))
	}
	if r.Scoped&landlock.ScopeSignal != 0 && f.ABI < 6 {
		out = append(out, fmt.Sprintf("process: the container shares the host's pid namespace; keeping it from signalling host processes needs Landlock ABI 6 (this kernel has ABI %d) or a pid namespace of its own", f.ABI))
	}
	if !f.Seccomp {
		out = append(out, "process: the agent seccomp profile (this mxc-runtime was built without seccomp support)")
	}
	return out
}

// agentConfig is the last step's configuration. With degraded set, what
// the host cannot enforce is left out (the caller recorded it).
func agentConfig(eff *spec.Effective, f hostFacts, r *landlock.Ruleset, specProfile *configs.Seccomp) *agentexec.Config {
	cfg := &agentexec.Config{}
	if !r.Empty() && f.ABI >= 1 {
		cfg.Landlock = r
		cfg.MinLandlockABI = f.ABI
	}
	if f.Seccomp {
		pp := eff.Policy.Process
		cfg.AgentSeccomp = &seccomp.Options{
			AllowPtrace: pp != nil && pp.AllowPtrace,
			AuditOnly:   eff.Policy.Mode == spec.ModeAudit,
		}
		if specProfile != nil {
			cfg.Seccomp = append(cfg.Seccomp, specProfile)
		}
	}
	return cfg
}

// AllowedCaps is the capability set the policy lets the agent keep (the
// same bound spec.ApplyToOCI applies to the spec's process).
func AllowedCaps(p *spec.AgentPolicy) map[string]bool {
	out := map[string]bool{}
	pp := p.Process
	switch {
	case pp != nil && pp.NoCapabilities:
	case pp == nil || len(pp.Capabilities) == 0:
		for _, c := range spec.DefaultAgentCapabilities {
			out[c] = true
		}
	default:
		for _, c := range pp.Capabilities {
			out[strings.ToUpper(c)] = true
		}
	}
	return out
}

func capSets(c *configs.Capabilities) [][]string {
	if c == nil {
		return nil
	}
	return [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient}
}

func specCaps(p *specs.Process) []string {
	if p == nil || p.Capabilities == nil {
		return nil
	}
	c := p.Capabilities
	seen := map[string]bool{}
	var out []string
	for _, l := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, x := range l {
			x = strings.ToUpper(x)
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
	}
	return out
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) (bool, string) {
	if s.Linux == nil {
		return false, ""
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true, ns.Path
		}
	}
	return false, ""
}

// uiDevice names a host device the UI rules keep out: input devices,
// uinput and the host's virtual consoles and serial terminals.
func uiDevice(d specs.LinuxDevice) string {
	p := path.Clean(d.Path)
	switch {
	case p == "/dev/uinput" || (d.Type == "c" && d.Major == 10 && d.Minor == 223):
		return "uinput (input injection)"
	case strings.HasPrefix(p, "/dev/input/") || (d.Type == "c" && d.Major == 13):
		return "an input device"
	case d.Type == "c" && d.Major == 4, regexpTTY(p):
		return "a host terminal"
	}
	return ""
}

// regexpTTY matches /dev/ttyN and /dev/ttyS*, not /dev/tty (the process's
// own controlling terminal) nor /dev/pts/*.
func regexpTTY(p string) bool {
	rest, ok := strings.CutPrefix(p, "/dev/tty")
	if !ok || rest == "" {
		return false
	}
	if rest[0] == 'S' {
		return true
	}
	return rest[0] >= '0' && rest[0] <= '9'
}

// uiDeviceRules deny the UI devices in the device cgroup whatever the spec
// allows before them (later rules win).
func uiDeviceRules() []specs.LinuxDeviceCgroup {
	i := func(v int64) *int64 { return &v }
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Type: "c", Major: i(13), Access: "rwm"},
		{Allow: false, Type: "c", Major: i(10), Minor: i(223), Access: "rwm"},
		{Allow: false, Type: "c", Major: i(4), Access: "rwm"},
	}
}
