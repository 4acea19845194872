package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// ClientVerb is the first argument that makes the lab binary act as the
// agent's client (see ClientMain).
const ClientVerb = "lab-client"

// clientTimeout bounds every client operation: a denial must come back as
// an error long before it.
const clientTimeout = 5 * time.Second

// Result is what one client operation reports, as JSON on stdout.
type Result struct {
	OK    bool     `json:"ok"`
	Data  string   `json:"data,omitempty"`
	Rcode string   `json:"rcode,omitempty"`
	Addrs []string `json:"addrs,omitempty"`
	TTLs  []uint32 `json:"ttls,omitempty"`
	// Truncated is a DNS answer's TC bit.
	Truncated bool   `json:"truncated,omitempty"`
	Err       string `json:"err,omitempty"`
	// Errno names the errno behind Err (ECONNREFUSED, EHOSTUNREACH,
	// EPERM, ...), or TIMEOUT when the operation timed out.
	Errno string `json:"errno,omitempty"`
	Ms    int64  `json:"ms"`
}

// Refused reports an immediate denial: a reset, an ICMP unreachable or a
// refused operation, not a timeout.
func (r Result) Refused() bool {
	switch r.Errno {
	case "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EACCES", "EPERM", "ECONNRESET":
		return true
	}
	return false
}

// ClientMain runs one client operation (args after ClientVerb) and prints
// its Result. Operations:
//
//	dns SERVER:PORT NAME A|AAAA [tcp]   query a resolver
//	tcp ADDR:PORT                       connect and read a line
//	udp ADDR:PORT                       send a datagram, wait for the echo
//	raw                                 open raw IP and packet sockets
//	nft-flush                           flush the namespace's nftables ruleset
//	exec CMD ARGS...                    run a command, report its exit
func ClientMain(args []string) int {
	start := time.Now()
	var r Result
	if len(args) == 0 {
		r.Err = "no operation"
	} else {
		r = run(args[0], args[1:])
	}
	r.Ms = time.Since(start).Milliseconds()
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	return 0
}

func run(op string, a []string) Result {
	switch op {
	case "dns":
		if len(a) < 3 {
			return Result{Err: "usage: dns SERVER NAME TYPE [tcp]"}
		}
		return query(a[0], a[1], a[2], len(a) > 3 && a[3] == "tcp")
	case "tcp":
		return dialTCP(a[0])
	case "udp":
		return dialUDP(a[0])
	case "raw":
		return rawSockets()
	case "nft-flush":
		return nftFlush()
	case "exec":
		out, err := exec.Command(a[0], a[1:]...).CombinedOutput()
		r := Result{OK: err == nil, Data: string(out)}
		if err != nil {
			r.Err = err.Error()
		}
		return r
	}
	return Result{Err: "unknown operation " + op}
}

func fail(err error) Result {
	return Result{Err: err.Error(), Errno: errnoName(err)}
}

func errnoName(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "TIMEOUT"
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return "TIMEOUT"
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
		return fmt.Sprintf("errno%d", int(en))
	}
	return ""
}

func query(server, name, qtype string, tcp bool) Result {
	t, ok := dns.StringToType[strings.ToUpper(qtype)]
	if !ok {
		return Result{Err: "bad type " + qtype}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	c := &dns.Client{Net: "udp", Timeout: clientTimeout}
	if tcp {
		c.Net = "tcp"
	}
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		return fail(err)
	}
	r := Result{OK: resp.Rcode == dns.RcodeSuccess, Rcode: dns.RcodeToString[resp.Rcode], Truncated: resp.Truncated}
	for _, rr := range resp.Answer {
		switch v := rr.(type) {
		case *dns.A:
			r.Addrs = append(r.Addrs, v.A.String())
			r.TTLs = append(r.TTLs, v.Hdr.Ttl)
		case *dns.AAAA:
			r.Addrs = append(r.Addrs, v.AAAA.String())
			r.TTLs = append(r.TTLs, v.Hdr.Ttl)
		case *dns.CNAME:
			r.Data += "CNAME " + strings.TrimSuffix(v.Target, ".") + " "
		}
	}
	return r
}

func dialTCP(addr string) Result {
	c, err := net.DialTimeout("tcp", addr, clientTimeout)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(clientTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fail(err)
	}
	return Result{OK: true, Data: strings.TrimSpace(line)}
}

func dialUDP(addr string) Result {
	c, err := net.DialTimeout("udp", addr, clientTimeout)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(clientTimeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		return fail(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return fail(err)
	}
	return Result{OK: true, Data: string(buf[:n])}
}

// rawSockets tries the sockets that would bypass the filter; OK means one
// of them opened.
func rawSockets() Result {
	var errs []string
	var last error
	for _, s := range []struct {
		name           string
		dom, typ, prot int
	}{
		{"inet raw", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW},
		{"inet6 raw", unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW},
		{"packet", unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL))},
	} {
		fd, err := unix.Socket(s.dom, s.typ, s.prot)
		if err == nil {
			unix.Close(fd)
			return Result{OK: true, Data: s.name + " socket opened"}
		}
		last = err
		errs = append(errs, s.name+": "+err.Error())
	}
	return Result{Err: strings.Join(errs, "; "), Errno: errnoName(last)}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// nftFlush tries what `nft flush ruleset` does, over netlink (no nft(8)
// needed inside a container); OK means the ruleset was flushed.
func nftFlush() Result {
	c, err := nftables.New()
	if err != nil {
		return fail(err)
	}
	c.FlushRuleset()
	if err := c.Flush(); err != nil {
		return fail(err)
	}
	return Result{OK: true, Data: "ruleset flushed"}
}

// ClientIn is Client for a namespace given by path (a container's, which
// `ip netns exec` cannot name), through nsenter.
func (l *Lab) ClientIn(ctx context.Context, netnsPath string, wrap []string, op ...string) (Result, error) {
	args := append(append(append([]string{"--net=" + netnsPath, "--"}, wrap...), l.Bin, ClientVerb), op...)
	ctx, cancel := context.WithTimeout(ctx, 3*clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	return ParseResult(out, err, op)
}

// ParseResult reads the Result a client printed last.
func ParseResult(out []byte, err error, op []string) (Result, error) {
	var r Result
	if jerr := json.Unmarshal([]byte(lastLine(string(out))), &r); jerr != nil {
		return Result{}, fmt.Errorf("client %v: %v: %s", op, err, out)
	}
	return r, nil
}

// Client runs one client operation inside namespace ns with the given
// privilege wrapper (e.g. NoNetCaps) and parses its Result.
func (l *Lab) Client(ctx context.Context, ns string, wrap []string, op ...string) (Result, error) {
	args := append(append(append([]string(nil), wrap...), l.Bin, ClientVerb), op...)
	ctx, cancel := context.WithTimeout(ctx, 3*clientTimeout)
	defer cancel()
	out, err := Exec(ctx, ns, args...)
	var r Result
	line := lastLine(string(out))
	if jerr := json.Unmarshal([]byte(line), &r); jerr != nil {
		return Result{}, fmt.Errorf("client %v in %s: %v: %s", op, ns, err, out)
	}
	return r, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// Privilege wrappers for clients (util-linux setpriv).
var (
	// NoNetCaps is root without CAP_NET_ADMIN and CAP_NET_RAW, as the
	// runtime leaves an agent under a network policy.
	NoNetCaps = []string{"setpriv", "--bounding-set=-net_admin,-net_raw", "--inh-caps=-net_admin,-net_raw", "--"}
	// Nobody is an unprivileged user with no capabilities at all.
	Nobody = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--bounding-set=-all", "--inh-caps=-all", "--"}
)
