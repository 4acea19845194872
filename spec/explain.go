package spec

import (
	"fmt"
	"strings"
	"time"
)

func describePeer(p Peer) string {
	switch {
	case p.Host != "":
		if b, ok := cutWildcard(normalizeHost(p.Host)); ok {
			return fmt.Sprintf("any name under %s", b)
		}
		return normalizeHost(p.Host)
	case p.CIDR != "":
		if len(p.Except) > 0 {
			return fmt.Sprintf("%s except %s", p.CIDR, strings.Join(p.Except, ", "))
		}
		return p.CIDR
	}
	return "every address"
}

func describePort(p Port) string {
	proto := p.Protocol
	if proto == "" {
		proto = ProtoAny
	}
	first, last := uint16(p.Port), uint16(p.EndPort)
	if last == 0 {
		last = first
	}
	return describeRanges([]PortRange{{Protocol: proto, First: first, Last: last}})
}

func describeRanges(rs []PortRange) string {
	if len(rs) == 0 {
		return "every port"
	}
	var parts []string
	for _, r := range rs {
		proto := string(r.Protocol)
		if r.Protocol == ProtoAny || r.Protocol == "" {
			proto = "any protocol"
		}
		switch {
		case r.Protocol == ProtoICMP:
			parts = append(parts, "icmp")
		case r.First == 0:
			parts = append(parts, proto+" (every port)")
		case r.Last > r.First:
			parts = append(parts, fmt.Sprintf("%s/%d-%d", proto, r.First, r.Last))
		default:
			parts = append(parts, fmt.Sprintf("%s/%d", proto, r.First))
		}
	}
	return strings.Join(parts, ", ")
}

func describeDest(d Destination) string {
	switch {
	case d.Any:
		return "every address"
	case d.Host != "" && d.Wildcard:
		return "any name under " + d.Host
	case d.Host != "":
		return d.Host
	}
	s := d.Prefix.String()
	if len(d.Except) > 0 {
		var ex []string
		for _, x := range d.Except {
			ex = append(ex, x.String())
		}
		s += " except " + strings.Join(ex, ", ")
	}
	return s
}

var tierWords = map[Tier]string{
	TierProcess: "process: the container's namespaces, Landlock, seccomp, no new privileges, dropped capabilities and the egress filter",
	TierSession: "session: the process tier plus its own user identity and pid/ipc/uts/cgroup namespaces, no host display, clipboard or input",
	TierMicroVM: "microvm: a hardware boundary (Hyper-V on Windows; refused on Linux until a VM backend exists)",
}

// Explain is a plain-language summary of what the agent can and cannot do
// under eff, including every "deny wins" resolution.
func Explain(eff *Effective) string {
	if eff == nil {
		return "No agent policy: the container runs as a plain OCI container.\n"
	}
	p := &eff.Policy
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	name := p.Metadata.Name
	if name == "" {
		name = "(unnamed)"
	}
	w("Policy %s, digest %s", name, eff.Digest)
	if len(eff.Sources) > 0 {
		w("Built from: %s", strings.Join(eff.Sources, ", then "))
	}
	if p.Identity != nil && p.Identity.Agent != "" {
		w("Agent identity on audit events: %s", p.Identity.Agent)
	}
	if t, ok := tierWords[p.Isolation]; ok {
		w("Isolation: %s.", t)
	}
	if p.Mode == ModeAudit {
		w("Mode: AUDIT. File and network rules are logged, not enforced: the agent can do what they would forbid.")
	} else {
		w("Mode: enforce. Every rule below is enforced by the kernel, for every process the agent starts.")
	}

	w("")
	w("Files:")
	rules := eff.FSRules()
	switch {
	case p.Filesystem == nil:
		w("  No filesystem rules: the container's own mounts decide (read-only where its spec says so).")
	default:
		var ro, rw, dn []string
		for _, r := range rules {
			switch r.Access {
			case AccessReadOnly:
				ro = append(ro, r.Path)
			case AccessReadWrite:
				rw = append(rw, r.Path)
			case AccessDenied:
				dn = append(dn, r.Path)
			}
		}
		if len(rw) > 0 {
			w("  May read and write: %s", strings.Join(rw, ", "))
		}
		if len(ro) > 0 {
			w("  May only read: %s", strings.Join(ro, ", "))
		}
		if len(dn) > 0 {
			w("  Can neither read nor write (masked): %s", strings.Join(dn, ", "))
		}
		if eff.RestrictsFiles() {
			w("  Everything else in the container is out of reach.")
		} else {
			w("  Everything else follows the container's own mounts.")
		}
		for _, r := range rules {
			for _, o := range rules {
				if o.Path != r.Path && within(r.Path, o.Path) && r.Access == AccessReadWrite && o.Access == AccessReadOnly {
					w("  %s is writable inside read-only %s: the more specific rule applies to its tree.", r.Path, o.Path)
				}
			}
		}
	}

	w("")
	w("Network:")
	n := p.Network
	allow, deny := eff.EgressAllow(), eff.EgressDeny()
	if eff.EgressDefault() == Allow {
		w("  Outbound: allowed to every destination")
		if len(deny) > 0 {
			w("  except:")
		}
	} else {
		switch {
		case len(allow) == 0:
			w("  Outbound: no destination at all (no egress; DNS answers nothing).")
		default:
			w("  Outbound: only to")
			for _, a := range allow {
				w("    - %s, %s", describeDest(a), describeRanges(a.Ports))
			}
		}
		if len(deny) > 0 {
			w("  Never to:")
		}
	}
	for _, d := range deny {
		w("    - %s, %s", describeDest(d), describeRanges(d.Ports))
	}
	if n != nil && n.Ingress != nil {
		w("  Inbound from the private network: %s; host loopback: %s.", n.Ingress.Default, n.Ingress.HostLoopback)
	}

	w("")
	w("Display, clipboard, input:")
	if u := p.UI; u != nil {
		if u.Disable {
			w("  No display: display, session bus and ssh-agent sockets are withheld and their variables removed.")
		} else {
			w("  Display allowed.")
		}
		inj := u.Injection != nil && *u.Injection
		w("  Clipboard: %s. Keyboard/mouse injection: %s.", u.Clipboard, map[bool]string{true: "allowed", false: "not allowed"}[inj])
	}

	w("")
	w("Limits:")
	if r := p.Resources; r != nil {
		if r.CPUs > 0 {
			w("  CPU: %s CPUs", fmtFloat(r.CPUs))
		}
		if r.Memory > 0 {
			w("  Memory: %s", r.Memory.approx())
		}
		if r.Pids > 0 {
			w("  Processes: at most %d", r.Pids)
		}
	} else {
		w("  No CPU, memory or process limits beyond the container's own.")
	}
	if t := eff.Timeout(); t > 0 {
		w("  Stopped after %s.", t.Round(time.Millisecond))
	}
	if pr := p.Process; pr != nil {
		if len(pr.Capabilities) > 0 {
			w("  Capabilities kept at most: %s (never more than the container's spec gives).", strings.Join(pr.Capabilities, ", "))
		} else {
			w("  Capabilities: none.")
		}
		if pr.AllowPtrace {
			w("  May ptrace its own processes.")
		}
	}
	w("  No new privileges (setuid binaries do not raise privileges).")

	if res := eff.Resolutions(); len(res) > 0 {
		w("")
		w("Where the policy both allows and denies (deny wins):")
		for _, r := range res {
			w("  - %s", r)
		}
	}
	if len(eff.Notes) > 0 {
		w("")
		w("Read but not used (no meaning for an OCI container):")
		for _, nt := range eff.Notes {
			w("  - %s", nt)
		}
	}
	return b.String()
}
