package lab

import (
	"fmt"
	"hash/fnv"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Record is one record of a test zone.
type Record struct {
	Type  uint16 // dns.TypeA, TypeAAAA or TypeCNAME
	Value string // address or target name
	TTL   uint32
}

// Zone returns the test zones the upstream serves. CNAME chains are
// answered whole, except partial.test, whose answer stops at the CNAME.
func Zone() map[string][]Record {
	return map[string][]Record{
		"allowed.test":      {{dns.TypeA, "203.0.113.10", 60}, {dns.TypeAAAA, "2001:db8:10::10", 60}},
		"denied.test":       {{dns.TypeA, "203.0.113.20", 60}, {dns.TypeAAAA, "2001:db8:10::20", 60}},
		"x.wild.test":       {{dns.TypeA, "203.0.113.30", 60}},
		"a.b.wild.test":     {{dns.TypeA, "203.0.113.31", 60}},
		"wild.test":         {{dns.TypeA, "203.0.113.32", 60}},
		"alias.test":        {{dns.TypeCNAME, "edge.outside.test", 60}},
		"edge.outside.test": {{dns.TypeA, "203.0.113.40", 60}},
		"partial.test":      {{dns.TypeCNAME, "far.outside.test", 60}},
		"far.outside.test":  {{dns.TypeA, "203.0.113.41", 60}},
		"short.test":        {{dns.TypeA, "203.0.113.50", 1}},
		"both.test":         {{dns.TypeA, "203.0.113.60", 60}},
		"v6only.test":       {{dns.TypeAAAA, "2001:db8:10::20", 60}},
		"many.test":         manyRecords(),
	}
}

// ManyLast is the last address of many.test, whose answer (40 A records)
// does not fit the 512 bytes of a plain UDP answer.
const ManyLast = "203.0.113.139"

func manyRecords() []Record {
	var rrs []Record
	for i := 100; i <= 139; i++ {
		rrs = append(rrs, Record{dns.TypeA, fmt.Sprintf("203.0.113.%d", i), 60})
	}
	return rrs
}

// DNSServer is an authoritative-and-recursive-looking test server that
// remembers every name it was asked.
type DNSServer struct {
	Addr string
	// rogue servers answer every A query with 198.51.100.99.
	rogue bool

	mu      sync.Mutex
	zone    map[string][]Record
	queries []string
	servers []*dns.Server
}

func startDNS(ns, addr string, zone map[string][]Record, rogue bool) (*DNSServer, error) {
	s := &DNSServer{Addr: net.JoinHostPort(addr, "53"), zone: zone, rogue: rogue}
	var pc net.PacketConn
	var ln net.Listener
	err := InNetNS(ns, func() error {
		var err error
		if pc, err = net.ListenPacket("udp", s.Addr); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", s.Addr)
		return err
	})
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		return nil, fmt.Errorf("dns server %s: %w", s.Addr, err)
	}
	s.servers = []*dns.Server{
		{PacketConn: pc, Handler: s},
		{Listener: ln, Handler: s},
	}
	for _, srv := range s.servers {
		go func(srv *dns.Server) { _ = srv.ActivateAndServe() }(srv)
	}
	return s, nil
}

// Close stops the server.
func (s *DNSServer) Close() error {
	for _, srv := range s.servers {
		_ = srv.Shutdown()
	}
	return nil
}

// Queries returns every name asked so far (lowercase, no trailing dot).
func (s *DNSServer) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// Saw reports whether the server was ever asked name.
func (s *DNSServer) Saw(name string) bool {
	for _, q := range s.Queries() {
		if q == name {
			return true
		}
	}
	return false
}

// Set replaces the records of name.
func (s *DNSServer) Set(name string, rrs ...Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zone[name] = rrs
}

func (s *DNSServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	s.mu.Lock()
	s.queries = append(s.queries, name)
	defer func() {
		s.mu.Unlock()
		// Over UDP, as a real server does: what does not fit the asker's
		// buffer is cut and the answer marked truncated (TC).
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			size := dns.MinMsgSize
			if o := req.IsEdns0(); o != nil && int(o.UDPSize()) > size {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
	}()
	if s.rogue {
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(q.Name, dns.TypeA, 60), A: net.ParseIP("198.51.100.99")})
		}
		return
	}
	// Any name under synth.test answers with an address derived from the
	// name (198.18.0.0/15, the benchmarking range): a fresh address per
	// name, for benchmarks that add many elements.
	if strings.HasSuffix(name, ".synth.test") && q.Qtype == dns.TypeA {
		h := fnv.New32a()
		h.Write([]byte(name))
		v := h.Sum32()
		ip := net.IPv4(198, 18+byte(v>>16)&1, byte(v>>8), byte(v)|1)
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(name, dns.TypeA, 300), A: ip})
		return
	}
	cur := name
	for hops := 0; hops < 8; hops++ {
		rrs, ok := s.zone[cur]
		if !ok {
			if hops == 0 {
				m.Rcode = dns.RcodeNameError
			}
			return
		}
		next := ""
		for _, r := range rrs {
			switch {
			case r.Type == dns.TypeCNAME:
				m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(cur, dns.TypeCNAME, r.TTL), Target: dns.Fqdn(r.Value)})
				next = r.Value
			case r.Type == q.Qtype && r.Type == dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(cur, dns.TypeA, r.TTL), A: net.ParseIP(r.Value)})
			case r.Type == q.Qtype && r.Type == dns.TypeAAAA:
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(cur, dns.TypeAAAA, r.TTL), AAAA: net.ParseIP(r.Value)})
			}
		}
		if next == "" || name == "partial.test" {
			return
		}
		cur = next
	}
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}
