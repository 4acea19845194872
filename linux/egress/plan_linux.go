package egress

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/spec"
)

// plan is a policy's network section compiled for nftables and the DNS gate.
// It is pure data: Setup turns it into a table, the gate into DNS decisions,
// and both compile it from the same policy so that set names agree.
type plan struct {
	mode           spec.Mode
	egressDefault  spec.Action
	ingressDefault spec.Action
	hostLoopback   spec.Action
	allow          []*ruleSet
	deny           []*ruleSet
	// host4/host6 are the host's addresses as seen from the namespace
	// (Config.HostAddrs): what hostLoopback allows or denies.
	host4, host6 []netip.Addr
}

// ruleSet is one egress rule: its destinations (names resolved by the gate,
// CIDR ranges fixed at setup) and its port selectors.
type ruleSet struct {
	kind  byte // 'a' (allow) or 'd' (deny)
	index int
	field string // policy path, for errors and audit details
	hosts []hostPattern
	// v4 and v6 are the rule's CIDR peers minus their excepts, merged.
	v4, v6 []addrRange
	// anyAddr: the rule has no "to" and matches every destination.
	anyAddr bool
	// ports is empty when the rule matches every protocol and port.
	ports []portSel
}

// setName names the nftables set of the rule holding one kind of address:
// n4/n6 are the addresses the gate learnt for the rule's names, c4/c6 its
// CIDR ranges.
func (r *ruleSet) setName(suffix string) string {
	return fmt.Sprintf("%c%d_%s", r.kind, r.index, suffix)
}

// coversAllPorts is true when the rule applies to every protocol and port.
func (r *ruleSet) coversAllPorts() bool { return len(r.ports) == 0 }

// portSel matches a protocol and an inclusive destination port range.
type portSel struct {
	icmp   bool   // ICMP for IPv4, ICMPv6 for IPv6
	proto  uint8  // IPPROTO_*; 0 with !icmp never occurs
	lo, hi uint16 // 0,0: every port
}

// portProtos are the protocols a port number means when a rule says
// protocol "any" (or none) together with a port.
var portProtos = []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP}

func compilePorts(field string, ports []spec.Port) ([]portSel, error) {
	var out []portSel
	for i, p := range ports {
		f := fmt.Sprintf("%s.ports[%d]", field, i)
		if p.Port < 0 || p.Port > 65535 {
			return nil, fmt.Errorf("%s.port: %d is not a port (0-65535)", f, p.Port)
		}
		if p.EndPort != 0 && (p.EndPort < p.Port || p.EndPort > 65535 || p.Port == 0) {
			return nil, fmt.Errorf("%s.endPort: %d must be between port (%d, non-zero) and 65535", f, p.EndPort, p.Port)
		}
		lo, hi := uint16(p.Port), uint16(p.Port)
		if p.EndPort != 0 {
			hi = uint16(p.EndPort)
		}
		switch p.Protocol {
		case spec.ProtoTCP:
			out = append(out, portSel{proto: unix.IPPROTO_TCP, lo: lo, hi: hi})
		case spec.ProtoUDP:
			out = append(out, portSel{proto: unix.IPPROTO_UDP, lo: lo, hi: hi})
		case spec.ProtoICMP:
			if p.Port != 0 {
				return nil, fmt.Errorf("%s.port: icmp has no ports", f)
			}
			out = append(out, portSel{icmp: true})
		case spec.ProtoAny, "":
			if p.Port == 0 {
				// Every protocol, every port: the rule has no port match at all.
				return nil, nil
			}
			for _, proto := range portProtos {
				out = append(out, portSel{proto: proto, lo: lo, hi: hi})
			}
		default:
			return nil, fmt.Errorf("%s.protocol: %q is not tcp, udp, icmp or any", f, p.Protocol)
		}
	}
	return out, nil
}

func compileRule(kind byte, index int, field string, r spec.Rule) (*ruleSet, error) {
	rs := &ruleSet{kind: kind, index: index, field: field, anyAddr: len(r.To) == 0}
	var v4, v6 []addrRange
	for i, p := range r.To {
		f := fmt.Sprintf("%s.to[%d]", field, i)
		switch {
		case p.Host != "" && p.CIDR != "":
			return nil, fmt.Errorf("%s: host and cidr are exclusive", f)
		case p.Host != "":
			if len(p.Except) > 0 {
				return nil, fmt.Errorf("%s.except: only a cidr peer takes except", f)
			}
			// An address written as a host is a one-address CIDR, not a name.
			if a, err := netip.ParseAddr(p.Host); err == nil {
				a = a.Unmap().WithZone("")
				r := addrRange{a, a}
				if a.Is4() {
					v4 = append(v4, r)
				} else {
					v6 = append(v6, r)
				}
				continue
			}
			hp, err := parseHost(p.Host)
			if err != nil {
				return nil, fmt.Errorf("%s.host: %w", f, err)
			}
			rs.hosts = append(rs.hosts, hp)
		case p.CIDR != "":
			ranges, err := peerRanges(p.CIDR, p.Except)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			for _, r := range ranges {
				if r.from.Is4() {
					v4 = append(v4, r)
				} else {
					v6 = append(v6, r)
				}
			}
		default:
			return nil, fmt.Errorf("%s: needs a host or a cidr", f)
		}
	}
	rs.v4, rs.v6 = mergeRanges(v4), mergeRanges(v6)
	ports, err := compilePorts(field, r.Ports)
	if err != nil {
		return nil, err
	}
	rs.ports = ports
	return rs, nil
}

func action(field string, a spec.Action) (spec.Action, error) {
	switch a {
	case spec.Allow, spec.Deny:
		return a, nil
	case "":
		return spec.Deny, nil // fail closed: an undefaulted field denies
	}
	return "", fmt.Errorf("%s: %q is not allow or deny", field, a)
}

// compile turns a policy into a plan. hostAddrs are the addresses that count
// as "the host" for ingress.hostLoopback (empty for containers).
func compile(p *spec.AgentPolicy, hostAddrs []netip.Addr) (*plan, error) {
	pl := &plan{mode: p.Mode}
	switch pl.mode {
	case "":
		pl.mode = spec.ModeEnforce
	case spec.ModeEnforce, spec.ModeAudit:
	default:
		return nil, fmt.Errorf("mode: %q is not enforce or audit", p.Mode)
	}
	var eg spec.Egress
	var in spec.Ingress
	if p.Network != nil {
		if p.Network.Egress != nil {
			eg = *p.Network.Egress
		}
		if p.Network.Ingress != nil {
			in = *p.Network.Ingress
		}
	}
	var err error
	if pl.egressDefault, err = action("network.egress.default", eg.Default); err != nil {
		return nil, err
	}
	if pl.ingressDefault, err = action("network.ingress.default", in.Default); err != nil {
		return nil, err
	}
	if pl.hostLoopback, err = action("network.ingress.hostLoopback", in.HostLoopback); err != nil {
		return nil, err
	}
	for i, r := range eg.Allow {
		rs, err := compileRule('a', i, fmt.Sprintf("network.egress.allow[%d]", i), r)
		if err != nil {
			return nil, err
		}
		pl.allow = append(pl.allow, rs)
	}
	for i, r := range eg.Deny {
		rs, err := compileRule('d', i, fmt.Sprintf("network.egress.deny[%d]", i), r)
		if err != nil {
			return nil, err
		}
		pl.deny = append(pl.deny, rs)
	}
	for _, a := range hostAddrs {
		a = a.Unmap().WithZone("")
		if a.Is4() {
			pl.host4 = append(pl.host4, a)
		} else if a.Is6() {
			pl.host6 = append(pl.host6, a)
		}
	}
	return pl, nil
}

// enforces reports whether the policy restricts anything, that is whether a
// table and a gate are needed at all.
func (pl *plan) enforces() bool {
	if pl.egressDefault == spec.Deny || len(pl.deny) > 0 || pl.ingressDefault == spec.Deny {
		return true
	}
	return pl.hostLoopback == spec.Deny && len(pl.host4)+len(pl.host6) > 0
}

// hasNames reports whether any rule names a host, i.e. whether DNS answers
// can open anything.
func (pl *plan) hasNames() bool {
	for _, r := range append(append([]*ruleSet(nil), pl.allow...), pl.deny...) {
		if len(r.hosts) > 0 {
			return true
		}
	}
	return false
}

// resolves reports whether the gate may ever send a query upstream, that
// is whether decide can answer some name: egress allowed by default, an
// allow rule naming a host or matching every destination, or audit mode.
// A policy that allows no name (an offline agent's) has its gate refuse
// every query itself, and needs no upstream resolver.
func (pl *plan) resolves() bool {
	if pl.mode == spec.ModeAudit || pl.egressDefault == spec.Allow {
		return true
	}
	for _, r := range pl.allow {
		if r.anyAddr || len(r.hosts) > 0 {
			return true
		}
	}
	return false
}

// nameVerdict is the gate's decision for one query name.
type nameVerdict struct {
	// answer: the name is resolved upstream and answered. False means
	// REFUSED without any upstream query.
	answer bool
	// denied: the policy denies the name (a deny rule covering every port,
	// or nothing allows it); in audit mode it is answered anyway.
	denied bool
	reason string
	// allow and deny are the rules whose host patterns match: the answered
	// addresses go into their name sets.
	allow, deny []*ruleSet
}

// decide is the gate's name policy. A name is answered when an allow rule
// names it, when an allow rule matches every destination (names are then
// moot), or when egress defaults to allow; it is refused when a deny rule
// that covers every port names it (deny wins). Rules given only as CIDRs do
// not make names resolvable: resolving a name to find out whether it falls
// in a CIDR would already send the name upstream.
func (pl *plan) decide(name string) nameVerdict {
	var v nameVerdict
	anyAllow := pl.egressDefault == spec.Allow
	for _, r := range pl.allow {
		if r.anyAddr {
			anyAllow = true
		}
		for _, h := range r.hosts {
			if h.match(name) {
				v.allow = append(v.allow, r)
				break
			}
		}
	}
	denyAll := false
	for _, r := range pl.deny {
		for _, h := range r.hosts {
			if h.match(name) {
				v.deny = append(v.deny, r)
				if r.coversAllPorts() {
					denyAll = true
				}
				break
			}
		}
	}
	switch {
	case denyAll:
		v.denied, v.reason = true, "deny rule "+v.deny[0].field
	case len(v.allow) == 0 && !anyAllow:
		v.denied, v.reason = true, "not allowed"
	}
	v.answer = !v.denied || pl.mode == spec.ModeAudit
	return v
}
