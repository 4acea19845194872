package hcs

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

// ACL priority bands. HNS evaluates a lower Priority first, so deny rules
// come before allow rules (deny wins, as in the policy) and the defaults
// come last. Every band leaves room for maxRules rules.
const (
	prioDeny    = 100
	prioAllow   = 2100
	prioDefault = 4100
	maxRules    = 2000
)

// network maps spec.windows.network onto the v1 document and the policy's
// network section onto HNS endpoint ACLs.
//
// Egress host-name rules need a DNS gate, which mxc has on Linux only: they
// are refused on Windows rather than dropped. CIDR rules become ACLs; a
// peer's "except" list is subtracted exactly (the allowed set is split into
// the prefixes that remain), so no extra block rule can shadow another
// allow rule. The defaults are always explicit rules: depending on the
// Windows build, HNS either allows everything an ACL set does not mention
// or blocks it, and the policy must mean the same on all of them.
func (r *Result) network(s *specs.Spec, pol *spec.AgentPolicy) error {
	wn := s.Windows.Network
	if wn != nil {
		r.Config.EndpointList = append([]string(nil), wn.EndpointList...)
		r.Config.AllowUnqualifiedDNSQuery = wn.AllowUnqualifiedDNSQuery
		r.Config.DNSSearchList = strings.Join(wn.DNSSearchList, ",")
		r.Config.NetworkSharedContainerName = wn.NetworkSharedContainerName
		r.NetworkNamespace = wn.NetworkNamespace
		if wn.NetworkNamespace != "" && len(wn.EndpointList) > 0 {
			return fmt.Errorf("windows.network: give either networkNamespace or endpointList, not both")
		}
	}
	if pol == nil || pol.Network == nil {
		return nil
	}
	acls, err := r.egressACLs(pol)
	if err != nil {
		return err
	}
	if len(acls) == 0 {
		return nil
	}
	if wn != nil && wn.NetworkSharedContainerName != "" {
		return fmt.Errorf("network: the container shares the network stack of container %q, whose endpoints carry that container's ACLs; per-container network rules cannot hold, so the container is refused (put the policy on %q)",
			wn.NetworkSharedContainerName, wn.NetworkSharedContainerName)
	}
	r.ACLs = acls
	if wn == nil || len(wn.EndpointList) == 0 && wn.NetworkNamespace == "" {
		r.enforce("network", "no HNS endpoint is attached: the container has no network interface at all")
	}
	return nil
}

func (r *Result) egressACLs(pol *spec.AgentPolicy) ([]ACL, error) {
	var acls []ACL
	eg := pol.Network.Egress
	in := pol.Network.Ingress
	if eg == nil {
		eg = &spec.Egress{Default: spec.Allow}
	}
	if in == nil {
		in = &spec.Ingress{Default: spec.Allow, HostLoopback: spec.Allow}
	}
	for _, set := range []struct {
		field  string
		rules  []spec.Rule
		action string
		base   int
	}{
		{"network.egress.deny", eg.Deny, ActionBlock, prioDeny},
		{"network.egress.allow", eg.Allow, ActionAllow, prioAllow},
	} {
		if len(set.rules) > maxRules {
			return nil, fmt.Errorf("%s: %d rules, at most %d fit HNS's ACL priorities", set.field, len(set.rules), maxRules)
		}
		for i, rule := range set.rules {
			field := fmt.Sprintf("%s[%d]", set.field, i)
			out, err := ruleACLs(field, rule, set.action, uint16(set.base+i))
			if err != nil {
				return nil, err
			}
			if len(out) == 0 {
				r.note("%s: its CIDRs minus their exceptions match no address; no ACL", field)
				continue
			}
			acls = append(acls, out...)
			verb := "Allow"
			if set.action == ActionBlock {
				verb = "Block"
			}
			r.enforce(field, fmt.Sprintf("HNS endpoint ACL: %s Out, priority %d (%d rule(s))", verb, set.base+i, len(out)))
		}
	}
	restrictive := len(acls) > 0 || eg.Default == spec.Deny || in.Default == spec.Deny
	if !restrictive {
		r.enforce("network.egress.default: allow", "no ACL needed")
		r.enforce("network.ingress.default: allow", "no ACL needed")
	} else {
		for _, d := range []struct {
			rule, dir string
			act       spec.Action
		}{
			{"network.egress.default", DirectionOut, eg.Default},
			{"network.ingress.default", DirectionIn, in.Default},
		} {
			action := ActionAllow
			switch d.act {
			case spec.Deny:
				action = ActionBlock
			case spec.Allow, "":
			default:
				return nil, fmt.Errorf("%s: unknown action %q", d.rule, d.act)
			}
			acls = append(acls, ACL{Action: action, Direction: d.dir, RuleType: RuleTypeSwitch, Priority: prioDefault})
			r.enforce(fmt.Sprintf("%s: %s", d.rule, orAllow(d.act)), fmt.Sprintf("HNS endpoint ACL: %s %s all, priority %d (last)", action, d.dir, prioDefault))
		}
	}
	switch in.HostLoopback {
	case spec.Deny:
		r.enforce("network.ingress.hostLoopback: deny", "the container has its own network compartment; the host's loopback is not reachable from it")
	case spec.Allow, "":
		r.note("network.ingress.hostLoopback: allow has no effect on Windows: a container's network compartment never reaches the host's loopback")
	default:
		return nil, fmt.Errorf("network.ingress.hostLoopback: unknown action %q", in.HostLoopback)
	}
	return acls, nil
}

func orAllow(a spec.Action) spec.Action {
	if a == "" {
		return spec.Allow
	}
	return a
}

// ruleACLs turns one policy rule into ACLs: one per address family and
// protocol it names, each with the rule's remote addresses and ports.
func ruleACLs(field string, rule spec.Rule, action string, prio uint16) ([]ACL, error) {
	// remotes holds one address list per family ("" = every address).
	type family struct {
		v4, v6 bool
		addrs  []string
	}
	fams := []*family{{v4: true, v6: true}}
	if len(rule.To) > 0 {
		v4, v6 := &family{v4: true}, &family{v6: true}
		for j, p := range rule.To {
			pf := fmt.Sprintf("%s.to[%d]", field, j)
			if p.Host != "" {
				return nil, fmt.Errorf("%s.host %q: host-name rules need mxc's DNS gate, which does not exist on Windows yet; HNS ACLs match addresses only, so the rule cannot hold (use cidr peers on Windows)", pf, p.Host)
			}
			if p.CIDR == "" {
				return nil, fmt.Errorf("%s: a peer needs host or cidr", pf)
			}
			pfx, err := netip.ParsePrefix(p.CIDR)
			if err != nil {
				return nil, fmt.Errorf("%s.cidr: %w", pf, err)
			}
			var except []netip.Prefix
			for k, e := range p.Except {
				ep, err := netip.ParsePrefix(e)
				if err != nil {
					return nil, fmt.Errorf("%s.except[%d]: %w", pf, k, err)
				}
				except = append(except, ep)
			}
			f := v6
			if pfx.Addr().Is4() {
				f = v4
			}
			for _, q := range subtractPrefixes(pfx.Masked(), except) {
				f.addrs = append(f.addrs, q.String())
			}
		}
		fams = nil
		for _, f := range []*family{v4, v6} {
			if len(f.addrs) > 0 {
				fams = append(fams, f)
			}
		}
		if len(fams) == 0 {
			return nil, nil // every address excepted: the rule matches nothing
		}
	}
	type sel struct {
		proto string // "" every protocol
		ports string // "" every port
	}
	var sels []sel
	if len(rule.Ports) == 0 {
		sels = []sel{{}}
	}
	for k, pt := range rule.Ports {
		pf := fmt.Sprintf("%s.ports[%d]", field, k)
		ports, err := portRange(pf, pt)
		if err != nil {
			return nil, err
		}
		switch pt.Protocol {
		case spec.ProtoTCP:
			sels = append(sels, sel{"6", ports})
		case spec.ProtoUDP:
			sels = append(sels, sel{"17", ports})
		case spec.ProtoICMP:
			if ports != "" {
				return nil, fmt.Errorf("%s: icmp has no ports", pf)
			}
			sels = append(sels, sel{"icmp", ""})
		case spec.ProtoAny, "":
			if ports == "" {
				sels = append(sels, sel{"", ""})
			} else {
				// Ports exist for tcp and udp.
				sels = append(sels, sel{"6", ports}, sel{"17", ports})
			}
		default:
			return nil, fmt.Errorf("%s.protocol: unknown protocol %q", pf, pt.Protocol)
		}
	}
	var out []ACL
	for _, f := range fams {
		// Merge the selectors per protocol: one ACL with a port list each.
		var order []string
		ports := map[string][]string{}
		all := map[string]bool{}
		for _, s := range sels {
			protos := []string{s.proto}
			if s.proto == "icmp" {
				protos = nil
				if f.v4 {
					protos = append(protos, "1")
				}
				if f.v6 {
					protos = append(protos, "58")
				}
			}
			for _, p := range protos {
				if _, ok := ports[p]; !ok {
					order = append(order, p)
					ports[p] = nil
				}
				if s.ports == "" {
					all[p] = true
				} else {
					ports[p] = append(ports[p], s.ports)
				}
			}
		}
		base := ACL{Action: action, Direction: DirectionOut, RemoteAddresses: strings.Join(f.addrs, ","), RuleType: RuleTypeSwitch, Priority: prio}
		if all[""] {
			// Every protocol on every port: one ACL covers the others.
			out = append(out, base)
			continue
		}
		for _, p := range order {
			a := base
			a.Protocols = p
			if !all[p] {
				a.RemotePorts = strings.Join(dedupe(ports[p]), ",")
			}
			out = append(out, a)
		}
	}
	return out, nil
}

func portRange(field string, p spec.Port) (string, error) {
	if p.Port == 0 {
		if p.EndPort != 0 {
			return "", fmt.Errorf("%s: endPort without port", field)
		}
		return "", nil
	}
	if p.Port < 1 || p.Port > 65535 {
		return "", fmt.Errorf("%s.port: %d is not a port number", field, p.Port)
	}
	switch {
	case p.EndPort == 0 || p.EndPort == p.Port:
		return strconv.Itoa(p.Port), nil
	case p.EndPort < p.Port || p.EndPort > 65535:
		return "", fmt.Errorf("%s.endPort: %d is not a port number at or above port %d", field, p.EndPort, p.Port)
	}
	return fmt.Sprintf("%d-%d", p.Port, p.EndPort), nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// subtractPrefixes returns the prefixes covering exactly p minus every
// prefix in except, smallest address first. Exceptions of the other address
// family, or outside p, change nothing.
func subtractPrefixes(p netip.Prefix, except []netip.Prefix) []netip.Prefix {
	set := []netip.Prefix{p}
	for _, e := range except {
		e = e.Masked()
		if e.Addr().Is4() != p.Addr().Is4() {
			continue
		}
		var next []netip.Prefix
		for _, q := range set {
			next = append(next, subtractOne(q, e)...)
		}
		set = next
	}
	sort.Slice(set, func(i, j int) bool {
		if c := set[i].Addr().Compare(set[j].Addr()); c != 0 {
			return c < 0
		}
		return set[i].Bits() < set[j].Bits()
	})
	return set
}

// subtractOne returns q minus e: q itself when they do not overlap, nothing
// when e covers q, else the sibling halves on the way from q down to e.
func subtractOne(q, e netip.Prefix) []netip.Prefix {
	if !q.Overlaps(e) {
		return []netip.Prefix{q}
	}
	if e.Bits() <= q.Bits() {
		return nil // e covers q
	}
	var out []netip.Prefix
	cur := q
	for cur.Bits() < e.Bits() {
		lo, hi := halves(cur)
		if lo.Contains(e.Addr()) {
			out = append(out, hi)
			cur = lo
		} else {
			out = append(out, lo)
			cur = hi
		}
	}
	return out
}

// halves splits a prefix into its two children.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits).Masked()
	a := lo.Addr().AsSlice()
	// Set the bit at index bits-1 (from the most significant bit).
	i := p.Bits()
	a[i/8] |= 0x80 >> (i % 8)
	hiAddr, _ := netip.AddrFromSlice(a)
	if p.Addr().Is4() {
		hiAddr = hiAddr.Unmap()
	}
	return lo, netip.PrefixFrom(hiAddr, bits)
}

// SameACLSet reports whether a and b hold the same ACLs, in any order.
func SameACLSet(a, b []ACL) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[ACL]int{}
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		if count[x] == 0 {
			return false
		}
		count[x]--
	}
	return true
}
