package spec

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParsePolicy reads an AgentPolicy (mxc.dev/v1alpha1) or an MXC 1.0.0
// request from YAML or JSON. Parsing is strict: an unknown field, a wrong
// type, an out-of-range value or a broken rule is an error naming its path,
// and all of them are returned together (errors.Join of *FieldError; see
// Errors). notes name the fields of an MXC document that have no meaning
// for an OCI container: they are reported, never used.
func ParsePolicy(data []byte) (*AgentPolicy, []string, error) {
	tree, err := parseTree(data)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := tree.(map[string]any); !ok {
		return nil, nil, fmt.Errorf("expected a policy object, got %s", describe(tree))
	}
	if isMXC(tree) {
		return importMXC(tree)
	}
	p := new(AgentPolicy)
	if err := decodeTree(tree, p); err != nil {
		return nil, nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	return p, nil, nil
}

// ParseNodeConfig reads the node config (/etc/mxc/config.yaml) strictly and
// checks it whole: the ceiling's own rules, the default policy and every
// named policy against the ceiling, DNS and session settings. Embedded
// policies may leave out apiVersion and kind.
func ParseNodeConfig(data []byte) (*NodeConfig, error) {
	tree, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	if _, ok := tree.(map[string]any); !ok {
		return nil, fmt.Errorf("expected a config object, got %s", describe(tree))
	}
	nc := new(NodeConfig)
	if err := decodeTree(tree, nc); err != nil {
		return nil, err
	}
	if err := nc.Validate(); err != nil {
		return nil, err
	}
	return nc, nil
}

// Validate checks a node config; ParseNodeConfig calls it.
func (nc *NodeConfig) Validate() error {
	var l errList
	if c := nc.Ceiling; c != nil {
		validateCeiling(&l, "ceiling", c)
	}
	if err := l.err(); err != nil {
		// Checking policies against a broken ceiling would only add noise.
		return err
	}
	if nc.Default != nil {
		fillKind(nc.Default)
		if _, err := NewEffective(nc.Default, nc, nil, nil); err != nil {
			l.addErr("default", err)
		}
	}
	for _, name := range sortedKeys(nc.Policies) {
		at := key("policies", name)
		if !isName(name) {
			l.add(at, "%q is not a valid policy name (lower-case letters, digits, '.', '-', '_')", name)
			continue
		}
		p := nc.Policies[name]
		fillKind(&p)
		nc.Policies[name] = p
		if _, err := NewEffective(&p, nc, nil, nil); err != nil {
			l.addErr(at, err)
		}
	}
	if nc.PolicyDir != "" {
		if f, msg := checkFSPath(nc.PolicyDir); msg != "" || f != famPOSIX && f != famWindows {
			l.add("policyDir", "%s", msg)
		}
	}
	if d := nc.DNS; d != nil {
		for i, u := range d.Upstreams {
			if msg := checkAddrPort(u); msg != "" {
				l.add(index("dns.upstreams", i), "%s", msg)
			}
		}
		if d.MinTTL != 0 && d.MaxTTL != 0 && d.MinTTL > d.MaxTTL {
			l.add("dns.minTTL", "%d is above maxTTL %d", d.MinTTL, d.MaxTTL)
		}
	}
	if s := nc.Session; s != nil {
		base, size, slots := uint64(s.IDBase), uint64(s.IDSize), uint64(s.Slots)
		if base == 0 {
			base = 1 << 30
		}
		if size == 0 {
			size = 65536
		}
		if slots == 0 {
			slots = 1024
		}
		if base+size*slots > 1<<32-1 {
			l.add("session", "idBase + idSize*slots = %d runs past the last uid 4294967294", base+size*slots)
		}
	}
	return l.err()
}

func fillKind(p *AgentPolicy) {
	if p.APIVersion == "" {
		p.APIVersion = APIVersion
	}
	if p.Kind == "" {
		p.Kind = Kind
	}
}

func checkAddrPort(s string) string {
	if strings.TrimSpace(s) != s || s == "" {
		return fmt.Sprintf("%q is not ip:port", s)
	}
	if _, err := netip.ParseAddrPort(s); err != nil {
		return fmt.Sprintf("%q is not ip:port (%v)", s, err)
	}
	return ""
}
