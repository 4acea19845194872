// Command testdns is the DNS server the client tests run on the host's
// loopback as the upstream of mxc's DNS gate (node config dns.upstreams), so
// that a container's name lookups end at addresses the test itself started
// (web containers and pods on the client's own bridge) and nowhere else.
//
//	testdns -listen 127.0.0.1:0 -records FILE -addr-file FILE -log FILE -timeout 30m
//
// FILE of -records holds "name address" lines (A records, or AAAA for an
// IPv6 address); it is read again whenever it changes, so a test can start
// the server before it knows its destinations' addresses. Names in the file
// are answered, other names under a domain of the file get NXDOMAIN, all
// else REFUSED: the server never recurses. Every question is appended to
// -log ("name qtype" per line) -- the tests check that a name the policy
// denies never reached it. UDP and TCP share the port; -addr-file receives
// "ip:port" once both listen. It exits on SIGTERM/SIGINT or after -timeout.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "UDP and TCP address to serve on (port 0: any free port)")
	records := flag.String("records", "", `file of "name address" lines, re-read when it changes`)
	addrFile := flag.String("addr-file", "", "write the bound ip:port here once serving")
	logFile := flag.String("log", "", "append every question here")
	ttl := flag.Uint("ttl", 30, "TTL of the answers, seconds")
	timeout := flag.Duration("timeout", 30*time.Minute, "exit after this long")
	flag.Parse()
	if *records == "" {
		fmt.Fprintln(os.Stderr, "testdns: -records is required")
		os.Exit(2)
	}
	if err := run(*listen, *records, *addrFile, *logFile, uint32(*ttl), *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "testdns:", err)
		os.Exit(1)
	}
}

func run(listen, records, addrFile, logFile string, ttl uint32, timeout time.Duration) error {
	h := &handler{records: records, ttl: ttl}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		h.log = f
	}
	pc, ln, err := listenBoth(listen)
	if err != nil {
		return err
	}
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func(s *dns.Server) { errc <- s.ActivateAndServe() }(s)
	}
	if addrFile != "" {
		// written whole, then renamed: a reader never sees half an address
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(pc.LocalAddr().String()+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			return err
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(timeout):
	case err = <-errc:
	}
	for _, s := range servers {
		_ = s.Shutdown()
	}
	return err
}

// listenBoth binds UDP and TCP on one port (port 0: the kernel's pick for
// UDP, then TCP on the same; retried if TCP finds it taken).
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	for try := 0; try < 20; try++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", addr, err)
		}
	}
	return nil, nil, fmt.Errorf("no port free for both udp and tcp on %s", addr)
}

type handler struct {
	records string
	ttl     uint32

	mu    sync.Mutex
	log   *os.File
	stamp string // size+mtime of the records file last read
	zone  map[string][]netip.Addr
	doms  map[string]bool // parent domains of the names: NXDOMAIN below them
}

// load re-reads the records file when its size or mtime changed.
func (h *handler) load() {
	st, err := os.Stat(h.records)
	if err != nil {
		h.zone, h.doms, h.stamp = nil, nil, ""
		return
	}
	stamp := fmt.Sprint(st.Size(), st.ModTime().UnixNano())
	if stamp == h.stamp {
		return
	}
	b, err := os.ReadFile(h.records)
	if err != nil {
		return
	}
	zone, doms := map[string][]netip.Addr{}, map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		name := canon(f[0])
		zone[name] = append(zone[name], a)
		if i := strings.IndexByte(name, '.'); i > 0 {
			doms[name[i+1:]] = true
		}
	}
	h.zone, h.doms, h.stamp = zone, doms, stamp
}

func canon(n string) string { return strings.ToLower(strings.TrimSuffix(n, ".")) }

func (h *handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	defer func() { _ = w.WriteMsg(m) }()
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return
	}
	q := req.Question[0]
	name := canon(q.Name)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.log != nil {
		fmt.Fprintf(h.log, "%s %s\n", name, dns.TypeToString[q.Qtype])
	}
	h.load()
	addrs, ok := h.zone[name]
	if !ok {
		m.Rcode = dns.RcodeRefused
		for d := name; d != ""; {
			if h.doms[d] {
				m.Rcode = dns.RcodeNameError
				break
			}
			i := strings.IndexByte(d, '.')
			if i < 0 {
				break
			}
			d = d[i+1:]
		}
		return
	}
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: dns.Fqdn(name), Class: dns.ClassINET, Ttl: h.ttl}
		switch {
		case a.Is4() && q.Qtype == dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IP(a.AsSlice())})
		case a.Is6() && q.Qtype == dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.IP(a.AsSlice())})
		}
	}
}
