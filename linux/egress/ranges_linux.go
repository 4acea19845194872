package egress

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// addrRange is an inclusive range of addresses of one family.
type addrRange struct {
	from, to netip.Addr
}

func (r addrRange) String() string {
	if r.from == r.to {
		return r.from.String()
	}
	return r.from.String() + "-" + r.to.String()
}

// prefixRange is the inclusive range a prefix covers.
func prefixRange(p netip.Prefix) addrRange {
	p = p.Masked()
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits {
				b[i] |= 0x80 >> bit
			}
		}
	}
	last, _ := netip.AddrFromSlice(b)
	return addrRange{from: p.Addr(), to: last}
}

// parsePrefix accepts a CIDR or a bare address (a /32 or /128) and unmaps
// IPv4-mapped IPv6 forms, so that "::ffff:192.0.2.1" lands in the IPv4 set.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// subtract returns rs minus e, in order.
func subtract(rs []addrRange, e addrRange) []addrRange {
	var out []addrRange
	for _, r := range rs {
		if r.from.BitLen() != e.from.BitLen() || e.to.Less(r.from) || r.to.Less(e.from) {
			out = append(out, r)
			continue
		}
		if r.from.Less(e.from) {
			out = append(out, addrRange{r.from, e.from.Prev()})
		}
		if e.to.Less(r.to) {
			out = append(out, addrRange{e.to.Next(), r.to})
		}
	}
	return out
}

// mergeRanges sorts ranges and joins overlapping and adjacent ones: an
// nftables interval set refuses overlapping elements.
func mergeRanges(rs []addrRange) []addrRange {
	if len(rs) == 0 {
		return nil
	}
	s := append([]addrRange(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].from.Less(s[j].from) })
	out := []addrRange{s[0]}
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		next := last.to.Next() // invalid (zero) when last.to is the family's last address
		if !next.IsValid() || !next.Less(r.from) {
			if last.to.Less(r.to) {
				last.to = r.to
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// peerRanges turns a CIDR with its excepts into disjoint ranges.
func peerRanges(cidr string, except []string) ([]addrRange, error) {
	p, err := parsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("cidr %q: %w", cidr, err)
	}
	rs := []addrRange{prefixRange(p)}
	for _, x := range except {
		xp, err := parsePrefix(x)
		if err != nil {
			return nil, fmt.Errorf("except %q: %w", x, err)
		}
		if xp.Addr().BitLen() != p.Addr().BitLen() || !p.Contains(xp.Addr()) || xp.Bits() < p.Bits() {
			return nil, fmt.Errorf("except %q lies outside cidr %q", x, cidr)
		}
		rs = subtract(rs, prefixRange(xp))
	}
	return rs, nil
}

// intervalElements encodes disjoint sorted ranges the way nft(8) does for an
// interval set: a start key per range, an interval-end key one past its last
// address (omitted at the family's top), and a leading end marker at the
// zero address when the first range does not start there.
type intervalElem struct {
	key []byte
	end bool
}

func intervalElements(rs []addrRange) []intervalElem {
	if len(rs) == 0 {
		return nil
	}
	var out []intervalElem
	zero := netip.IPv4Unspecified()
	if rs[0].from.Is6() {
		zero = netip.IPv6Unspecified()
	}
	if rs[0].from != zero {
		out = append(out, intervalElem{key: zero.AsSlice(), end: true})
	}
	for _, r := range rs {
		out = append(out, intervalElem{key: r.from.AsSlice()})
		if next := r.to.Next(); next.IsValid() {
			out = append(out, intervalElem{key: next.AsSlice(), end: true})
		}
	}
	return out
}
