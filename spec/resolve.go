package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
)

// Resolve computes the effective policy of one container from its OCI
// annotations and the node config, once, at create:
//
//  1. the base: io.mxc.policy, else io.mxc.policy.ref (node.Policies, then
//     load for node.PolicyDir), else the node default, else an empty policy;
//  2. the short keys (io.mxc.isolation, io.mxc.network.allow, ...) layered
//     over it (see applyShortKeys for conflicts);
//  3. the node ceiling: a request beyond it is an error naming the rule; what
//     the ceiling supplies (denied paths, resource and timeout caps) is added;
//  4. defaults filled, validated, digest computed (NewEffective).
//
// It returns (nil, nil) when no policy applies: no io.mxc.* annotation, no
// node default and no requirePolicy. Such containers run as plain OCI
// containers. node may be nil (no config file); load may be nil.
func Resolve(annotations map[string]string, node *NodeConfig, load PolicyLoader) (*Effective, error) {
	set, err := decodeAnnotations(annotations)
	if err != nil {
		return nil, err
	}
	var (
		base     *AgentPolicy
		sources  []string
		notes    []string
		strict   bool
		baseName string
	)
	switch {
	case set.policy != nil:
		base, notes, strict, baseName = clonePolicy(set.policy), set.policyNotes, true, "annotation "+AnnotationPolicy
		sources = append(sources, "annotation "+AnnotationPolicy)
	case set.ref != "":
		p, n, from, err := lookupRef(node, load, set.ref)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", AnnotationPolicyRef, err)
		}
		base, notes, strict, baseName = p, n, true, "policy ref "+set.ref
		sources = append(sources, fmt.Sprintf("policy ref %s (%s)", set.ref, from))
	case node != nil && node.Default != nil:
		base, baseName = clonePolicy(node.Default), "node default"
		sources = append(sources, "node default")
	case set.empty():
		if node != nil && node.RequirePolicy {
			return nil, errors.New("the node requires a policy (requirePolicy) and the container has no io.mxc.* annotation and the node no default")
		}
		return nil, nil
	default:
		base = &AgentPolicy{}
	}
	fillKind(base)
	if err := set.applyShortKeys(base, strict, baseName); err != nil {
		return nil, err
	}
	for _, k := range set.shortKeys() {
		sources = append(sources, "annotation "+k)
	}
	return NewEffective(base, node, sources, notes)
}

// lookupRef finds a named policy: inline in the node config first, then in
// the node's policy directory through load.
func lookupRef(node *NodeConfig, load PolicyLoader, name string) (*AgentPolicy, []string, string, error) {
	if node != nil {
		if p, ok := node.Policies[name]; ok {
			c := clonePolicy(&p)
			fillKind(c)
			return c, nil, "node config", nil
		}
	}
	if node == nil || node.PolicyDir == "" || load == nil {
		return nil, nil, "", fmt.Errorf("no policy named %q is installed on this node", name)
	}
	data, err := load(name)
	if err != nil {
		return nil, nil, "", fmt.Errorf("policy %q: %w", name, err)
	}
	p, notes, err := ParsePolicy(data)
	if err != nil {
		return nil, nil, "", fmt.Errorf("policy %q in %s: %w", name, node.PolicyDir, err)
	}
	return p, notes, "policyDir " + node.PolicyDir, nil
}

// NewEffective validates p, checks it against the node ceiling (node may be
// nil), adds what the ceiling supplies, fills defaults and computes the
// digest. p is not modified.
func NewEffective(p *AgentPolicy, node *NodeConfig, sources, notes []string) (*Effective, error) {
	if p == nil {
		return nil, errors.New("no policy")
	}
	pol := clonePolicy(p)
	if err := pol.Validate(); err != nil {
		return nil, err
	}
	var c *Ceiling
	if node != nil {
		c = node.Ceiling
	}
	if err := checkCeiling(pol, c); err != nil {
		return nil, err
	}
	supplyFromCeiling(pol, c)
	fillDefaults(pol, c)
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("effective policy: %w", err)
	}
	eff := &Effective{Policy: *pol, Sources: append([]string(nil), sources...), Notes: append([]string(nil), notes...)}
	if c != nil {
		eff.Sources = append(eff.Sources, "node ceiling")
	}
	d, err := Digest(&eff.Policy)
	if err != nil {
		return nil, err
	}
	eff.Digest = d
	return eff, nil
}

// EffectiveFile is the name, in a container's state directory
// (<root>/<id>/), of the stored effective policy: the JSON of Effective.
const EffectiveFile = "policy.json"

// ParseEffective reads a stored effective policy strictly and checks that
// it is valid and that its digest matches its policy.
func ParseEffective(data []byte) (*Effective, error) {
	tree, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	eff := new(Effective)
	if err := decodeTree(tree, eff); err != nil {
		return nil, err
	}
	var l errList
	validatePolicy(&l, "policy", &eff.Policy)
	if err := l.err(); err != nil {
		return nil, err
	}
	d, err := Digest(&eff.Policy)
	if err != nil {
		return nil, err
	}
	if d != eff.Digest {
		return nil, &FieldError{Path: "digest", Msg: fmt.Sprintf("%s does not match the policy (%s)", eff.Digest, d)}
	}
	return eff, nil
}

// Digest is "sha256:<hex>" of the canonical JSON of p: encoding/json writes
// struct fields in declaration order and map keys sorted.
func Digest(p *AgentPolicy) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode policy: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// clonePolicy deep-copies a policy through JSON, which every field of it
// survives (ByteSize marshals as bytes).
func clonePolicy(p *AgentPolicy) *AgentPolicy {
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("spec: policy does not encode: %v", err))
	}
	out := new(AgentPolicy)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("spec: policy does not decode: %v", err))
	}
	return out
}

var tierRank = map[Tier]int{TierProcess: 1, TierSession: 2, TierMicroVM: 3}

func uiRequested(u *UI) bool {
	return u != nil && (!u.Disable || (u.Clipboard != "" && u.Clipboard != "none") || (u.Injection != nil && *u.Injection))
}

// checkCeiling returns an error naming every rule of the ceiling that p
// goes beyond. Without a ceiling only the built-in limits hold: the
// dangerous capabilities and allowPtrace always need a ceiling allowing them.
func checkCeiling(p *AgentPolicy, c *Ceiling) error {
	var l errList
	beyond := func(path, rule, format string, args ...any) {
		l.add(path, "%s is beyond the node ceiling (%s)", fmt.Sprintf(format, args...), rule)
	}
	bound := capabilityBound(c)
	if p.Process != nil {
		for i, capName := range p.Process.Capabilities {
			if bound[capName] {
				continue
			}
			rule := "ceiling.capabilities"
			if c == nil {
				rule = "no node config allows it"
			} else if len(c.Capabilities) == 0 {
				rule = "ceiling.capabilities does not list it"
			}
			beyond(index("process.capabilities", i), rule, "%s", capName)
		}
		if p.Process.AllowPtrace && (c == nil || !c.AllowPtrace) {
			beyond("process.allowPtrace", "ceiling.allowPtrace", "true")
		}
	}
	if c == nil {
		return l.err()
	}
	if c.MinIsolation != "" && p.Isolation != "" && tierRank[p.Isolation] < tierRank[c.MinIsolation] {
		l.add("isolation", "%s is below the node ceiling's minimum (ceiling.minIsolation %s)", p.Isolation, c.MinIsolation)
	}
	if p.Mode == ModeAudit && !c.AllowAudit {
		beyond("mode", "ceiling.allowAudit", "audit")
	}
	if uiRequested(p.UI) && !c.AllowUI {
		beyond("ui", "ceiling.allowUI", "display, clipboard or input access")
	}
	if fs := p.Filesystem; fs != nil && (len(c.ReadwritePaths) > 0 || len(c.ReadonlyPaths) > 0) {
		for i, path := range fs.ReadwritePaths {
			if !underAny(path, c.ReadwritePaths) {
				beyond(index("filesystem.readwritePaths", i), "ceiling.readwritePaths", "read-write %s", path)
			}
		}
		for i, path := range fs.ReadonlyPaths {
			if !underAny(path, c.ReadonlyPaths) && !underAny(path, c.ReadwritePaths) {
				beyond(index("filesystem.readonlyPaths", i), "ceiling.readonlyPaths", "read-only %s", path)
			}
		}
	}
	if n := p.Network; n != nil {
		if e := n.Egress; e != nil {
			if e.Default == Allow && !c.AllowEgressDefaultAllow {
				beyond("network.egress.default", "ceiling.allowEgressDefaultAllow", "allow")
			}
			for i, r := range e.Allow {
				checkRuleCovered(&l, index("network.egress.allow", i), r, c.EgressAllow)
			}
		}
		if in := n.Ingress; in != nil && !c.AllowIngress {
			if in.Default == Allow {
				beyond("network.ingress.default", "ceiling.allowIngress", "allow")
			}
			if in.HostLoopback == Allow {
				beyond("network.ingress.hostLoopback", "ceiling.allowIngress", "allow")
			}
		}
	}
	if m := c.MaxResources; m != nil && p.Resources != nil {
		r := p.Resources
		if m.CPUs > 0 && r.CPUs > m.CPUs {
			beyond("resources.cpus", "ceiling.maxResources.cpus "+fmtFloat(m.CPUs), "%s", fmtFloat(r.CPUs))
		}
		if m.Memory > 0 && r.Memory > m.Memory {
			beyond("resources.memory", "ceiling.maxResources.memory "+m.Memory.String(), "%s", r.Memory)
		}
		if m.Pids > 0 && r.Pids > m.Pids {
			beyond("resources.pids", fmt.Sprintf("ceiling.maxResources.pids %d", m.Pids), "%d", r.Pids)
		}
	}
	if c.MaxTimeout > 0 && p.Process != nil && p.Process.Timeout > c.MaxTimeout {
		beyond("process.timeout", fmt.Sprintf("ceiling.maxTimeout %d", c.MaxTimeout), "%d", p.Process.Timeout)
	}
	return l.err()
}

func fmtFloat(f float64) string { return fmt.Sprintf("%g", f) }

func underAny(p string, roots []string) bool {
	for _, r := range roots {
		if within(p, r) {
			return true
		}
	}
	return false
}

// checkRuleCovered requires every destination x port of an allow rule to
// be covered by the ceiling's egressAllow rules.
func checkRuleCovered(l *errList, at string, r Rule, ceiling []Rule) {
	if len(ceiling) == 0 {
		l.add(at, "egress allow rules are beyond the node ceiling (ceiling.egressAllow is empty: no egress)")
		return
	}
	peers := r.To
	if len(peers) == 0 {
		peers = []Peer{{}} // every address
	}
	for j, peer := range peers {
		var covering []Rule
		for _, cr := range ceiling {
			if ruleCoversPeer(cr, peer) {
				covering = append(covering, cr)
			}
		}
		pa := at
		if len(r.To) > 0 {
			pa = index(joinPath(at, "to"), j)
		}
		if len(covering) == 0 {
			l.add(pa, "%s is beyond the node ceiling (ceiling.egressAllow)", describePeer(peer))
			continue
		}
		ports := r.Ports
		if len(ports) == 0 {
			ports = []Port{{Protocol: ProtoAny}}
		}
		for k, pt := range ports {
			ok := false
			for _, cr := range covering {
				if portsCover(cr.Ports, pt) {
					ok = true
					break
				}
			}
			if !ok {
				ppath := pa
				if len(r.Ports) > 0 {
					ppath = index(joinPath(at, "ports"), k)
				}
				l.add(ppath, "%s to %s is beyond the node ceiling (ceiling.egressAllow)", describePort(pt), describePeer(peer))
			}
		}
	}
}

func ruleCoversPeer(cr Rule, p Peer) bool {
	if len(cr.To) == 0 {
		return true
	}
	for _, cp := range cr.To {
		if peerCovers(cp, p) {
			return true
		}
	}
	return false
}

// peerCovers reports whether ceiling peer c matches every address p does.
// An empty p (a rule without `to`) is every address: only an empty c covers it.
func peerCovers(c, p Peer) bool {
	switch {
	case p.Host == "" && p.CIDR == "":
		return false
	case p.Host != "":
		return c.Host != "" && hostCovers(normalizeHost(c.Host), normalizeHost(p.Host))
	case c.CIDR == "":
		return false
	}
	cp, err1 := netip.ParsePrefix(c.CIDR)
	pp, err2 := netip.ParsePrefix(p.CIDR)
	if err1 != nil || err2 != nil || cp.Addr().Is4() != pp.Addr().Is4() || pp.Bits() < cp.Bits() || !cp.Contains(pp.Addr()) {
		return false
	}
	for _, ce := range c.Except {
		e, err := netip.ParsePrefix(ce)
		if err != nil || !e.Overlaps(pp) {
			continue
		}
		if e.Bits() <= pp.Bits() {
			return false // the ceiling excludes all of p
		}
		excluded := false
		for _, pe := range p.Except {
			if x, err := netip.ParsePrefix(pe); err == nil && x.Bits() <= e.Bits() && x.Contains(e.Addr()) {
				excluded = true
			}
		}
		if !excluded {
			return false
		}
	}
	return true
}

// hostCovers: "*.x" covers every name strictly under x (and narrower
// wildcards under x); a plain name covers only itself.
func hostCovers(c, p string) bool {
	if c == p {
		return true
	}
	if base, ok := cutWildcard(c); ok {
		pb := p
		if b, ok := cutWildcard(p); ok {
			pb = b
			return pb == base || hasSuffixLabel(pb, base)
		}
		return hasSuffixLabel(pb, base)
	}
	return false
}

func cutWildcard(h string) (string, bool) {
	if len(h) > 2 && h[:2] == "*." {
		return h[2:], true
	}
	return h, false
}

func hasSuffixLabel(name, base string) bool {
	return len(name) > len(base)+1 && name[len(name)-len(base)-1:] == "."+base
}

// portsCover reports whether the ceiling's ports (empty: all) cover p.
func portsCover(cps []Port, p Port) bool {
	if len(cps) == 0 {
		return true
	}
	for _, c := range cps {
		if c.Protocol != ProtoAny && c.Protocol != "" && c.Protocol != p.Protocol {
			continue
		}
		if c.Port == 0 {
			return true
		}
		if p.Port == 0 {
			continue
		}
		pEnd, cEnd := p.EndPort, c.EndPort
		if pEnd == 0 {
			pEnd = p.Port
		}
		if cEnd == 0 {
			cEnd = c.Port
		}
		if p.Port >= c.Port && pEnd <= cEnd {
			return true
		}
	}
	return false
}

// supplyFromCeiling adds what the ceiling imposes on every container:
// always-denied paths, file grants when the policy names none, and resource
// and timeout caps when the policy sets none. Each only tightens.
func supplyFromCeiling(p *AgentPolicy, c *Ceiling) {
	if c == nil {
		return
	}
	if c.MinIsolation != "" && p.Isolation == "" {
		p.Isolation = c.MinIsolation
	}
	if len(c.ReadonlyPaths) > 0 || len(c.ReadwritePaths) > 0 {
		if p.Filesystem == nil {
			p.Filesystem = &Filesystem{}
		}
		if len(p.Filesystem.ReadonlyPaths) == 0 && len(p.Filesystem.ReadwritePaths) == 0 {
			p.Filesystem.ReadonlyPaths = append([]string(nil), c.ReadonlyPaths...)
			p.Filesystem.ReadwritePaths = append([]string(nil), c.ReadwritePaths...)
		}
	}
	if len(c.DeniedPaths) > 0 {
		if p.Filesystem == nil {
			p.Filesystem = &Filesystem{}
		}
		for _, d := range c.DeniedPaths {
			if !containsPath(p.Filesystem.DeniedPaths, d) {
				p.Filesystem.DeniedPaths = append(p.Filesystem.DeniedPaths, d)
			}
		}
	}
	if m := c.MaxResources; m != nil && (m.CPUs > 0 || m.Memory > 0 || m.Pids > 0) {
		if p.Resources == nil {
			p.Resources = &Resources{}
		}
		if p.Resources.CPUs == 0 {
			p.Resources.CPUs = m.CPUs
		}
		if p.Resources.Memory == 0 {
			p.Resources.Memory = m.Memory
		}
		if p.Resources.Pids == 0 {
			p.Resources.Pids = m.Pids
		}
	}
	if c.MaxTimeout > 0 {
		if p.Process == nil {
			p.Process = &Process{}
		}
		if p.Process.Timeout == 0 {
			p.Process.Timeout = c.MaxTimeout
		}
	}
}

func containsPath(l []string, p string) bool {
	for _, e := range l {
		if samePath(e, p) {
			return true
		}
	}
	return false
}

// fillDefaults makes every default explicit, so that the stored policy and
// its digest say exactly what is enforced.
func fillDefaults(p *AgentPolicy, c *Ceiling) {
	if p.Isolation == "" {
		p.Isolation = TierProcess
	}
	if p.Mode == "" {
		p.Mode = ModeEnforce
	}
	if p.Network == nil {
		p.Network = &Network{}
	}
	if p.Network.Egress == nil {
		p.Network.Egress = &Egress{}
	}
	if p.Network.Egress.Default == "" {
		p.Network.Egress.Default = Deny
	}
	for _, rules := range [][]Rule{p.Network.Egress.Allow, p.Network.Egress.Deny} {
		for i := range rules {
			for j := range rules[i].To {
				if h := rules[i].To[j].Host; h != "" {
					rules[i].To[j].Host = normalizeHost(h)
				}
			}
			for j := range rules[i].Ports {
				if rules[i].Ports[j].Protocol == "" {
					rules[i].Ports[j].Protocol = ProtoAny
				}
			}
		}
	}
	if p.Network.Ingress == nil {
		p.Network.Ingress = &Ingress{}
	}
	if p.Network.Ingress.Default == "" {
		p.Network.Ingress.Default = Deny
	}
	if p.Network.Ingress.HostLoopback == "" {
		p.Network.Ingress.HostLoopback = Deny
	}
	if p.UI == nil {
		p.UI = &UI{Disable: true}
	}
	if p.UI.Clipboard == "" {
		p.UI.Clipboard = "none"
	}
	if p.UI.Injection == nil {
		f := false
		p.UI.Injection = &f
	}
	if p.Process == nil {
		p.Process = &Process{}
	}
	if !p.Process.NoCapabilities {
		bound := capabilityBound(c)
		want := p.Process.Capabilities
		if len(want) == 0 {
			want = DefaultAgentCapabilities
		}
		keep := stringSet{}
		for _, k := range want {
			if bound[k] {
				keep[k] = true
			}
		}
		p.Process.Capabilities = keep.sorted()
		p.Process.NoCapabilities = len(keep) == 0
	}
	if p.Resources != nil && *p.Resources == (Resources{}) {
		p.Resources = nil
	}
	if p.Filesystem != nil {
		fs := p.Filesystem
		fs.ReadonlyPaths = dedupPaths(fs.ReadonlyPaths)
		fs.ReadwritePaths = dedupPaths(fs.ReadwritePaths)
		fs.DeniedPaths = dedupPaths(fs.DeniedPaths)
	}
}

func dedupPaths(l []string) []string {
	var out []string
	for _, p := range l {
		if !containsPath(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// validateCeiling checks the ceiling's own rules (paths, egress rules,
// tiers, capabilities, resources).
func validateCeiling(l *errList, at string, c *Ceiling) {
	switch c.MinIsolation {
	case "", TierProcess, TierSession, TierMicroVM:
	default:
		l.add(joinPath(at, "minIsolation"), "%q is not a tier (want process, session or microvm)", c.MinIsolation)
	}
	validateFilesystem(l, at, &Filesystem{ReadonlyPaths: c.ReadonlyPaths, ReadwritePaths: c.ReadwritePaths, DeniedPaths: c.DeniedPaths})
	for i := range c.EgressAllow {
		validateRule(l, index(joinPath(at, "egressAllow"), i), &c.EgressAllow[i], true)
	}
	for i, k := range c.Capabilities {
		validateCapability(l, index(joinPath(at, "capabilities"), i), k)
	}
	if c.MaxResources != nil {
		validateResources(l, joinPath(at, "maxResources"), c.MaxResources)
	}
	if c.MaxTimeout > MaxTimeout {
		l.add(joinPath(at, "maxTimeout"), "%d is above %d", c.MaxTimeout, uint64(MaxTimeout))
	}
}
