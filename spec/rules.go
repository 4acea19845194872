package spec

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// Normalized views of an Effective policy for the drivers: they enforce
// these lists and never re-derive policy semantics themselves.

// Access is what a path rule grants.
type Access string

const (
	AccessReadOnly  Access = "readonly"
	AccessReadWrite Access = "readwrite"
	AccessDenied    Access = "denied"
)

// PathRule is one resolved filesystem rule.
type PathRule struct {
	Path   string `json:"path"`
	Access Access `json:"access"`
}

// RestrictsFiles reports whether the policy grants file access by list
// (readonlyPaths or readwritePaths given): then everything not granted is
// out of reach. Without grants only deniedPaths are masked and the
// container's own rootfs rules hold.
func (e *Effective) RestrictsFiles() bool {
	fs := e.Policy.Filesystem
	return fs != nil && (len(fs.ReadonlyPaths) > 0 || len(fs.ReadwritePaths) > 0)
}

// FSRules returns the filesystem rules after "deny wins": a grant equal to
// or inside a denied path is dropped; a path both read-only and read-write
// is read-only. Rules are ordered parents first (by depth, then name), the
// order in which a driver applies them. nil when the policy has no
// filesystem section.
func (e *Effective) FSRules() []PathRule {
	rules, _ := resolveFS(e.Policy.Filesystem)
	return rules
}

func pathDepth(p string) int {
	if hasDrivePrefix(p) {
		return strings.Count(strings.TrimSuffix(p, `\`), `\`)
	}
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

func resolveFS(fs *Filesystem) ([]PathRule, []string) {
	if fs == nil {
		return nil, nil
	}
	var rules []PathRule
	var res []string
	deniedBy := func(p string) string {
		for _, d := range fs.DeniedPaths {
			if within(p, d) {
				return d
			}
		}
		return ""
	}
	for _, d := range dedupPaths(fs.DeniedPaths) {
		rules = append(rules, PathRule{Path: d, Access: AccessDenied})
		for _, g := range fs.ReadwritePaths {
			if within(d, g) && !samePath(d, g) {
				res = append(res, fmt.Sprintf("denied %s lies inside read-write %s: deny wins, %s is masked", d, g, d))
			}
		}
		for _, g := range fs.ReadonlyPaths {
			if within(d, g) && !samePath(d, g) {
				res = append(res, fmt.Sprintf("denied %s lies inside read-only %s: deny wins, %s is masked", d, g, d))
			}
		}
	}
	for _, p := range dedupPaths(fs.ReadonlyPaths) {
		if d := deniedBy(p); d != "" {
			if samePath(p, d) {
				res = append(res, fmt.Sprintf("%s is both read-only and denied: deny wins", p))
			} else {
				res = append(res, fmt.Sprintf("read-only %s lies inside denied %s: deny wins, it is not reachable", p, d))
			}
			continue
		}
		rules = append(rules, PathRule{Path: p, Access: AccessReadOnly})
	}
	for _, p := range dedupPaths(fs.ReadwritePaths) {
		if d := deniedBy(p); d != "" {
			if samePath(p, d) {
				res = append(res, fmt.Sprintf("%s is both read-write and denied: deny wins", p))
			} else {
				res = append(res, fmt.Sprintf("read-write %s lies inside denied %s: deny wins, it is not reachable", p, d))
			}
			continue
		}
		if containsPath(fs.ReadonlyPaths, p) {
			res = append(res, fmt.Sprintf("%s is both read-only and read-write: read-only wins (the stricter rule)", p))
			continue
		}
		rules = append(rules, PathRule{Path: p, Access: AccessReadWrite})
	}
	sort.SliceStable(rules, func(i, j int) bool {
		di, dj := pathDepth(rules[i].Path), pathDepth(rules[j].Path)
		if di != dj {
			return di < dj
		}
		return rules[i].Path < rules[j].Path
	})
	return rules, res
}

// PortRange is a protocol and an inclusive port range; First 0 means every
// port of the protocol.
type PortRange struct {
	Protocol Protocol `json:"protocol"`
	First    uint16   `json:"first,omitempty"`
	Last     uint16   `json:"last,omitempty"`
}

// Destination is one normalized egress destination: exactly one of Any,
// Host or Prefix is set. Ports empty means every protocol and port.
type Destination struct {
	// Any matches every address (a rule without `to`).
	Any bool `json:"any,omitempty"`
	// Host is a lower-case DNS name without trailing dot; with Wildcard,
	// the domain after "*." (matching names strictly under it).
	Host     string         `json:"host,omitempty"`
	Wildcard bool           `json:"wildcard,omitempty"`
	Prefix   netip.Prefix   `json:"prefix,omitzero"`
	Except   []netip.Prefix `json:"except,omitempty"`
	Ports    []PortRange    `json:"ports,omitempty"`
	// Rule is the path of the rule it came from ("network.egress.allow[1]").
	Rule string `json:"rule"`
}

// MatchesName reports whether a DNS name falls under a host destination.
func (d Destination) MatchesName(name string) bool {
	n := normalizeHost(name)
	if d.Any {
		return true
	}
	if d.Host == "" {
		return false
	}
	if d.Wildcard {
		return hasSuffixLabel(n, d.Host)
	}
	return n == d.Host
}

// EgressAllow returns the allow rules expanded to one Destination per peer.
func (e *Effective) EgressAllow() []Destination {
	if e.Policy.Network == nil || e.Policy.Network.Egress == nil {
		return nil
	}
	return destinations("network.egress.allow", e.Policy.Network.Egress.Allow)
}

// EgressDeny returns the deny rules expanded to one Destination per peer.
// Deny wins over allow.
func (e *Effective) EgressDeny() []Destination {
	if e.Policy.Network == nil || e.Policy.Network.Egress == nil {
		return nil
	}
	return destinations("network.egress.deny", e.Policy.Network.Egress.Deny)
}

// EgressDefault is the action for traffic no rule matches (deny when unset).
func (e *Effective) EgressDefault() Action {
	if n := e.Policy.Network; n != nil && n.Egress != nil && n.Egress.Default != "" {
		return n.Egress.Default
	}
	return Deny
}

func destinations(at string, rules []Rule) []Destination {
	var out []Destination
	for i, r := range rules {
		ports := portRanges(r.Ports)
		rule := index(at, i)
		if len(r.To) == 0 {
			out = append(out, Destination{Any: true, Ports: ports, Rule: rule})
			continue
		}
		for _, p := range r.To {
			d := Destination{Ports: ports, Rule: rule}
			if p.Host != "" {
				h := normalizeHost(p.Host)
				d.Host, d.Wildcard = cutWildcard(h)
			} else {
				pfx, err := netip.ParsePrefix(p.CIDR)
				if err != nil {
					continue // Validate refused it; an Effective is always valid
				}
				d.Prefix = pfx
				for _, x := range p.Except {
					if xp, err := netip.ParsePrefix(x); err == nil {
						d.Except = append(d.Except, xp)
					}
				}
			}
			out = append(out, d)
		}
	}
	return out
}

func portRanges(ps []Port) []PortRange {
	var out []PortRange
	for _, p := range ps {
		proto := p.Protocol
		if proto == "" {
			proto = ProtoAny
		}
		r := PortRange{Protocol: proto, First: uint16(p.Port), Last: uint16(p.EndPort)}
		if r.Last == 0 {
			r.Last = r.First
		}
		out = append(out, r)
	}
	return out
}

// AllowsName reports whether the DNS gate answers queries for name: a name
// denied for every port is refused; otherwise, with egress default allow,
// or when an allow destination covers the name (or any address), it is
// answered. Port rules are enforced on the addresses, not on the name.
func (e *Effective) AllowsName(name string) bool {
	for _, d := range e.EgressDeny() {
		if d.Host != "" && len(d.Ports) == 0 && d.MatchesName(name) {
			return false
		}
	}
	if e.EgressDefault() == Allow {
		return true
	}
	for _, d := range e.EgressAllow() {
		if d.MatchesName(name) {
			return true
		}
	}
	return false
}

// Timeout is process.timeout as a duration; 0 means none.
func (e *Effective) Timeout() time.Duration {
	if e.Policy.Process == nil {
		return 0
	}
	return time.Duration(e.Policy.Process.Timeout) * time.Millisecond
}

// Resolutions lists, in plain words, every place where the policy both
// allows and denies the same thing and how it resolves (deny wins).
func (e *Effective) Resolutions() []string {
	_, res := resolveFS(e.Policy.Filesystem)
	allow, deny := e.EgressAllow(), e.EgressDeny()
	for _, a := range allow {
		for _, d := range deny {
			if !destOverlap(a, d) {
				continue
			}
			ports, ok := portsOverlap(a.Ports, d.Ports)
			if !ok {
				continue
			}
			res = append(res, fmt.Sprintf("%s (%s) overrides %s (%s) for %s: deny wins",
				d.Rule, describeDest(d), a.Rule, describeDest(a), ports))
		}
	}
	if len(deny) > 0 {
		for _, a := range allow {
			if a.Host != "" {
				res = append(res, "an allowed host name whose addresses fall in a denied range is blocked there: deny wins")
				break
			}
		}
	}
	return res
}

func destOverlap(a, d Destination) bool {
	switch {
	case a.Any || d.Any:
		return true
	case a.Host != "" && d.Host != "":
		ah, dh := hostPattern(a), hostPattern(d)
		return hostCovers(ah, dh) || hostCovers(dh, ah)
	case a.Prefix.IsValid() && d.Prefix.IsValid():
		if !a.Prefix.Overlaps(d.Prefix) {
			return false
		}
		// A deny range carved out of the allow range by except does not overlap.
		for _, x := range a.Except {
			if x.Bits() <= d.Prefix.Bits() && x.Contains(d.Prefix.Addr()) {
				return false
			}
		}
		return true
	}
	return false
}

func hostPattern(d Destination) string {
	if d.Wildcard {
		return "*." + d.Host
	}
	return d.Host
}

// portsOverlap returns a description of the ports both lists match.
func portsOverlap(a, b []PortRange) (string, bool) {
	if len(a) == 0 && len(b) == 0 {
		return "every port", true
	}
	if len(a) == 0 {
		return describeRanges(b), true
	}
	if len(b) == 0 {
		return describeRanges(a), true
	}
	var both []PortRange
	for _, x := range a {
		for _, y := range b {
			proto := x.Protocol
			switch {
			case x.Protocol == y.Protocol:
			case x.Protocol == ProtoAny:
				proto = y.Protocol
			case y.Protocol == ProtoAny:
			default:
				continue
			}
			first, last := x.First, x.Last
			switch {
			case x.First == 0:
				first, last = y.First, y.Last
			case y.First == 0:
			default:
				first, last = max(x.First, y.First), min(x.Last, y.Last)
				if first > last {
					continue
				}
			}
			both = append(both, PortRange{Protocol: proto, First: first, Last: last})
		}
	}
	if len(both) == 0 {
		return "", false
	}
	return describeRanges(both), true
}
