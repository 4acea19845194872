package egress

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/spec"
)

// TableName is the nftables table (family inet) mxc owns in a network namespace.
const TableName = "mxc"

// Fixed parameters of the table.
const (
	// GatePort is where the DNS gate listens on the namespace's loopback
	// (127.0.0.1 and ::1); every DNS packet is redirected there. Port 53 is
	// avoided so that a container's own local resolver (dnsmasq, a
	// systemd-resolved stub) can still bind it.
	GatePort = 10053
	// NFLogGroup is the nflog group denied packets are logged to; groups are
	// per network namespace, so a fixed number does not collide.
	NFLogGroup = 28024
	// natPriority runs the DNS redirect before docker's own DNAT of
	// 127.0.0.11 (priority -100), so that docker's embedded resolver never
	// sees a query the gate did not vet.
	natPriority = -110
	// logRate and logBurst bound the deny log (packets per second).
	logRate  = 20
	logBurst = 50
	// logSnaplen copies only the headers of a denied packet to the gate.
	logSnaplen = 128
	// dockerDNS is docker's embedded resolver, reachable inside the
	// namespace; only the redirect may talk to it (it would forward
	// anything upstream).
	dockerDNS = "127.0.0.11"
)

// Chain names inside the table.
const (
	chainOutput      = "output"
	chainForward     = "forward"
	chainInput       = "input"
	chainDNS         = "dns"
	chainEgress      = "egress"
	chainDenyRule    = "deny_rule"
	chainDenyDefault = "deny_default"
	chainDenyIn      = "deny_in"
)

// Log prefixes tell the gate why a packet was denied.
const (
	prefixDenyRule    = "mxc deny-rule"
	prefixDenyDefault = "mxc not-allowed"
	prefixDenyIn      = "mxc ingress"
)

const reg = unix.NFT_REG_1

// tableSpec is the whole table as nftables objects, built without I/O.
type tableSpec struct {
	table  *nftables.Table
	sets   []setSpec
	chains []*nftables.Chain
	rules  []*nftables.Rule
}

type setSpec struct {
	set   *nftables.Set
	elems []nftables.SetElement
}

type builder struct {
	ts     *tableSpec
	pl     *plan
	nextID uint32
	chains map[string]*nftables.Chain
}

// buildTable compiles a plan into the table's sets, chains and rules.
func buildTable(pl *plan) *tableSpec {
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	b := &builder{ts: &tableSpec{table: t}, pl: pl, chains: map[string]*nftables.Chain{}}

	enforce := pl.mode == spec.ModeEnforce
	policy := nftables.ChainPolicyAccept
	if enforce {
		// Every path through the chains ends in a verdict; the drop policy
		// only matters if a rule were missing.
		policy = nftables.ChainPolicyDrop
	}
	inPolicy := nftables.ChainPolicyAccept
	if enforce && pl.ingressDefault == spec.Deny {
		inPolicy = nftables.ChainPolicyDrop
	}
	natPolicy := nftables.ChainPolicyAccept
	b.chain(chainEgress, nil, nil, "", nil)
	b.chain(chainDenyRule, nil, nil, "", nil)
	b.chain(chainDenyDefault, nil, nil, "", nil)
	b.chain(chainDenyIn, nil, nil, "", nil)
	b.chain(chainOutput, nftables.ChainHookOutput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter, &policy)
	b.chain(chainForward, nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter, &policy)
	b.chain(chainInput, nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter, &inPolicy)
	b.chain(chainDNS, nftables.ChainHookOutput, nftables.ChainPriorityRef(natPriority), nftables.ChainTypeNAT, &natPolicy)

	// Deny chains: log (rate-limited, so a flood cannot fill the audit log),
	// then reject at once, or accept in audit mode.
	b.denyChain(chainDenyRule, prefixDenyRule, enforce)
	b.denyChain(chainDenyDefault, prefixDenyDefault, enforce)
	b.denyChain(chainDenyIn, prefixDenyIn, enforce)

	// DNS: every query to any address, UDP and TCP, goes to the gate.
	for _, proto := range []uint8{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		b.rule(chainDNS, cat(l4proto(proto), dport(53, 53), redirect(GatePort)))
	}

	// output: established flows first (the only rule most packets meet),
	// docker's resolver only through the redirect, loopback, the gate, and
	// the egress rules.
	b.rule(chainOutput, cat(ctEstablished(), accept()))
	b.rule(chainOutput, cat(nfproto(unix.NFPROTO_IPV4), daddrEq(netip.MustParseAddr(dockerDNS)), jump(chainDenyRule)))
	b.rule(chainOutput, cat(ifname(expr.MetaKeyOIFNAME, "lo"), accept()))
	// Redirected DNS: the hook still sees the interface the packet was
	// routed to before the redirect, so accept the gate's address itself.
	for _, gate := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
		fam := uint8(unix.NFPROTO_IPV4)
		if gate.Is6() {
			fam = unix.NFPROTO_IPV6
		}
		for _, proto := range []uint8{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			b.rule(chainOutput, cat(nfproto(fam), daddrEq(gate), l4proto(proto), dport(GatePort, GatePort), accept()))
		}
	}
	b.rule(chainOutput, cat(jump(chainEgress)))
	// forward: a namespace that routes for others gets the same rules (no
	// DNS redirect there: forwarded DNS is judged by address like the rest).
	b.rule(chainForward, cat(ctEstablished(), accept()))
	b.rule(chainForward, cat(jump(chainEgress)))

	// egress
	b.rule(chainEgress, cat(icmpv6Neighbour(130, 136), accept())) // MLD and neighbour discovery
	b.rule(chainEgress, cat(icmpv6Neighbour(143, 143), accept())) // MLDv2 reports
	host4, host6 := b.hostSets()
	if pl.hostLoopback == spec.Deny {
		b.addrRules(chainEgress, true, host4, host6, nil, jump(chainDenyRule))
	}
	for _, r := range pl.deny {
		b.ruleSetRules(r, jump(chainDenyRule))
	}
	if pl.hostLoopback == spec.Allow {
		b.addrRules(chainEgress, true, host4, host6, nil, accept())
	}
	for _, r := range pl.allow {
		b.ruleSetRules(r, accept())
	}
	if pl.egressDefault == spec.Allow {
		b.rule(chainEgress, accept())
	} else {
		b.rule(chainEgress, jump(chainDenyDefault))
	}

	// input
	b.rule(chainInput, cat(ctEstablished(), accept()))
	b.rule(chainInput, cat(ifname(expr.MetaKeyIIFNAME, "lo"), accept()))
	b.rule(chainInput, cat(icmpv6Neighbour(130, 136), accept()))
	b.rule(chainInput, cat(icmpv6Neighbour(143, 143), accept()))
	if pl.hostLoopback == spec.Deny {
		b.addrRules(chainInput, false, host4, host6, nil, jump(chainDenyIn))
	} else {
		b.addrRules(chainInput, false, host4, host6, nil, accept())
	}
	if pl.ingressDefault == spec.Allow {
		b.rule(chainInput, accept())
	} else {
		b.rule(chainInput, jump(chainDenyIn))
	}
	return b.ts
}

func (b *builder) chain(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType, policy *nftables.ChainPolicy) {
	c := &nftables.Chain{Name: name, Table: b.ts.table, Hooknum: hook, Priority: prio, Type: typ, Policy: policy}
	b.chains[name] = c
	b.ts.chains = append(b.ts.chains, c)
}

func (b *builder) rule(chain string, exprs []expr.Any) {
	b.ts.rules = append(b.ts.rules, &nftables.Rule{Table: b.ts.table, Chain: b.chains[chain], Exprs: exprs})
}

func (b *builder) denyChain(name, prefix string, enforce bool) {
	b.rule(name, []expr.Any{
		&expr.Limit{Type: expr.LimitTypePkts, Rate: logRate, Unit: expr.LimitTimeSecond, Burst: logBurst},
		&expr.Log{
			Key:     1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_SNAPLEN | 1<<unix.NFTA_LOG_QTHRESHOLD,
			Group:   NFLogGroup,
			Snaplen: logSnaplen,
			// Hand each packet to the gate at once instead of batching
			// (the kernel's default waits for 100 packets or 1s).
			QThreshold: 1,
			Data:       []byte(prefix),
		},
	})
	if !enforce {
		b.rule(name, accept())
		return
	}
	// A TCP reset fails connect() with ECONNREFUSED at once; everything
	// else gets ICMP administratively prohibited (EHOSTUNREACH), never a
	// silent drop that the agent would wait out.
	b.rule(name, cat(l4proto(unix.IPPROTO_TCP), []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}))
	b.rule(name, []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: nftRejectICMPXAdminProhibited}})
}

// nftRejectICMPXAdminProhibited is NFT_REJECT_ICMPX_ADMIN_PROHIBITED (not in x/sys).
const nftRejectICMPXAdminProhibited = 3

func (b *builder) newSet(name string, keyType nftables.SetDatatype, interval, timeout bool) *nftables.Set {
	b.nextID++
	return &nftables.Set{
		Table: b.ts.table, ID: b.nextID, Name: name, KeyType: keyType,
		Interval: interval, HasTimeout: timeout,
	}
}

func (b *builder) addSet(s *nftables.Set, elems []nftables.SetElement) *nftables.Set {
	b.ts.sets = append(b.ts.sets, setSpec{set: s, elems: elems})
	return s
}

func (b *builder) hostSets() (*nftables.Set, *nftables.Set) {
	var s4, s6 *nftables.Set
	if len(b.pl.host4) > 0 {
		var els []nftables.SetElement
		for _, a := range b.pl.host4 {
			els = append(els, nftables.SetElement{Key: a.AsSlice()})
		}
		s4 = b.addSet(b.newSet("host4", nftables.TypeIPAddr, false, false), els)
	}
	if len(b.pl.host6) > 0 {
		var els []nftables.SetElement
		for _, a := range b.pl.host6 {
			els = append(els, nftables.SetElement{Key: a.AsSlice()})
		}
		s6 = b.addSet(b.newSet("host6", nftables.TypeIP6Addr, false, false), els)
	}
	return s4, s6
}

func intervalSet(b *builder, name string, keyType nftables.SetDatatype, rs []addrRange) *nftables.Set {
	var els []nftables.SetElement
	for _, e := range intervalElements(rs) {
		els = append(els, nftables.SetElement{Key: e.key, IntervalEnd: e.end})
	}
	return b.addSet(b.newSet(name, keyType, true, false), els)
}

// ruleSetRules emits, for one policy rule, a rule per (address set, port
// selector) that ends in verdict.
func (b *builder) ruleSetRules(r *ruleSet, verdict []expr.Any) {
	var s4, s6 []*nftables.Set
	if len(r.hosts) > 0 {
		s4 = append(s4, b.addSet(b.newSet(r.setName("n4"), nftables.TypeIPAddr, false, true), nil))
		s6 = append(s6, b.addSet(b.newSet(r.setName("n6"), nftables.TypeIP6Addr, false, true), nil))
	}
	if len(r.v4) > 0 {
		s4 = append(s4, intervalSet(b, r.setName("c4"), nftables.TypeIPAddr, r.v4))
	}
	if len(r.v6) > 0 {
		s6 = append(s6, intervalSet(b, r.setName("c6"), nftables.TypeIP6Addr, r.v6))
	}
	if r.anyAddr {
		b.portRules(chainEgress, nil, 0, r.ports, verdict)
		return
	}
	for _, s := range s4 {
		b.portRules(chainEgress, cat(nfproto(unix.NFPROTO_IPV4), lookup(true, true, s)), unix.NFPROTO_IPV4, r.ports, verdict)
	}
	for _, s := range s6 {
		b.portRules(chainEgress, cat(nfproto(unix.NFPROTO_IPV6), lookup(false, true, s)), unix.NFPROTO_IPV6, r.ports, verdict)
	}
}

// addrRules matches destination (dst) or source addresses in the host sets.
func (b *builder) addrRules(chain string, dst bool, s4, s6 *nftables.Set, ports []portSel, verdict []expr.Any) {
	if s4 != nil {
		b.portRules(chain, cat(nfproto(unix.NFPROTO_IPV4), lookup(true, dst, s4)), unix.NFPROTO_IPV4, ports, verdict)
	}
	if s6 != nil {
		b.portRules(chain, cat(nfproto(unix.NFPROTO_IPV6), lookup(false, dst, s6)), unix.NFPROTO_IPV6, ports, verdict)
	}
}

// portRules emits match+port+verdict for each port selector (one rule when
// there are none). family is 0 when the match does not fix one, in which
// case an ICMP selector becomes two rules (ICMP and ICMPv6).
func (b *builder) portRules(chain string, match []expr.Any, family uint8, ports []portSel, verdict []expr.Any) {
	if len(ports) == 0 {
		b.rule(chain, cat(match, verdict))
		return
	}
	for _, p := range ports {
		switch {
		case p.icmp && family == unix.NFPROTO_IPV4:
			b.rule(chain, cat(match, l4proto(unix.IPPROTO_ICMP), verdict))
		case p.icmp && family == unix.NFPROTO_IPV6:
			b.rule(chain, cat(match, l4proto(unix.IPPROTO_ICMPV6), verdict))
		case p.icmp:
			b.rule(chain, cat(match, nfproto(unix.NFPROTO_IPV4), l4proto(unix.IPPROTO_ICMP), verdict))
			b.rule(chain, cat(match, nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), verdict))
		case p.lo == 0 && p.hi == 0:
			b.rule(chain, cat(match, l4proto(p.proto), verdict))
		default:
			b.rule(chain, cat(match, l4proto(p.proto), dport(p.lo, p.hi), verdict))
		}
	}
}

// Expression helpers. Each returns the expressions of one match.

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func accept() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}} }

func jump(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}

func nfproto(p uint8) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{p}},
	}
}

func l4proto(p uint8) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{p}},
	}
}

// dport matches the transport header's destination port (tcp, udp, sctp
// all keep it at offset 2).
func dport(lo, hi uint16) []expr.Any {
	load := &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	if lo == hi {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: be16(lo)}}
	}
	return []expr.Any{load, &expr.Range{Op: expr.CmpOpEq, Register: reg, FromData: be16(lo), ToData: be16(hi)}}
}

// addrLoad loads the IPv4 or IPv6 destination (dst) or source address.
func addrLoad(v4, dst bool) *expr.Payload {
	switch {
	case v4 && dst:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	case v4:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
	case dst:
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}
}

func lookup(v4, dst bool, s *nftables.Set) []expr.Any {
	return []expr.Any{addrLoad(v4, dst), &expr.Lookup{SourceRegister: reg, SetName: s.Name, SetID: s.ID}}
}

func daddrEq(a netip.Addr) []expr.Any {
	return []expr.Any{addrLoad(a.Is4(), true), &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: a.AsSlice()}}
}

func ifname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: b},
	}
}

func ctEstablished() []expr.Any {
	mask := make([]byte, 4)
	binary.NativeEndian.PutUint32(mask, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	return []expr.Any{
		&expr.Ct{Register: reg, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: make([]byte, 4)},
	}
}

// icmpv6Neighbour matches ICMPv6 types lo..hi: neighbour discovery and MLD
// must pass or IPv6 stops working on the link. They never leave the link.
func icmpv6Neighbour(lo, hi uint8) []expr.Any {
	load := &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1}
	m := cat(nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), []expr.Any{load})
	if lo == hi {
		return append(m, &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{lo}})
	}
	return append(m, &expr.Range{Op: expr.CmpOpEq, Register: reg, FromData: []byte{lo}, ToData: []byte{hi}})
}

// redirect sends the packet to port on the namespace's loopback (127.0.0.1
// or ::1, by family).
func redirect(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: reg, Data: be16(port)},
		&expr.Redir{RegisterProtoMin: reg, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED},
	}
}

func be16(v uint16) []byte {
	b := make([]byte, 2)
	binary.BigEndian.PutUint16(b, v)
	return b
}
