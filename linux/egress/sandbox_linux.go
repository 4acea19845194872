package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/procstat"
	"mxc.dev/mxc/spec"
)

// Addresses slirp4netns gives a sandbox (its defaults): the namespace is
// 10.0.2.100 and fd00::100, the gateway 10.0.2.2 and fd00::2, which map to
// the host's loopback unless --disable-host-loopback.
var (
	slirpGateway4 = netip.MustParseAddr("10.0.2.2")
	slirpGateway6 = netip.MustParseAddr("fd00::2")
)

// slirpStartTimeout bounds how long NewSandbox waits for slirp4netns.
const slirpStartTimeout = 10 * time.Second

// Sandbox is a network namespace made for a host command (the `sandbox`
// verb): loopback only when the policy allows no egress at all, else a tap
// device served by slirp4netns, which carries the namespace's traffic
// through ordinary sockets of the host. Either way Setup's table and gate
// enforce the policy inside it.
//
// The namespace is anonymous: it lives while the Sandbox (or a process
// started in it) holds it, so nothing is left in /run/netns if the caller
// dies. slirp4netns and the gate both exit when the caller's process ends.
type Sandbox struct {
	// NetNSPath names the namespace while the Sandbox is open
	// (/proc/<pid>/fd/<n>).
	NetNSPath string
	// Networked is false for a loopback-only namespace.
	Networked bool

	cfg      Config
	nsfd     int
	slirp    pidFile
	slirpEnd *os.File // closing it ends slirp4netns (--exit-fd)
	lifeline *os.File // closing it ends the gate
}

// NewSandbox creates a fresh network namespace for cfg.Policy and applies
// Setup to it. cfg.NetNSPath and cfg.HostAddrs are filled in by NewSandbox;
// cfg.HostNetNSPath, if set, is where slirp4netns (and the gate) run.
// Close tears it all down.
func NewSandbox(ctx context.Context, cfg Config) (_ *Sandbox, err error) {
	if cfg.Policy == nil {
		return nil, errors.New("sandbox network: no policy")
	}
	pl, err := compile(&cfg.Policy.Policy, nil)
	if err != nil {
		return nil, fmt.Errorf("egress policy: %w", err)
	}
	s := &Sandbox{nsfd: -1, cfg: cfg}
	defer func() {
		if err != nil {
			if cerr := s.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
			}
		}
	}()
	if s.nsfd, err = newNetNS(); err != nil {
		return nil, err
	}
	s.NetNSPath = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), s.nsfd)
	if err := loopbackUp(s.nsfd); err != nil {
		return nil, err
	}
	// default deny with an empty allow list: no interface but loopback.
	s.Networked = pl.egressDefault == spec.Allow || len(pl.allow) > 0
	if s.Networked {
		if err := s.startSlirp(pl.hostLoopback == spec.Allow); err != nil {
			return nil, err
		}
		s.cfg.HostAddrs = []netip.Addr{slirpGateway4, slirpGateway6}
	}
	s.cfg.NetNSPath = s.NetNSPath
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.lifeline = w
	s.cfg.lifeline = r
	err = Setup(ctx, s.cfg)
	r.Close()
	s.cfg.lifeline = nil
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newNetNS unshares a network namespace on a throw-away thread and returns
// an fd holding it.
func newNetNS() (int, error) {
	type res struct {
		fd  int
		err error
	}
	c := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it ends with this goroutine, and
		// its namespace with it. No other goroutine ever runs on it.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			c <- res{-1, fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			c <- res{-1, fmt.Errorf("open new network namespace: %w", err)}
			return
		}
		c <- res{fd, nil}
	}()
	r := <-c
	return r.fd, r.err
}

// startSlirp runs slirp4netns for the namespace: MTU 65520 for throughput,
// its own DNS forwarder off (the gate answers DNS), host loopback mapped
// only when the policy allows it, and sandboxed (own mount namespace, caps
// dropped). It returns once the tap device is configured.
func (s *Sandbox) startSlirp(hostLoopback bool) error {
	bin, err := exec.LookPath("slirp4netns")
	if err != nil {
		return fmt.Errorf("sandbox network needs slirp4netns (Debian package slirp4netns): %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return err
	}
	args := []string{"--configure", "--mtu=65520", "--disable-dns", "--enable-ipv6", "--enable-sandbox",
		"--netns-type=path", "--ready-fd=3", "--exit-fd=4"}
	if !hostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	args = append(args, s.NetNSPath, "tap0")
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	// --enable-sandbox makes slirp4netns unshare a mount namespace and
	// pivot away from the host's root; it does not first make its mounts
	// private, so on a host where /run/netns is a shared mount (iproute2
	// makes it one) its unmounts propagate back and detach every named
	// network namespace. Giving it a private mount namespace of its own
	// first (Go's CLONE_NEWNS unshare remounts / MS_REC|MS_PRIVATE) keeps
	// the hardening and confines the unmounts.
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Unshareflags: unix.CLONE_NEWNS}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := cmd.Start
	if s.cfg.HostNetNSPath != "" {
		fd, _, err := openNetNS(s.cfg.HostNetNSPath)
		if err != nil {
			readyW.Close()
			exitR.Close()
			exitW.Close()
			return err
		}
		defer unix.Close(fd)
		start = func() error { return inNetNS(fd, cmd.Start) }
	}
	err = start()
	readyW.Close()
	exitR.Close()
	if err != nil {
		exitW.Close()
		return fmt.Errorf("start slirp4netns: %w", err)
	}
	s.slirpEnd = exitW
	s.slirp = pidFile{Pid: cmd.Process.Pid, Start: procstat.StartTime(cmd.Process.Pid)}
	go func() { _ = cmd.Wait() }() // our child: reap it when it ends

	got := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := io.ReadFull(readyR, b)
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			return fmt.Errorf("slirp4netns failed: %s", strings.TrimSpace(stderr.String()))
		}
	case <-time.After(slirpStartTimeout):
		return fmt.Errorf("slirp4netns not ready within %s", slirpStartTimeout)
	}
	return nil
}

// Start starts cmd inside the sandbox's network namespace (the rest of its
// namespaces are the caller's). The caller drops CAP_NET_ADMIN and
// CAP_NET_RAW in the command, as for any agent under a network policy.
func (s *Sandbox) Start(cmd *exec.Cmd) error {
	if s.nsfd < 0 {
		return errors.New("sandbox network is closed")
	}
	return inNetNS(s.nsfd, cmd.Start)
}

// NetNSFd returns the fd holding the namespace (valid until Close).
func (s *Sandbox) NetNSFd() int { return s.nsfd }

// Close stops the gate, removes the table and state, stops slirp4netns and
// releases the namespace. It is safe to call more than once.
func (s *Sandbox) Close() error {
	var errs []error
	if s.cfg.StateDir != "" && s.cfg.NetNSPath != "" && s.nsfd >= 0 {
		// The namespace goes when nsfd closes below: its table with it.
		s.cfg.keepTable = true
		if err := Teardown(s.cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if s.lifeline != nil {
		s.lifeline.Close()
		s.lifeline = nil
	}
	if s.slirpEnd != nil {
		s.slirpEnd.Close() // slirp4netns exits when its exit fd closes
		s.slirpEnd = nil
		if !waitGone(s.slirp, 3*time.Second) {
			if err := stopProcess(s.slirp, time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if s.nsfd >= 0 {
		unix.Close(s.nsfd)
		s.nsfd = -1
	}
	return errors.Join(errs...)
}
