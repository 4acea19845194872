package egress

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzHostMatch: a pattern that parses never matches a name that does not
// end with its domain, and a wildcard never matches its own apex.
func FuzzHostMatch(f *testing.F) {
	f.Add("*.example.com", "a.example.com")
	f.Add("api.openai.com", "API.openai.com.")
	f.Add("*.example.com", "example.com")
	f.Add("*.b.c", `x\.y.b.c`)
	f.Fuzz(func(t *testing.T, pattern, name string) {
		p, err := parseHost(pattern)
		if err != nil {
			return
		}
		n := canonicalName(name)
		if !p.match(n) {
			return
		}
		if !strings.HasSuffix(n, p.name) {
			t.Fatalf("%s matched %q", p, n)
		}
		if p.wildcard && (n == p.name || !strings.HasSuffix(n, "."+p.name)) {
			t.Fatalf("wildcard %s matched %q", p, n)
		}
		if !p.wildcard && n != p.name {
			t.Fatalf("exact %s matched %q", p, n)
		}
	})
}

// FuzzPeerRanges: the ranges of a CIDR minus its excepts are disjoint,
// sorted, inside the CIDR, and exclude every except.
func FuzzPeerRanges(f *testing.F) {
	f.Add("192.0.2.0/24", "192.0.2.7/32", "192.0.2.128/25")
	f.Add("0.0.0.0/0", "10.0.0.0/8", "255.255.255.255")
	f.Add("2001:db8::/32", "2001:db8::/33", "2001:db8:ffff::/48")
	f.Fuzz(func(t *testing.T, cidr, x1, x2 string) {
		rs, err := peerRanges(cidr, []string{x1, x2})
		if err != nil {
			return
		}
		rs = mergeRanges(rs)
		p, _ := parsePrefix(cidr)
		for i, r := range rs {
			if r.to.Less(r.from) || !p.Contains(r.from) || !p.Contains(r.to) {
				t.Fatalf("range %v outside %v or inverted", r, p)
			}
			if i > 0 && !rs[i-1].to.Less(r.from) {
				t.Fatalf("ranges overlap: %v", rs)
			}
			for _, x := range []string{x1, x2} {
				xp, _ := parsePrefix(x)
				xr := prefixRange(xp)
				if !(xr.to.Less(r.from) || r.to.Less(xr.from)) {
					t.Fatalf("range %v overlaps except %v", r, xp)
				}
			}
		}
		// Every element key is an address of the family.
		for _, e := range intervalElements(rs) {
			if _, ok := netip.AddrFromSlice(e.key); !ok || len(e.key) != p.Addr().BitLen()/8 {
				t.Fatalf("bad key %v", e.key)
			}
		}
	})
}

// FuzzNFLogPacket: malformed log messages never panic.
func FuzzNFLogPacket(f *testing.F) {
	f.Add([]byte{0x05, 0x00, 0x0a, 0x00, 'm', 0, 0, 0})
	f.Add([]byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 192, 0, 2, 5, 203, 0, 113, 20, 0x9c, 0x40, 0, 80})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseNFLogPacket(b)
		var p loggedPacket
		_ = parseIPHeaders(b, &p)
	})
}
