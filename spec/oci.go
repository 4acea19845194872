package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// UIEnvVars are removed from the agent's environment when ui.disable is
// set: each one points a client at a host display, session bus or agent.
var UIEnvVars = []string{
	"DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "XAUTHORITY",
	"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "SSH_AUTH_SOCK",
}

// ScrubUIEnv returns env without the UIEnvVars. Drivers apply it to exec'd
// processes too when ui.disable is set.
func ScrubUIEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, v := range UIEnvVars {
			if k == v {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// ApplyToOCI applies the portable part of eff to an OCI spec: it never
// grants what the spec does not already give, it only takes away.
//
// For a Linux spec:
//   - filesystem (skipped in audit mode): denied paths are added to
//     linux.maskedPaths; read-only paths set "ro" on a mount at exactly that
//     path ("/" sets root.readonly), else join linux.readonlyPaths; a read-write path inside a
//     read-only one gets a bind mount of itself so it stays writable (never
//     when the spec itself makes it read-only);
//   - process.noNewPrivileges is forced; every capability set is bounded by
//     eff's process.capabilities (the dangerous ones are only there when
//     the ceiling allowed them);
//   - cgroup limits from resources, never loosening a stricter limit the
//     spec already has; resources.memory also caps swap (memory+swap);
//   - session and microvm tiers: pid, ipc, uts, mount and cgroup namespaces
//     are added when missing (the user namespace is the Linux driver's);
//   - ui: with ui.disable the display/bus/agent variables are removed, and
//     a mount of a display, session bus, ssh-agent socket or input device
//     is an error; input devices need ui.injection; a shared display socket
//     needs clipboard all and injection true (mxc cannot filter either on it).
//
// For a Windows spec (windows set, linux not): the environment scrub, the
// UI mount checks and the memory limit; CPU, file and network rules are the
// HCS driver's. Landlock, seccomp and nftables are the Linux driver's.
//
// On error s is left unchanged.
func ApplyToOCI(s *specs.Spec, eff *Effective) error {
	if s == nil {
		return errors.New("no OCI spec")
	}
	if eff == nil {
		return errors.New("no effective policy")
	}
	if s.Process == nil {
		return errors.New("OCI spec has no process")
	}
	out, err := cloneSpec(s)
	if err != nil {
		return err
	}
	p := &eff.Policy
	windows := out.Windows != nil && out.Linux == nil
	var errs []error
	errs = append(errs, applyUI(out, p, windows)...)
	if windows {
		applyWindowsResources(out, p.Resources)
	} else {
		if out.Linux == nil {
			out.Linux = &specs.Linux{}
		}
		out.Process.NoNewPrivileges = true
		boundCapabilities(out.Process, p.Process)
		if p.Mode != ModeAudit {
			if err := applyFS(out, eff); err != nil {
				errs = append(errs, err)
			}
		}
		applyLinuxResources(out.Linux, p.Resources)
		if p.Isolation == TierSession || p.Isolation == TierMicroVM {
			addNamespaces(out.Linux)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	*s = *out
	return nil
}

func cloneSpec(s *specs.Spec) (*specs.Spec, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode OCI spec: %w", err)
	}
	out := new(specs.Spec)
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("decode OCI spec: %w", err)
	}
	return out, nil
}

// uiKind classifies a host path: "display", "session bus", "ssh agent",
// "input device", or "".
func uiKind(p string) string {
	if p == "" {
		return ""
	}
	p = path.Clean(p)
	base := path.Base(p)
	switch {
	case within(p, "/tmp/.X11-unix"), strings.HasPrefix(base, "wayland-") && !strings.HasSuffix(base, ".lock"),
		base == ".Xauthority", strings.HasPrefix(base, "xauth_"):
		return "display"
	case isRuntimeDir(p):
		return "display" // the user's runtime dir holds the Wayland and bus sockets
	case isSessionBus(p):
		return "session bus"
	case isSSHAgent(p), base == "S.gpg-agent.ssh", p == "/run/host-services/ssh-auth.sock", strings.Contains(base, "ssh-agent"):
		return "ssh agent"
	case p == "/dev/uinput", within(p, "/dev/input"):
		return "input device"
	}
	return ""
}

func applyUI(s *specs.Spec, p *AgentPolicy, windows bool) []error {
	u := p.UI
	disabled := u == nil || u.Disable
	injection := u != nil && u.Injection != nil && *u.Injection
	clipAll := u != nil && u.Clipboard == "all"
	var errs []error
	if disabled {
		s.Process.Env = ScrubUIEnv(s.Process.Env)
	}
	if windows {
		return nil
	}
	for i, m := range s.Mounts {
		kind := uiKind(m.Source)
		if kind == "" {
			kind = uiKind(m.Destination)
		}
		at := fmt.Sprintf("mounts[%d] (%s on %s)", i, m.Source, m.Destination)
		switch {
		case kind == "":
		case disabled:
			errs = append(errs, fmt.Errorf("ui.disable is set but the spec passes the host %s in %s: drop the mount or allow the UI", kind, at))
		case kind == "input device" && !injection:
			errs = append(errs, fmt.Errorf("ui.injection is false but the spec passes host input devices in %s", at))
		case kind == "display" && (!clipAll || !injection):
			errs = append(errs, fmt.Errorf("the spec shares the host display in %s: any client of it can read the clipboard and inject input, so the policy must say ui.clipboard: all and ui.injection: true (or ui.disable: true)", at))
		}
	}
	if s.Linux != nil {
		for i, d := range s.Linux.Devices {
			if uiKind(d.Path) == "input device" && (disabled || !injection) {
				errs = append(errs, fmt.Errorf("linux.devices[%d] %s is an input device: the policy does not allow input injection (ui.injection)", i, d.Path))
			}
		}
	}
	return errs
}

// boundCapabilities keeps in every set only what the policy allows.
func boundCapabilities(proc *specs.Process, pp *Process) {
	if proc.Capabilities == nil {
		return
	}
	var allowed stringSet
	switch {
	case pp == nil:
		allowed = stringSet{}
		for _, c := range DefaultAgentCapabilities {
			allowed[c] = true
		}
	case pp.NoCapabilities:
		allowed = stringSet{}
	case len(pp.Capabilities) == 0:
		allowed = stringSet{}
		for _, c := range DefaultAgentCapabilities {
			allowed[c] = true
		}
	default:
		allowed = setOf(pp.Capabilities)
	}
	filter := func(l []string) []string {
		// nil and empty are the same in config.json (omitted: no capability).
		var out []string
		for _, c := range l {
			if allowed[strings.ToUpper(c)] {
				out = append(out, c)
			}
		}
		return out
	}
	c := proc.Capabilities
	c.Bounding = filter(c.Bounding)
	c.Effective = filter(c.Effective)
	c.Permitted = filter(c.Permitted)
	c.Inheritable = filter(c.Inheritable)
	c.Ambient = filter(c.Ambient)
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func addUnique(l []string, p string) []string {
	for _, x := range l {
		if x == p {
			return l
		}
	}
	return append(l, p)
}

// applyFS turns the resolved path rules into masked paths, read-only
// paths/mount options and read-write carve-outs.
func applyFS(s *specs.Spec, eff *Effective) error {
	rules := eff.FSRules()
	var errs []error
	for _, r := range rules {
		if f, _ := checkFSPath(r.Path); f != famPOSIX {
			errs = append(errs, fmt.Errorf("filesystem: %s is not a Linux path and the container is Linux", r.Path))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Whether a mount is read-only must be judged on the spec as given, not
	// after the read-only rules below added "ro".
	specRO := make([]bool, len(s.Mounts))
	for i, m := range s.Mounts {
		specRO[i] = hasOption(m.Options, "ro")
	}
	rootRO := s.Root != nil && s.Root.Readonly
	mountAt := func(p string) int {
		for i := len(s.Mounts) - 1; i >= 0; i-- { // the last mount at a path is the visible one
			if path.Clean(s.Mounts[i].Destination) == p {
				return i
			}
		}
		return -1
	}
	for _, r := range rules {
		switch r.Access {
		case AccessDenied:
			s.Linux.MaskedPaths = addUnique(s.Linux.MaskedPaths, r.Path)
		case AccessReadOnly:
			if r.Path == "/" && s.Root != nil {
				// The rootfs itself: runc remounts it read-only after all mounts.
				s.Root.Readonly = true
				continue
			}
			if i := mountAt(r.Path); i >= 0 {
				m := &s.Mounts[i]
				var opts []string
				for _, o := range m.Options {
					if o != "rw" {
						opts = append(opts, o)
					}
				}
				m.Options = addUnique(opts, "ro")
				continue
			}
			s.Linux.ReadonlyPaths = addUnique(s.Linux.ReadonlyPaths, r.Path)
		case AccessReadWrite:
			if err := carveReadWrite(s, specRO, rootRO, rules, r.Path); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// carveReadWrite keeps p writable when it lies inside a path the policy
// makes read-only, by bind-mounting p onto itself before runc remounts the
// read-only parent (runc applies mounts first, then readonlyPaths, and a
// read-only remount does not reach submounts). It never makes writable
// what the spec itself makes read-only.
func carveReadWrite(s *specs.Spec, specRO []bool, rootRO bool, rules []PathRule, p string) error {
	roParent := ""
	for _, r := range rules {
		if r.Access == AccessReadOnly && r.Path != p && within(p, r.Path) && len(r.Path) > len(roParent) {
			roParent = r.Path
		}
	}
	if roParent == "" {
		return nil
	}
	// The mount p lives in: the deepest mount at or above p.
	backing := -1
	for i, m := range s.Mounts[:len(specRO)] {
		d := path.Clean(m.Destination)
		if within(p, d) && (backing < 0 || len(d) >= len(path.Clean(s.Mounts[backing].Destination))) {
			backing = i
		}
	}
	var source string
	switch {
	case backing >= 0 && len(path.Clean(s.Mounts[backing].Destination)) > len(roParent):
		return nil // p has its own mount below the read-only path: the remount does not reach it
	case backing >= 0:
		m := s.Mounts[backing]
		if specRO[backing] {
			return nil // the spec made it read-only: never loosen
		}
		if m.Type != "bind" && !hasOption(m.Options, "bind") && !hasOption(m.Options, "rbind") {
			return fmt.Errorf("filesystem.readwritePaths: %s lies in the %s mount at %s, which mxc cannot bind from the host to keep it writable inside read-only %s", p, m.Type, m.Destination, roParent)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, path.Clean(m.Destination)), "/")
		source = path.Join(m.Source, rel)
	default:
		if s.Root == nil || s.Root.Path == "" {
			return fmt.Errorf("filesystem.readwritePaths: %s: the spec has no root path", p)
		}
		if rootRO {
			return nil // a read-only rootfs stays read-only: never loosen
		}
		// Relative root paths and bind sources are both relative to the bundle.
		source = path.Join(s.Root.Path, p)
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: p, Type: "bind", Source: source, Options: []string{"rbind", "rw"}})
	return nil
}

func applyLinuxResources(l *specs.Linux, r *Resources) {
	if r == nil || (r.CPUs == 0 && r.Memory == 0 && r.Pids == 0) {
		return
	}
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	res := l.Resources
	if r.CPUs > 0 {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		period := uint64(100000)
		if res.CPU.Period != nil && *res.CPU.Period > 0 {
			period = *res.CPU.Period
		}
		quota := int64(math.Ceil(r.CPUs * float64(period)))
		if quota < 1000 {
			quota = 1000 // the kernel's minimum quota (1ms)
		}
		if res.CPU.Quota == nil || *res.CPU.Quota <= 0 || *res.CPU.Quota > quota {
			res.CPU.Quota = &quota
			res.CPU.Period = &period
		}
	}
	if r.Memory > 0 {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		limit := int64(r.Memory)
		if res.Memory.Limit != nil && *res.Memory.Limit > 0 && *res.Memory.Limit < limit {
			limit = *res.Memory.Limit
		}
		swap := limit
		res.Memory.Limit = &limit
		res.Memory.Swap = &swap
	}
	if r.Pids > 0 {
		if res.Pids == nil {
			res.Pids = &specs.LinuxPids{}
		}
		limit := r.Pids
		if res.Pids.Limit != nil && *res.Pids.Limit > 0 && *res.Pids.Limit < limit {
			limit = *res.Pids.Limit
		}
		res.Pids.Limit = &limit
	}
}

func applyWindowsResources(s *specs.Spec, r *Resources) {
	if r == nil || r.Memory <= 0 {
		return
	}
	w := s.Windows
	if w.Resources == nil {
		w.Resources = &specs.WindowsResources{}
	}
	if w.Resources.Memory == nil {
		w.Resources.Memory = &specs.WindowsMemoryResources{}
	}
	limit := uint64(r.Memory)
	if w.Resources.Memory.Limit != nil && *w.Resources.Memory.Limit > 0 && *w.Resources.Memory.Limit < limit {
		limit = *w.Resources.Memory.Limit
	}
	w.Resources.Memory.Limit = &limit
}

// addNamespaces gives session-tier agents their own pid, ipc, uts, mount and
// cgroup namespaces when the spec shares the host's.
func addNamespaces(l *specs.Linux) {
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace} {
		found := false
		for _, ns := range l.Namespaces {
			if ns.Type == t {
				found = true
			}
		}
		if !found {
			l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: t})
		}
	}
}
