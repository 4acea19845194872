package egress

import (
	"fmt"
	"strings"
	"time"
)

// hostPattern is a host peer of a rule: an exact DNS name or a "*." wildcard.
// Names are kept lowercase without the trailing dot.
type hostPattern struct {
	// name is the exact name, or for a wildcard the parent domain after "*.".
	name     string
	wildcard bool
}

func (p hostPattern) String() string {
	if p.wildcard {
		return "*." + p.name
	}
	return p.name
}

// parseHost checks a policy host and returns its pattern. A wildcard needs at
// least two labels after the star, so "*.com" cannot allow a whole TLD.
func parseHost(s string) (hostPattern, error) {
	n := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	wild := false
	if strings.HasPrefix(n, "*.") {
		wild = true
		n = n[2:]
	}
	if n == "" {
		return hostPattern{}, fmt.Errorf("empty host name")
	}
	if len(n) > 253 {
		return hostPattern{}, fmt.Errorf("host %q: longer than 253 characters", s)
	}
	labels := strings.Split(n, ".")
	if wild && len(labels) < 2 {
		return hostPattern{}, fmt.Errorf("host %q: a wildcard needs at least two labels after \"*.\"", s)
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return hostPattern{}, fmt.Errorf("host %q: %w", s, err)
		}
	}
	return hostPattern{name: n, wildcard: wild}, nil
}

// checkLabel accepts letters, digits, '-' and '_' (service labels such as
// _acme-challenge), 1 to 63 characters, no leading or trailing '-'.
func checkLabel(l string) error {
	if l == "" {
		return fmt.Errorf("empty label")
	}
	if len(l) > 63 {
		return fmt.Errorf("label %q longer than 63 characters", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '*':
			return fmt.Errorf("'*' is only allowed as the whole first label (\"*.example.com\")")
		default:
			return fmt.Errorf("label %q: invalid character %q", l, c)
		}
	}
	return nil
}

// canonicalName turns a query name (as miekg/dns presents it: possibly mixed
// case, with the trailing dot, escapes kept) into the form patterns match.
func canonicalName(q string) string {
	return strings.ToLower(strings.TrimSuffix(q, "."))
}

// match reports whether the canonical name n is covered by p. An exact
// pattern covers only itself; "*.example.com" covers every name below
// example.com at any depth, but not example.com itself.
func (p hostPattern) match(n string) bool {
	if !p.wildcard {
		return n == p.name
	}
	return len(n) > len(p.name)+1 && strings.HasSuffix(n, p.name) && n[len(n)-len(p.name)-1] == '.'
}

// TTL clamp defaults (seconds), used when the node config sets none.
const (
	DefaultMinTTL = 5
	DefaultMaxTTL = 3600
)

// ttlBounds returns the effective clamp, filling defaults and refusing a
// minimum above the maximum.
func ttlBounds(minTTL, maxTTL uint32) (uint32, uint32, error) {
	if minTTL == 0 {
		minTTL = DefaultMinTTL
	}
	if maxTTL == 0 {
		maxTTL = DefaultMaxTTL
	}
	if minTTL > maxTTL {
		return 0, 0, fmt.Errorf("dns.minTTL (%d) is greater than dns.maxTTL (%d)", minTTL, maxTTL)
	}
	return minTTL, maxTTL, nil
}

// clampTTL is the lifetime of an allow-set element for a record with ttl:
// never below min (a client that caches for 0s still gets to connect) and
// never above max (a stale address does not stay reachable for a day).
func clampTTL(ttl, minTTL, maxTTL uint32) time.Duration {
	if ttl < minTTL {
		ttl = minTTL
	}
	if ttl > maxTTL {
		ttl = maxTTL
	}
	return time.Duration(ttl) * time.Second
}

// clientTTL is the TTL handed back to the client: capped at max so that no
// client caches an address longer than its allow-set element lives.
func clientTTL(ttl, maxTTL uint32) uint32 {
	if ttl > maxTTL {
		return maxTTL
	}
	return ttl
}
