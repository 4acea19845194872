package egress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/oomguard"
	"mxc.dev/mxc/linux/netlo"
	"mxc.dev/mxc/spec"
)

// GateVerb is the hidden mxc-runtime verb that runs the DNS gate; Setup
// starts Config.Exe with it.
const GateVerb = "egress-gate"

// gateConfig is the gate's configuration file, written by Setup into the
// namespace's gate directory.
type gateConfig struct {
	// Key is the namespace's identity; the gate refuses another namespace.
	Key       string        `json:"key"`
	NetNSPath string        `json:"netnsPath"`
	Mode      spec.Mode     `json:"mode,omitempty"`
	Network   *spec.Network `json:"network,omitempty"`
	HostAddrs []netip.Addr  `json:"hostAddrs,omitempty"`
	Upstreams []string      `json:"upstreams"`
	MinTTL    uint32        `json:"minTTL"`
	MaxTTL    uint32        `json:"maxTTL"`
	// RefsDir holds one ref file per container using the namespace; the
	// gate writes audit events to each of their logs (re-read on SIGHUP).
	RefsDir string `json:"refsDir"`
	Port    int    `json:"port"`
}

func (gc *gateConfig) policy() *spec.AgentPolicy {
	return &spec.AgentPolicy{Mode: gc.Mode, Network: gc.Network}
}

// ref is one container's claim on a namespace's gate.
type ref struct {
	Container string `json:"container"`
	Agent     string `json:"agent,omitempty"`
	AuditPath string `json:"auditPath,omitempty"`
	// NetNSPath names the namespace through this container (a restarted
	// gate needs a path that still works).
	NetNSPath string `json:"netnsPath,omitempty"`
	// Keeper: the container has a helper that serves or takes over the
	// gate (Config.Host).
	Keeper bool `json:"keeper,omitempty"`
}

// Grace added to every element's lifetime: the client receives the answer
// (and starts its cache clock) a moment after the element was added.
const elementGrace = 2 * time.Second

// upstreamTimeout bounds one upstream exchange.
const upstreamTimeout = 4 * time.Second

// maxCNAMEChase bounds how many CNAME hops the gate resolves itself when an
// upstream answer stops at a CNAME.
const maxCNAMEChase = 8

// GateOptions are the gate's command line.
type GateOptions struct {
	// ConfigPath is the gate.json Setup wrote (the gate serves at once).
	ConfigPath string
	// Cmd, instead of ConfigPath: the gate is a host (see Keeper) that
	// waits for Setup's instruction on this fd.
	Cmd *os.File
	// Ready, when set, receives "ok" (or the startup error) once the
	// listeners are bound, and is then closed.
	Ready *os.File
	// Lifeline, when set, ends the gate when it reads EOF: its owner (a
	// sandbox) is gone.
	Lifeline *os.File
}

// GateMain runs the gate from a command line (`egress-gate --cmd-fd N
// --ready-fd N [--lifeline-fd N]`, as Setup starts it, or `egress-gate
// --config PATH [--ready-fd N]`) and returns the exit status; the
// mxc-runtime verb and test binaries use it.
func GateMain(args []string) int {
	helperheap.Start()
	oomguard.Protect()
	var opt GateOptions
	fd := func(s string) (*os.File, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad fd %q", s)
		}
		return os.NewFile(uintptr(n), "fd"+s), nil
	}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		var err error
		switch name {
		case "config":
			opt.ConfigPath = val
		case "cmd-fd":
			opt.Cmd, err = fd(val)
		case "ready-fd":
			opt.Ready, err = fd(val)
		case "lifeline-fd":
			opt.Lifeline, err = fd(val)
		default:
			err = fmt.Errorf("unknown flag %q", args[i])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "egress-gate:", err)
			return 2
		}
	}
	if (opt.ConfigPath == "") == (opt.Cmd == nil) {
		fmt.Fprintln(os.Stderr, "egress-gate: one of --config or --cmd-fd is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	var err error
	if opt.Cmd != nil {
		if opt.Ready == nil {
			fmt.Fprintln(os.Stderr, "egress-gate: --cmd-fd needs --ready-fd")
			return 2
		}
		err = NewKeeper(KeepOptions{Cmd: opt.Cmd, Ready: opt.Ready, Lifeline: opt.Lifeline}).Run(ctx)
	} else {
		err = RunGate(ctx, opt)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "egress-gate:", err)
		return 1
	}
	return 0
}

// RunGate runs the DNS gate of one network namespace until ctx ends. Its
// sockets (DNS listeners on the namespace's loopback, the nflog socket, the
// nftables socket) are created inside the namespace; the process itself
// stays in its own namespace, where it reaches the upstream resolvers.
func RunGate(ctx context.Context, opt GateOptions) (err error) {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix(fmt.Sprintf("egress-gate[%d] ", os.Getpid()))
	// SIGHUP (a container joined or left) may come as soon as Setup saw us
	// ready: catch it before saying so, or its default action kills us.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	defer signal.Stop(hup)
	g, err := startGate(opt.ConfigPath)
	if opt.Ready != nil {
		msg := "ok\n"
		if err != nil {
			msg = "error: " + err.Error() + "\n"
		}
		_, _ = opt.Ready.WriteString(msg)
		_ = opt.Ready.Close()
	}
	if err != nil {
		return err
	}
	orphaned := make(chan struct{})
	if opt.Lifeline != nil {
		go func() {
			_, _ = io.Copy(io.Discard, opt.Lifeline)
			close(orphaned)
		}()
	}
	err = g.run(ctx, hup, orphaned)
	if errors.Is(err, errOrphaned) {
		// The sandbox that owned the namespace is gone without a
		// Teardown: remove our own state and leave.
		_ = os.RemoveAll(filepath.Dir(opt.ConfigPath))
		return nil
	}
	return err
}

var errOrphaned = errors.New("owner gone")

// run serves until ctx ends (nil), orphaned closes (errOrphaned) or the
// gate fails (its error); the gate is closed when it returns.
func (g *gate) run(ctx context.Context, hup <-chan os.Signal, orphaned <-chan struct{}) error {
	defer g.close()
	log.Printf("serving namespace %s (%s) on port %d, upstreams %v", g.cfg.Key, g.cfg.NetNSPath, g.cfg.Port, g.cfg.Upstreams)
	g.emitAll(audit.KindGateError, "", map[string]string{"event": "started", "pid": strconv.Itoa(os.Getpid())})
	for {
		select {
		case <-ctx.Done():
			log.Printf("stopping")
			return nil
		case <-orphaned:
			log.Printf("owner gone: stopping")
			return errOrphaned
		case <-hup:
			g.loadRefs()
		case err := <-g.fatal:
			g.emitAll(audit.KindGateError, "", map[string]string{"event": "failed", "error": err.Error()})
			return err
		}
	}
}

type gate struct {
	cfg       gateConfig
	pl        *plan
	nsfd      int
	minTTL    uint32
	maxTTL    uint32
	sets      *setWriter
	servers   []*dns.Server
	active    bool // servers are being served (activate)
	log       *nflog
	fatal     chan error
	upstreams []string

	poolMu   sync.Mutex
	pools    map[string]*connPool
	inflight chan struct{}

	mu        sync.Mutex
	refsMtime time.Time
	writers   map[string]*audit.Writer
	names     map[netip.Addr]string // last name answered with an address, for net.deny details
	dnsRate   *limiter
	netRate   *limiter
	logRate   *limiter
	wg        sync.WaitGroup
}

// startGate prepares and activates the gate of configPath.
func startGate(configPath string) (*gate, error) {
	g, err := prepareGate(configPath, nil)
	if err != nil {
		return nil, err
	}
	if err := g.activate(); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// prepareGate does all of the gate's start-up that does not need the
// namespace's table yet (Setup programs it meanwhile): configuration, the
// sockets in the namespace (bound, not served), the set writer, the log.
// With socks (an adopted gate: see GateSockets), the sockets are those.
func prepareGate(configPath string, socks *adoptedSockets) (*gate, error) {
	b, err := os.ReadFile(configPath)
	if err != nil {
		socks.close()
		return nil, fmt.Errorf("read config: %w", err)
	}
	g := &gate{nsfd: -1, fatal: make(chan error, 4), writers: map[string]*audit.Writer{}, names: map[netip.Addr]string{},
		dnsRate: newLimiter(50, 200), netRate: newLimiter(50, 200), logRate: newLimiter(1, 10),
		inflight: make(chan struct{}, maxInflight)}
	ok := false
	defer func() {
		if !ok {
			socks.close()
			g.close()
		}
	}()
	if err := json.Unmarshal(b, &g.cfg); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", configPath, err)
	}
	if g.pl, err = compile(g.cfg.policy(), g.cfg.HostAddrs); err != nil {
		return nil, err
	}
	if g.minTTL, g.maxTTL, err = ttlBounds(g.cfg.MinTTL, g.cfg.MaxTTL); err != nil {
		return nil, err
	}
	if len(g.cfg.Upstreams) == 0 && g.pl.resolves() {
		return nil, errors.New("no upstream resolver")
	}
	g.upstreams = g.cfg.Upstreams
	if g.cfg.Port == 0 {
		g.cfg.Port = GatePort
	}
	fd, key, err := openNetNS(g.cfg.NetNSPath)
	if err != nil {
		return nil, err
	}
	g.nsfd = fd
	if key.String() != g.cfg.Key {
		return nil, fmt.Errorf("network namespace %s is %s, not %s: the namespace went away", g.cfg.NetNSPath, key, g.cfg.Key)
	}
	if g.sets, err = newSetWriter(fd); err != nil {
		return nil, err
	}
	g.loadRefs()

	if socks != nil {
		if err := g.adopt(socks); err != nil {
			return nil, err
		}
		ok = true
		return g, nil
	}
	// Listeners inside the namespace. IPv4 must bind; ::1 is missing when
	// IPv6 is disabled there (docker's default), and then nothing can send
	// IPv6 DNS either, so a failure is only logged and retried.
	// Both families in one visit to the namespace.
	var err6 error
	if err := inNetNS(fd, func() error {
		err := g.listen("127.0.0.1")
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			// lo is not (fully) up: the runtime brings it up before
			// starting the gate, but another bringing-up may still be
			// adding its addresses. netlo.Up waits for that (or does it).
			if uerr := netlo.Up(); uerr != nil {
				return errors.Join(err, uerr)
			}
			err = g.listen("127.0.0.1")
		}
		if err != nil {
			return err
		}
		err6 = g.listen("::1")
		return nil
	}); err != nil {
		return nil, fmt.Errorf("listen on 127.0.0.1:%d in %s: %w", g.cfg.Port, g.cfg.NetNSPath, err)
	}
	if err6 != nil {
		log.Printf("no IPv6 listener yet (%v); retrying in the background", err6)
		g.wg.Add(1)
		go g.retryListen6()
	}
	if g.log, err = dialNFLog(fd, NFLogGroup); err != nil {
		return nil, err
	}
	ok = true
	return g, nil
}

// activate starts serving, once the namespace's table is in place: the
// gate never serves an unfiltered namespace.
func (g *gate) activate() error {
	g.mu.Lock()
	fd := g.nsfd
	g.mu.Unlock()
	if ok, err := tableExists(fd); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("table inet %s missing in %s: refusing to serve an unfiltered namespace", TableName, g.cfg.NetNSPath)
	}
	g.mu.Lock()
	g.active = true
	for _, s := range g.servers {
		g.serveOn(s)
	}
	g.mu.Unlock()
	g.wg.Add(1)
	go g.readLog()
	return nil
}

// serveOn serves one listener; g.mu is held.
func (g *gate) serveOn(s *dns.Server) {
	go func() {
		if err := s.ActivateAndServe(); err != nil {
			select {
			case g.fatal <- fmt.Errorf("dns server: %w", err):
			default:
			}
		}
	}()
}

var errClosed = errors.New("gate closed")

func (g *gate) retryListen6() {
	defer g.wg.Done()
	for {
		time.Sleep(2 * time.Second)
		g.mu.Lock()
		fd := g.nsfd
		g.mu.Unlock()
		if fd < 0 {
			return
		}
		if err := inNetNS(fd, func() error { return g.listen("::1") }); err == nil {
			log.Printf("IPv6 listener up")
			return
		}
	}
}

// listen binds UDP and TCP on addr:port (in the caller's namespace) and
// serves them.
func (g *gate) listen(addr string) error {
	pc, ln, err := bindDNS(addr, g.cfg.Port)
	if err != nil {
		return err
	}
	return g.addServers(pc, ln)
}

// bindDNS binds UDP and TCP on addr:port in the caller's namespace.
func bindDNS(addr string, port int) (net.PacketConn, net.Listener, error) {
	hp := net.JoinHostPort(addr, strconv.Itoa(port))
	pc, err := net.ListenPacket("udp", hp)
	if err != nil {
		return nil, nil, err
	}
	// Plain TCP: Go's listeners try multipath TCP first, which costs a
	// probe of the kernel's MPTCP support and a socket more in each
	// container's gate start-up (~0.3 ms of CPU), for a loopback listener.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", hp)
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	return pc, ln, nil
}

// addServers makes DNS servers of a bound pair, served once the gate is
// active.
func (g *gate) addServers(pc net.PacketConn, ln net.Listener) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nsfd < 0 {
		pc.Close()
		ln.Close()
		return errClosed
	}
	for _, s := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(g.serveDNS), UDPSize: dns.DefaultMsgSize},
		{Listener: ln, Handler: dns.HandlerFunc(g.serveDNS), ReadTimeout: 10 * time.Second, IdleTimeout: func() time.Duration { return 10 * time.Second }},
	} {
		g.servers = append(g.servers, s)
		if g.active {
			g.serveOn(s)
		}
	}
	return nil
}

func (g *gate) close() {
	g.mu.Lock()
	servers := g.servers
	g.servers = nil
	fd := g.nsfd
	g.nsfd = -1
	active := g.active
	g.mu.Unlock()
	for _, s := range servers {
		// A server not started yet (never activated, or its goroutine
		// not there yet) refuses Shutdown: close its socket instead.
		if !active || s.Shutdown() != nil {
			if s.PacketConn != nil {
				s.PacketConn.Close()
			}
			if s.Listener != nil {
				s.Listener.Close()
			}
		}
	}
	if g.log != nil {
		_ = g.log.Close()
	}
	if g.sets != nil {
		_ = g.sets.Close()
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	g.mu.Lock()
	for _, w := range g.writers {
		_ = w.Close()
	}
	g.writers = map[string]*audit.Writer{}
	g.mu.Unlock()
}

// loadRefs (re)opens one audit writer per container using the namespace.
func (g *gate) loadRefs() {
	var mtime time.Time
	if st, err := os.Stat(g.cfg.RefsDir); err == nil {
		mtime = st.ModTime()
	}
	entries, _ := os.ReadDir(g.cfg.RefsDir)
	want := map[string]ref{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(g.cfg.RefsDir, e.Name()))
		if err != nil {
			continue
		}
		var r ref
		if json.Unmarshal(b, &r) == nil && r.Container != "" && r.AuditPath != "" {
			want[r.Container] = r
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refsMtime = mtime
	for id, w := range g.writers {
		if _, ok := want[id]; !ok {
			_ = w.Close()
			delete(g.writers, id)
		}
	}
	for id, r := range want {
		if _, ok := g.writers[id]; ok {
			continue
		}
		w, err := audit.Open(r.AuditPath, r.Container, r.Agent)
		if err != nil {
			log.Printf("audit log of %s: %v", id, err)
			continue
		}
		g.writers[id] = w
	}
}

// emitAll writes one event to the audit log of every container using the
// namespace: they share its network, so each sees its denials. The refs
// are re-read first when the refs directory changed, so that an event
// after a container's Setup returned always reaches its log (SIGHUP alone
// would race with it).
func (g *gate) emitAll(kind string, mode spec.Mode, detail map[string]string) {
	if st, err := os.Stat(g.cfg.RefsDir); err == nil {
		g.mu.Lock()
		changed := !st.ModTime().Equal(g.refsMtime)
		g.mu.Unlock()
		if changed {
			g.loadRefs()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.writers {
		if err := w.Write(audit.Event{Kind: kind, Mode: string(mode), Detail: detail}); err != nil {
			log.Printf("audit: %v", err)
		}
	}
}

// auditMode is the event's mode field: "audit" when the rule only logged.
func (g *gate) auditMode() spec.Mode {
	if g.pl.mode == spec.ModeAudit {
		return spec.ModeAudit
	}
	return ""
}

// serveDNS answers one query from the namespace.
func (g *gate) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	defer func() {
		if r := recover(); r != nil {
			log.Printf("panic serving %v: %v", req.Question, r)
			g.reply(w, req, refusal(req, dns.RcodeServerFailure))
		}
	}()
	if req.Response || req.Opcode != dns.OpcodeQuery {
		g.reply(w, req, refusal(req, dns.RcodeRefused))
		return
	}
	if len(req.Question) != 1 {
		g.reply(w, req, refusal(req, dns.RcodeFormatError))
		return
	}
	q := req.Question[0]
	name := canonicalName(q.Name)
	qtype := dns.TypeToString[q.Qtype]
	if qtype == "" {
		qtype = strconv.Itoa(int(q.Qtype))
	}
	if q.Qclass != dns.ClassINET {
		g.denyDNS(w, name, qtype, "class "+dns.ClassToString[q.Qclass]+" is not served", true)
		g.reply(w, req, refusal(req, dns.RcodeRefused))
		return
	}
	v := g.pl.decide(name)
	if v.denied {
		g.denyDNS(w, name, qtype, v.reason, !v.answer)
	}
	if !v.answer {
		// Never forwarded: the name's labels do not leave the host.
		g.reply(w, req, refusal(req, dns.RcodeRefused))
		return
	}
	tcp := isTCP(w)
	resp, err := g.forward(req, tcp)
	if err != nil {
		if g.logRate.allow() { // the log lives in /run: no flood
			log.Printf("upstream for %s %s: %v", name, qtype, err)
		}
		g.reply(w, req, refusal(req, dns.RcodeServerFailure))
		return
	}
	if resp.Rcode == dns.RcodeSuccess && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) {
		g.chase(resp, name, q.Qtype, tcp)
	}
	if err := g.learn(resp, name, v); err != nil {
		if g.logRate.allow() {
			log.Printf("%s: %v", name, err)
		}
		g.reply(w, req, refusal(req, dns.RcodeServerFailure))
		return
	}
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype != dns.TypeOPT {
				rr.Header().Ttl = clientTTL(rr.Header().Ttl, g.maxTTL)
			}
		}
	}
	resp.Id = req.Id
	if !tcp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	g.reply(w, req, resp)
}

func isTCP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

func refusal(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	return m
}

func (g *gate) reply(w dns.ResponseWriter, req, m *dns.Msg) {
	if err := w.WriteMsg(m); err != nil {
		log.Printf("reply: %v", err)
	}
}

func (g *gate) denyDNS(w dns.ResponseWriter, name, qtype, reason string, blocked bool) {
	if !g.dnsRate.allow() {
		return
	}
	d := map[string]string{"name": name, "qtype": qtype, "reason": reason}
	if a, ok := w.RemoteAddr().(interface{ String() string }); ok {
		d["client"] = a.String()
	}
	if n := g.dnsRate.takeSuppressed(); n > 0 {
		d["suppressed"] = strconv.Itoa(n)
	}
	mode := spec.Mode("")
	if !blocked {
		mode = spec.ModeAudit
	}
	g.emitAll(audit.KindDNSDeny, mode, d)
}

// forward sends the query to the upstreams in turn, over TCP when the
// client used TCP.
func (g *gate) forward(req *dns.Msg, tcp bool) (*dns.Msg, error) {
	m := req.Copy()
	m.Id = dns.Id()
	return g.exchange(m, tcp)
}

func (g *gate) exchange(m *dns.Msg, tcp bool) (*dns.Msg, error) {
	if len(g.upstreams) == 0 {
		// Only a policy that answers no name has none (plan.resolves).
		return nil, errors.New("no upstream resolver")
	}
	var errs []error
	for _, u := range g.upstreams {
		resp, err := g.exchangeOne(m, u, tcp)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return nil, errors.Join(errs...)
}

// exchangeOne asks one upstream. UDP goes over a small pool of connected
// sockets (a socket per query costs more than the rest of the gate's work);
// each socket serves at most udpConnUses queries, so the source port still
// changes often, and the 16-bit ID is random per query. A truncated UDP
// answer is retried over TCP.
func (g *gate) exchangeOne(m *dns.Msg, upstream string, tcp bool) (*dns.Msg, error) {
	if tcp {
		return exchangeTCP(m, upstream)
	}
	// Each query in flight holds a thread (blocking socket): bound them.
	select {
	case g.inflight <- struct{}{}:
		defer func() { <-g.inflight }()
	case <-time.After(upstreamTimeout):
		return nil, errors.New("too many upstream queries in flight")
	}
	pc := g.udpPool(upstream).get()
	if pc == nil {
		var err error
		if pc, err = dialUpstream(upstream); err != nil {
			return nil, err
		}
	}
	r, err := pc.exchange(m)
	pc.uses++
	if err != nil || pc.uses >= udpConnUses {
		pc.Close()
	} else {
		g.udpPool(upstream).put(pc)
	}
	if err == nil && r.Truncated {
		if r2, err2 := exchangeTCP(m, upstream); err2 == nil {
			r = r2
		}
	}
	return r, err
}

// exchangeTCP asks one upstream over TCP (a TCP query from the agent, or a
// truncated UDP answer), within upstreamTimeout in all.
//
// It dials itself and hands miekg/dns the connection. (*dns.Client).Exchange
// would dial too, but its dialer also speaks DNS over TLS, and that one
// call kept crypto/tls, x509 and their ciphers in the helper binary: 1.2 MB
// of code, most of it resident in every container's monitor.
func exchangeTCP(m *dns.Msg, upstream string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), upstreamTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", upstream)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &dns.Client{Net: "tcp", Timeout: upstreamTimeout}
	r, _, err := c.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn})
	return r, err
}

// pooledConn is a connected UDP socket to one upstream in blocking mode:
// the goroutine's thread sleeps in recv(2) and the kernel wakes it when the
// answer lands, one wake-up instead of the netpoller's two (on a small
// machine that is a good part of the gate's cost per query).
type pooledConn struct {
	fd   int
	uses int
	buf  []byte
}

func dialUpstream(upstream string) (*pooledConn, error) {
	ap, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return nil, err
	}
	var sa unix.Sockaddr
	fam := unix.AF_INET
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		fam = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval(upstreamTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &pooledConn{fd: fd, buf: make([]byte, dns.MaxMsgSize)}, nil
}

func (c *pooledConn) Close() { unix.Close(c.fd) }

// exchange sends m and returns the answer with m's ID; answers to earlier,
// timed-out queries are skipped.
func (c *pooledConn) exchange(m *dns.Msg) (*dns.Msg, error) {
	b, err := m.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := unix.Write(c.fd, b); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(upstreamTimeout)
	for {
		n, err := unix.Read(c.fd, c.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("upstream timeout after %s", upstreamTimeout)
		}
		if err != nil {
			return nil, err
		}
		r := new(dns.Msg)
		if err := r.Unpack(c.buf[:n]); err == nil && r.Id == m.Id {
			return r, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("upstream timeout after %s", upstreamTimeout)
		}
	}
}

// maxInflight bounds the upstream UDP queries in flight at once.
const maxInflight = 64

// udpConnUses bounds the queries one upstream UDP socket carries.
const udpConnUses = 64

type connPool struct{ c chan *pooledConn }

func (p *connPool) get() *pooledConn {
	select {
	case c := <-p.c:
		return c
	default:
		return nil
	}
}

func (p *connPool) put(c *pooledConn) {
	select {
	case p.c <- c:
	default:
		c.Close()
	}
}

func (g *gate) udpPool(upstream string) *connPool {
	g.poolMu.Lock()
	defer g.poolMu.Unlock()
	if g.pools == nil {
		g.pools = map[string]*connPool{}
	}
	p, ok := g.pools[upstream]
	if !ok {
		p = &connPool{c: make(chan *pooledConn, 16)}
		g.pools[upstream] = p
	}
	return p
}

// chase completes an answer that stops at a CNAME: the chain belongs to an
// allowed name, so the gate resolves its target itself (the client would
// otherwise ask for the target, which the policy does not name).
func (g *gate) chase(resp *dns.Msg, qname string, qtype uint16, tcp bool) {
	for i := 0; i < maxCNAMEChase; i++ {
		chain := cnameChain(resp.Answer, qname)
		last := chain[len(chain)-1]
		if len(chain) == 1 || hasType(resp.Answer, last, qtype) {
			return
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(last), qtype)
		m.RecursionDesired = true
		r, err := g.exchange(m, tcp)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return
		}
		resp.Answer = append(resp.Answer, r.Answer...)
	}
}

// cnameChain follows CNAMEs from qname through the answer section and
// returns the names of the chain, qname first. Loops end it.
func cnameChain(ans []dns.RR, qname string) []string {
	chain := []string{qname}
	seen := map[string]bool{qname: true}
	cur := qname
	for {
		next := ""
		for _, rr := range ans {
			if c, ok := rr.(*dns.CNAME); ok && canonicalName(c.Hdr.Name) == cur {
				next = canonicalName(c.Target)
				break
			}
		}
		if next == "" || seen[next] {
			return chain
		}
		seen[next] = true
		chain = append(chain, next)
		cur = next
	}
}

func hasType(ans []dns.RR, name string, t uint16) bool {
	for _, rr := range ans {
		if rr.Header().Rrtype == t && canonicalName(rr.Header().Name) == name {
			return true
		}
	}
	return false
}

// answerAddrs returns the A and AAAA records of the answer that belong to
// qname's CNAME chain, with their TTLs. Records for other owners are
// ignored: an upstream cannot slip in an address for a name nobody asked.
func answerAddrs(ans []dns.RR, qname string) map[netip.Addr]uint32 {
	in := map[string]bool{}
	for _, n := range cnameChain(ans, qname) {
		in[n] = true
	}
	out := map[netip.Addr]uint32{}
	for _, rr := range ans {
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			ip = r.A
		case *dns.AAAA:
			ip = r.AAAA
		default:
			continue
		}
		if !in[canonicalName(rr.Header().Name)] {
			continue
		}
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		if old, ok := out[a]; !ok || rr.Header().Ttl > old {
			out[a] = rr.Header().Ttl
		}
	}
	return out
}

// learn adds the answer's addresses to the name sets of the rules that
// matched the name, before the client sees the answer.
func (g *gate) learn(resp *dns.Msg, name string, v nameVerdict) error {
	addrs := answerAddrs(resp.Answer, name)
	if len(addrs) == 0 {
		return nil
	}
	var items []learnt
	rules := append(append([]*ruleSet(nil), v.allow...), v.deny...)
	for a, ttl := range addrs {
		to := clampTTL(ttl, g.minTTL, g.maxTTL) + elementGrace
		suffix := "n4"
		if a.Is6() {
			suffix = "n6"
		}
		for _, r := range rules {
			items = append(items, learnt{set: r.setName(suffix), addr: a, timeout: to})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].set < items[j].set })
	g.mu.Lock()
	if len(g.names) > 16384 {
		g.names = map[netip.Addr]string{}
	}
	for a := range addrs {
		g.names[a] = name
	}
	g.mu.Unlock()
	if len(items) == 0 {
		return nil
	}
	return g.sets.add(items)
}

// readLog turns logged packets into net.deny events.
func (g *gate) readLog() {
	defer g.wg.Done()
	for {
		pkts, err := g.log.receive()
		if err != nil {
			g.mu.Lock()
			closed := g.nsfd < 0
			g.mu.Unlock()
			if !closed {
				select {
				case g.fatal <- fmt.Errorf("nflog: %w", err):
				default:
				}
			}
			return
		}
		for _, p := range pkts {
			if !g.netRate.allow() {
				continue
			}
			g.emitAll(audit.KindNetDeny, g.auditMode(), g.packetDetail(p))
		}
	}
}

func (g *gate) packetDetail(p loggedPacket) map[string]string {
	d := map[string]string{"proto": protoName(p.proto)}
	switch p.prefix {
	case prefixDenyIn:
		d["direction"], d["reason"] = "ingress", "ingress denied"
		d["src"] = p.src.String()
		d["port"] = strconv.Itoa(int(p.dport))
	default:
		d["direction"] = "egress"
		d["dst"] = p.dst.String()
		if p.proto == 1 || p.proto == 58 {
			d["icmpType"] = strconv.Itoa(int(p.dport))
		} else {
			d["port"] = strconv.Itoa(int(p.dport))
		}
		d["reason"] = "not allowed"
		if p.prefix == prefixDenyRule {
			d["reason"] = "deny rule"
		}
		g.mu.Lock()
		if n, ok := g.names[p.dst]; ok {
			d["name"] = n
		}
		g.mu.Unlock()
	}
	if p.uid != "" {
		d["uid"] = p.uid
	}
	if n := g.netRate.takeSuppressed(); n > 0 {
		d["suppressed"] = strconv.Itoa(n)
	}
	return d
}

// limiter is a token bucket for audit events: a flood of denials must not
// fill the disk. Dropped events are counted and reported with the next one.
type limiter struct {
	mu         sync.Mutex
	rate       float64
	burst      float64
	tokens     float64
	last       time.Time
	suppressed int
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

func (l *limiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens += now.Sub(l.last).Seconds() * l.rate
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false
	}
	l.tokens--
	return true
}

func (l *limiter) takeSuppressed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}
