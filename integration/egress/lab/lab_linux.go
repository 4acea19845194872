package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of the lab (documentation ranges only).
const (
	// Link between the host namespace and the internet.
	HostAddr4 = "192.0.2.1"
	HostAddr6 = "2001:db8:ff:1::1"
	// The upstream DNS server the gate uses, and a rogue resolver that the
	// agent tries to use directly; both live in the internet.
	UpstreamDNS = "203.0.113.53"
	RogueDNS    = "198.51.100.53"
	// Server ports in the internet (every address).
	TCPPort  = 80
	TCPPort2 = 443
	UDPPort  = 7000
)

// ServerAddrs are put on the internet's loopback; the servers answer on
// all of them.
var ServerAddrs = []string{
	"203.0.113.10", "203.0.113.20", "203.0.113.30", "203.0.113.31", "203.0.113.32",
	"203.0.113.40", "203.0.113.41", "203.0.113.50", "203.0.113.60", ManyLast, UpstreamDNS,
	"198.51.100.7", "198.51.100.10", RogueDNS,
	"2001:db8:10::10", "2001:db8:10::20",
}

// Lab is one little internet.
type Lab struct {
	// Prefix starts every namespace and interface name of the lab.
	Prefix string
	// Inet and Host are namespace names (see `ip netns list`).
	Inet, Host string
	// Bin is a copy of the running binary that any user may execute, for
	// clients run with dropped privileges.
	Bin string
	// Upstream and Rogue are the DNS servers.
	Upstream, Rogue *DNSServer

	mu      sync.Mutex
	ctrs    []string
	nextCtr int
	dir     string
	closers []func() error
}

// New builds the lab. The running binary must dispatch ClientVerb to
// ClientMain (see TestMain in the tests).
func New() (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lab needs root")
	}
	for _, tool := range []string{"ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("lab needs %s: %w", tool, err)
		}
	}
	l = &Lab{Prefix: fmt.Sprintf("mxl%d", os.Getpid()%100000)}
	defer func() {
		if err != nil {
			_ = l.Close()
		}
	}()
	l.dir, err = os.MkdirTemp("", "mxc-lab-")
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, func() error { return os.RemoveAll(l.dir) })
	if err := os.Chmod(l.dir, 0o755); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l.Bin = filepath.Join(l.dir, "client")
	if err := copyFile(self, l.Bin, 0o755); err != nil {
		return nil, err
	}

	l.Inet, l.Host = l.Prefix+"-inet", l.Prefix+"-host"
	for _, ns := range []string{l.Inet, l.Host} {
		if err := l.addNS(ns); err != nil {
			return nil, err
		}
	}
	for _, a := range ServerAddrs {
		if err := l.ipIn(l.Inet, "addr", "add", hostPrefix(a), "dev", "lo"); err != nil {
			return nil, err
		}
	}
	if err := l.link(l.Host, l.Prefix+"h", l.Prefix+"hi", 0); err != nil {
		return nil, err
	}
	if err := l.startServers(); err != nil {
		return nil, err
	}
	return l, nil
}

func hostPrefix(a string) string {
	if strings.Contains(a, ":") {
		return a + "/128"
	}
	return a + "/32"
}

func (l *Lab) addNS(ns string) error {
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", ns, err, out)
	}
	l.closers = append(l.closers, func() error {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
		return nil
	})
	return l.ipIn(ns, "link", "set", "lo", "up")
}

// ipIn runs `ip` inside namespace ns.
func (l *Lab) ipIn(ns string, args ...string) error {
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return nil
}

// link joins namespace ns to the internet with a veth pair on link number
// n: ns gets 192.0.2.(4n+1)/30 and 2001:db8:ff:(n+1)::1/64, the internet the
// .2 / ::2 ends, and ns a default route through them.
func (l *Lab) link(ns, inside, outside string, n int) error {
	if out, err := exec.Command("ip", "link", "add", inside, "netns", ns, "type", "veth", "peer", "name", outside, "netns", l.Inet).CombinedOutput(); err != nil {
		return fmt.Errorf("veth %s: %v: %s", inside, err, out)
	}
	a4 := fmt.Sprintf("192.0.2.%d", 4*n+1)
	p4 := fmt.Sprintf("192.0.2.%d", 4*n+2)
	a6 := fmt.Sprintf("2001:db8:ff:%x::1", n+1)
	p6 := fmt.Sprintf("2001:db8:ff:%x::2", n+1)
	for _, c := range [][]string{
		{ns, "addr", "add", a4 + "/30", "dev", inside},
		{ns, "addr", "add", a6 + "/64", "dev", inside, "nodad"},
		{ns, "link", "set", inside, "up"},
		{l.Inet, "addr", "add", p4 + "/30", "dev", outside},
		{l.Inet, "addr", "add", p6 + "/64", "dev", outside, "nodad"},
		{l.Inet, "link", "set", outside, "up"},
		{ns, "route", "add", "default", "via", p4},
		{ns, "-6", "route", "add", "default", "via", p6},
	} {
		if err := l.ipIn(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// nextLink reserves a link number (1..62: 192.0.2.0/24 in /30 blocks).
func (l *Lab) nextLink() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nextCtr >= 62 {
		return 0, errors.New("lab: too many container links")
	}
	l.nextCtr++
	return l.nextCtr, nil
}

// NewContainer makes a container namespace linked to the internet and
// returns its name; Close removes it.
func (l *Lab) NewContainer() (string, error) {
	n, err := l.nextLink()
	if err != nil {
		return "", err
	}
	ns := fmt.Sprintf("%s-c%d", l.Prefix, n)
	if err := l.addNS(ns); err != nil {
		return "", err
	}
	if err := l.link(ns, fmt.Sprintf("%sc%d", l.Prefix, n), fmt.Sprintf("%sci%d", l.Prefix, n), n); err != nil {
		return "", err
	}
	return ns, nil
}

// Link is a veth pair plugged into a namespace the lab did not make (a
// container's, made by the runtime).
type Link struct {
	N       int
	Addr4   string // the namespace's end
	Inside  string // interface names
	Outside string
}

// ReserveLink hands out a link number and its interface names for Attach
// (which may run in another process, a runtime hook).
func (l *Lab) ReserveLink() (Link, error) {
	n, err := l.nextLink()
	if err != nil {
		return Link{}, err
	}
	return Link{N: n, Addr4: ContainerAddr4(n), Inside: fmt.Sprintf("%sa%d", l.Prefix, n), Outside: fmt.Sprintf("%sai%d", l.Prefix, n)}, nil
}

// Attach plugs link lk into the network namespace of process pid (a
// container's init) and links it to the internet namespace inet: the
// namespace gets 192.0.2.(4n+1)/30 and 2001:db8:ff:(n+1)::1/64 and default
// routes through the internet's end, as NewContainer's. Everything is done
// from inside the namespaces involved (the pair is created in the
// internet), so the caller's own namespace is never touched. Removing the
// namespace (its last process exiting) removes the pair.
func Attach(inet string, pid int, lk Link) error {
	nsPath := fmt.Sprintf("/proc/%d/ns/net", pid)
	n := lk.N
	a4 := fmt.Sprintf("192.0.2.%d", 4*n+1)
	p4 := fmt.Sprintf("192.0.2.%d", 4*n+2)
	a6 := fmt.Sprintf("2001:db8:ff:%x::1", n+1)
	p6 := fmt.Sprintf("2001:db8:ff:%x::2", n+1)
	in := func(args ...string) error {
		out, err := exec.Command("nsenter", append([]string{"--net=" + nsPath, "ip"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s in %s: %v: %s", strings.Join(args, " "), nsPath, err, out)
		}
		return nil
	}
	inetIP := func(args ...string) error {
		out, err := exec.Command("ip", append([]string{"-n", inet}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip -n %s %s: %v: %s", inet, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := inetIP("link", "add", lk.Outside, "type", "veth", "peer", "name", lk.Inside, "netns", fmt.Sprint(pid)); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"addr", "add", p4 + "/30", "dev", lk.Outside},
		{"addr", "add", p6 + "/64", "dev", lk.Outside, "nodad"},
		{"link", "set", lk.Outside, "up"},
	} {
		if err := inetIP(c...); err != nil {
			return err
		}
	}
	for _, c := range [][]string{
		{"addr", "add", a4 + "/30", "dev", lk.Inside},
		{"addr", "add", a6 + "/64", "dev", lk.Inside, "nodad"},
		{"link", "set", lk.Inside, "up"},
		{"route", "add", "default", "via", p4},
		{"-6", "route", "add", "default", "via", p6},
	} {
		if err := in(c...); err != nil {
			return err
		}
	}
	return nil
}

// Detach removes a link made by Attach (its internet end; the pair goes
// with it), if it is still there.
func Detach(inet string, lk Link) {
	_ = exec.Command("ip", "-n", inet, "link", "del", lk.Outside).Run()
}

// ContainerAddr4 is the IPv4 address of container link n (1-based).
func ContainerAddr4(n int) string { return fmt.Sprintf("192.0.2.%d", 4*n+1) }

// NetNSPath returns the bind-mount path of a lab namespace.
func NetNSPath(ns string) string { return "/run/netns/" + ns }

// Close stops the servers and removes every namespace, in reverse order.
func (l *Lab) Close() error {
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		if err := l.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	l.closers = nil
	return errors.Join(errs...)
}

// InNetNS runs fn on a thread inside namespace ns (by name), so sockets fn
// creates live there.
func InNetNS(ns string, fn func() error) error {
	fd, err := unix.Open(NetNSPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// startServers runs the TCP, UDP and DNS servers inside the internet.
func (l *Lab) startServers() error {
	var lns []net.Listener
	var pcs []net.PacketConn
	err := InNetNS(l.Inet, func() error {
		for _, port := range []int{TCPPort, TCPPort2} {
			for _, nw := range []string{"tcp4", "tcp6"} {
				ln, err := net.Listen(nw, fmt.Sprintf(":%d", port))
				if err != nil {
					return err
				}
				lns = append(lns, ln)
			}
		}
		// One UDP socket per address: a wildcard socket would answer from
		// the link address, which the client's connected socket ignores.
		for _, a := range ServerAddrs {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(a, fmt.Sprint(UDPPort)))
			if err != nil {
				return err
			}
			pcs = append(pcs, pc)
		}
		return nil
	})
	for _, ln := range lns {
		ln := ln
		l.closers = append(l.closers, func() error { ln.Close(); return nil })
		go serveTCP(ln)
	}
	for _, pc := range pcs {
		pc := pc
		l.closers = append(l.closers, func() error { pc.Close(); return nil })
		go serveUDP(pc)
	}
	if err != nil {
		return fmt.Errorf("lab servers: %w", err)
	}
	if l.Upstream, err = startDNS(l.Inet, UpstreamDNS, Zone(), false); err != nil {
		return err
	}
	l.closers = append(l.closers, l.Upstream.Close)
	if l.Rogue, err = startDNS(l.Inet, RogueDNS, nil, true); err != nil {
		return err
	}
	l.closers = append(l.closers, l.Rogue.Close)
	return nil
}

// serveTCP answers every connection with "hello <local address>\n".
func serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			la := c.LocalAddr().(*net.TCPAddr)
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "hello %s\n", netip.MustParseAddr(la.IP.String()).Unmap())
			// Drain what the client sends (iperf-like writers), up to a bound.
			_, _ = io.CopyN(io.Discard, c, 1<<20)
		}()
	}
}

// serveUDP answers every datagram with "pong " and the datagram.
func serveUDP(pc net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(append([]byte("pong "), buf[:n]...), from)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Exec runs a command inside namespace ns (through `ip netns exec`) and
// returns its combined output.
func Exec(ctx context.Context, ns string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.WaitDelay = 2 * time.Second
	return cmd.CombinedOutput()
}
