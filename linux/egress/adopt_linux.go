package egress

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/phasemark"
)

// A gate can be started from sockets another process made: the runtime
// binds the gate's DNS listeners and its nflog socket in the namespace
// (GateSockets), programs the table, and hands the sockets to the process
// that will serve them (Config.Launch), which reports ready at once.
// Queries and logged packets wait in the sockets until that process reads
// them. The container's policy monitor uses this to start as a small C
// program and exec its Go stage only when there is work (a query, a
// logged packet): see docs/design/enforcement.md, "The monitor's C
// stage".

// AdoptEnv carries an Adoption to the process that serves the gate.
const AdoptEnv = "MXC_GATE_ADOPT"

// Adoption is what the serving process is told: the instruction (serve
// the gate of GateDir, or watch the pod's gate) and, to serve, the numbers
// of the descriptors it inherited (-1: none).
type Adoption struct {
	Op        string `json:"op"`
	GateDir   string `json:"gateDir"`
	Container string `json:"container"`
	NetNSPath string `json:"netnsPath"`
	UDP4      int    `json:"udp4"`
	TCP4      int    `json:"tcp4"`
	UDP6      int    `json:"udp6"`
	TCP6      int    `json:"tcp6"`
	NFLog     int    `json:"nflog"`
}

// Serves reports whether the adoption is of a gate to serve (else the
// process watches the gate another one serves).
func (a *Adoption) Serves() bool { return a.Op == opServe }

// Env is the environment entry that carries a.
func (a *Adoption) Env() string {
	b, _ := json.Marshal(a)
	return AdoptEnv + "=" + string(b)
}

// AdoptionFromEnv reads (and removes) AdoptEnv; nil without one.
func AdoptionFromEnv() (*Adoption, error) {
	v, ok := os.LookupEnv(AdoptEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(AdoptEnv)
	var a Adoption
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return nil, fmt.Errorf("%s: %w", AdoptEnv, err)
	}
	if a.Op != opServe && a.Op != opWatch {
		return nil, fmt.Errorf("%s: unknown op %q", AdoptEnv, a.Op)
	}
	if a.Serves() && (a.UDP4 < 3 || a.TCP4 < 3 || a.NFLog < 3) {
		return nil, fmt.Errorf("%s: a gate to serve needs its IPv4 listeners and its nflog socket", AdoptEnv)
	}
	return &a, nil
}

// GateSockets are a gate's sockets, made in its namespace by the caller
// of Setup (Config.Launch gets them).
type GateSockets struct {
	UDP4, TCP4 *os.File
	// UDP6 and TCP6 are nil when ::1 could not be bound (IPv6 off in the
	// namespace); the serving process retries in the background.
	UDP6, TCP6 *os.File
	NFLog      *os.File
}

// GateLaunch is what Config.Launch starts a process with: the adoption
// (fd numbers not yet filled in) and the sockets (nil to watch).
type GateLaunch struct {
	Adoption Adoption
	Sockets  *GateSockets
}

// ExtraFiles returns the sockets as exec.Cmd.ExtraFiles entries from
// position first (fd 3+first in the child) on, and fills in the
// adoption's fd numbers.
func (l *GateLaunch) ExtraFiles(first int) []*os.File {
	a := &l.Adoption
	a.UDP4, a.TCP4, a.UDP6, a.TCP6, a.NFLog = -1, -1, -1, -1, -1
	s := l.Sockets
	if s == nil {
		return nil
	}
	var files []*os.File
	add := func(f *os.File, fd *int) {
		if f != nil {
			*fd = 3 + first + len(files)
			files = append(files, f)
		}
	}
	add(s.UDP4, &a.UDP4)
	add(s.TCP4, &a.TCP4)
	add(s.UDP6, &a.UDP6)
	add(s.TCP6, &a.TCP6)
	add(s.NFLog, &a.NFLog)
	return files
}

// WakeFDs lists the adoption's descriptors, for the monitor's C stage
// (a comma-separated list).
func (a *Adoption) WakeFDs() string {
	out := ""
	for _, fd := range []int{a.UDP4, a.TCP4, a.UDP6, a.TCP6, a.NFLog} {
		if fd >= 0 {
			if out != "" {
				out += ","
			}
			out += strconv.Itoa(fd)
		}
	}
	return out
}

// Close closes the caller's copies.
func (s *GateSockets) Close() {
	if s == nil {
		return
	}
	for _, f := range []*os.File{s.UDP4, s.TCP4, s.UDP6, s.TCP6, s.NFLog} {
		if f != nil {
			f.Close()
		}
	}
}

// openGateSockets binds the gate's listeners on port (127.0.0.1 must
// bind; ::1 may be missing) and its nflog socket, all in the namespace
// nsfd, as prepareGate would.
func openGateSockets(nsfd, port int) (_ *GateSockets, err error) {
	s := &GateSockets{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	pair := func(addr string) (*os.File, *os.File, error) {
		pc, ln, err := bindDNS(addr, port)
		if err != nil {
			return nil, nil, err
		}
		defer pc.Close()
		defer ln.Close()
		u, err := pc.(*net.UDPConn).File()
		if err != nil {
			return nil, nil, err
		}
		t, err := ln.(*net.TCPListener).File()
		if err != nil {
			u.Close()
			return nil, nil, err
		}
		return u, t, nil
	}
	if err := inNetNS(nsfd, func() error {
		var err error
		s.UDP4, s.TCP4, err = pair("127.0.0.1")
		if err != nil {
			return fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
		}
		// ::1 is missing when IPv6 is disabled in the namespace.
		s.UDP6, s.TCP6, _ = pair("::1")
		return nil
	}); err != nil {
		return nil, err
	}
	phasemark.Mark("egress: dns sockets bound")
	if s.NFLog, err = dialNFLogFile(nsfd, NFLogGroup); err != nil {
		return nil, err
	}
	return s, nil
}

// adoptedSockets are a serving process's inherited sockets (fd numbers
// from its Adoption).
type adoptedSockets struct{ udp4, tcp4, udp6, tcp6, nflog int }

func (a *Adoption) sockets() *adoptedSockets {
	return &adoptedSockets{a.UDP4, a.TCP4, a.UDP6, a.TCP6, a.NFLog}
}

func (s *adoptedSockets) close() {
	if s == nil {
		return
	}
	for _, fd := range []*int{&s.udp4, &s.tcp4, &s.udp6, &s.tcp6, &s.nflog} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// adopt serves the inherited sockets; they are the gate's from then on
// (or closed, on error).
func (g *gate) adopt(s *adoptedSockets) error {
	defer s.close()
	pair := func(u, t *int) error {
		uf, tf := os.NewFile(uintptr(*u), "udp"), os.NewFile(uintptr(*t), "tcp")
		*u, *t = -1, -1
		defer uf.Close()
		defer tf.Close()
		pc, err := net.FilePacketConn(uf)
		if err != nil {
			return err
		}
		ln, err := net.FileListener(tf)
		if err != nil {
			pc.Close()
			return err
		}
		return g.addServers(pc, ln)
	}
	if err := pair(&s.udp4, &s.tcp4); err != nil {
		return fmt.Errorf("adopt the gate's IPv4 listeners: %w", err)
	}
	if s.udp6 >= 0 && s.tcp6 >= 0 {
		if err := pair(&s.udp6, &s.tcp6); err != nil {
			return fmt.Errorf("adopt the gate's IPv6 listeners: %w", err)
		}
	} else {
		g.wg.Add(1)
		go g.retryListen6()
	}
	if s.nflog < 0 {
		return errors.New("adopt the gate: no nflog socket")
	}
	l, err := newNFLog(s.nflog)
	s.nflog = -1
	if err != nil {
		return err
	}
	g.log = l
	return nil
}
