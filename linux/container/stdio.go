//go:build linux

package container

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"

	"github.com/containerd/console"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// stdio wires a process's standard streams: inherited (detached), pipes
// copied to ours (foreground), or a pty handed to --console-socket (detached)
// or relayed to our terminal (foreground).
type stdio struct {
	hostConsole console.Console
	epoller     *console.Epoller
	console     *console.EpollConsole
	consoleC    chan error
	closers     []io.Closer // closed at Close
	postStart   []io.Closer // closed once the process started
	wg          sync.WaitGroup
}

func setupStdio(p *libcontainer.Process, c *libcontainer.Container, tty, detach bool, consoleSocket string) (_ *stdio, retErr error) {
	s := &stdio{}
	if tty {
		p.Stdin, p.Stdout, p.Stderr = nil, nil, nil
		if detach {
			conn, err := net.Dial("unix", consoleSocket)
			if err != nil {
				return nil, fmt.Errorf("connect to --console-socket %s: %w", consoleSocket, err)
			}
			defer func() {
				if retErr != nil {
					conn.Close()
				}
			}()
			f, err := conn.(*net.UnixConn).File()
			if err != nil {
				return nil, err
			}
			s.postStart = append(s.postStart, conn, f)
			p.ConsoleSocket = f
			return s, nil
		}
		if err := s.initHostConsole(); err != nil {
			return nil, err
		}
		parent, child, err := utils.NewSockPair("console")
		if err != nil {
			return nil, err
		}
		p.ConsoleSocket = child
		s.postStart = append(s.postStart, parent, child)
		s.consoleC = make(chan error, 1)
		go func() { s.consoleC <- s.recvConsole(parent) }()
		return s, nil
	}
	if detach {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
		return s, nil
	}
	cfg := c.Config()
	uid, err := cfg.HostRootUID()
	if err != nil {
		return nil, err
	}
	gid, err := cfg.HostRootGID()
	if err != nil {
		return nil, err
	}
	pio, err := p.InitializeIO(uid, gid)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, pio.Stdin, pio.Stdout, pio.Stderr)
	for _, x := range []any{p.Stdin, p.Stdout, p.Stderr} {
		if cl, ok := x.(io.Closer); ok {
			s.postStart = append(s.postStart, cl)
		}
	}
	go func() {
		_, _ = io.Copy(pio.Stdin, os.Stdin)
		_ = pio.Stdin.Close()
	}()
	s.wg.Add(2)
	go s.copy(os.Stdout, pio.Stdout)
	go s.copy(os.Stderr, pio.Stderr)
	return s, nil
}

func (s *stdio) copy(w io.Writer, r io.ReadCloser) {
	defer s.wg.Done()
	_, _ = io.Copy(w, r)
	_ = r.Close()
}

func (s *stdio) initHostConsole() error {
	for _, f := range []*os.File{os.Stderr, os.Stdout, os.Stdin} {
		c, err := console.ConsoleFromFile(f)
		if err == nil {
			s.hostConsole = c
			return nil
		}
		if !errors.Is(err, console.ErrNotAConsole) {
			return fmt.Errorf("get console: %w", err)
		}
	}
	f, err := os.Open("/dev/tty")
	if err != nil {
		return fmt.Errorf("a terminal was requested (process.terminal) but mxc-runtime has none: %w", err)
	}
	c, err := console.ConsoleFromFile(f)
	if err != nil {
		return fmt.Errorf("get console: %w", err)
	}
	s.hostConsole = c
	return nil
}

func (s *stdio) recvConsole(sock *os.File) (retErr error) {
	f, err := utils.RecvFile(sock)
	if err != nil {
		return fmt.Errorf("receive console: %w", err)
	}
	cons, err := console.ConsoleFromFile(f)
	if err != nil {
		return err
	}
	if err := console.ClearONLCR(cons.Fd()); err != nil {
		return err
	}
	ep, err := console.NewEpoller()
	if err != nil {
		return err
	}
	ec, err := ep.Add(cons)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			_ = ec.Close()
		}
	}()
	go func() { _ = ep.Wait() }()
	go func() { _, _ = io.Copy(ec, os.Stdin) }()
	s.wg.Add(1)
	go s.copy(os.Stdout, ec)
	if err := s.hostConsole.SetRaw(); err != nil {
		return fmt.Errorf("set terminal raw: %w", err)
	}
	s.epoller, s.console = ep, ec
	s.closers = []io.Closer{ec}
	return nil
}

func (s *stdio) waitConsole() error {
	if s.consoleC != nil {
		return <-s.consoleC
	}
	return nil
}

func (s *stdio) closePostStart() {
	for _, c := range s.postStart {
		_ = c.Close()
	}
	s.postStart = nil
}

func (s *stdio) Close() { s.close(true) }

// abandon is Close for a create that failed: the container's init still
// holds its ends of the pipes (destroy, which runs after this, kills it),
// so the copies are not waited for; they end at the init's death.
func (s *stdio) abandon() { s.close(false) }

func (s *stdio) close(waitCopies bool) {
	s.closePostStart()
	if s.console != nil && s.epoller != nil {
		_ = s.console.Shutdown(s.epoller.CloseConsole)
	}
	if waitCopies {
		s.wg.Wait()
	}
	for _, c := range s.closers {
		_ = c.Close()
	}
	if s.hostConsole != nil {
		_ = s.hostConsole.Reset()
	}
}

func (s *stdio) resize() {
	if s.console != nil && s.hostConsole != nil {
		_ = s.console.ResizeFrom(s.hostConsole)
	}
}

// signals catches every signal before the container's process starts, so
// none sent to us in between is lost, then forwards them to pid1 and reaps
// children until pid1 exits. mxc-runtime is a subreaper while it runs a
// foreground process.
type signals struct{ ch chan os.Signal }

// interrupts are the signals that end a foreground runtime in practice
// (Ctrl-C, a supervisor's stop, a closed terminal): caught at once, before
// any state exists, so that they go to the container's process instead of
// killing mxc-runtime half-way through a create.
var interrupts = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT}

// catchSignalsAsync catches every signal, the interrupts at once and the
// rest on another goroutine, and returns a function that waits for that
// (and may be called again, from any goroutine). Asking for every signal
// costs 1.3-2 ms here, measured in each foreground `run` and `exec`: per
// signal, the Go runtime hands the mask change to its signal thread and
// waits for it, ~65 thread round trips of waiting rather than CPU; the
// four interrupts take ~0.1 ms of it. Started as soon as the verb knows it
// runs in the foreground, the rest overlaps with reading the spec and the
// policy (and for `run`, the init's start-up); the caller waits for it
// before the container's process starts, so no signal for the container
// is lost. (A signal that comes before then is forwarded once the process
// exists, where before it took its default action on mxc-runtime.) The
// subreaper bit is set at once: it is one system call.
func catchSignalsAsync(subreaper bool) func() *signals {
	if subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			logrus.Warnf("set subreaper: %v", err)
		}
	}
	s := &signals{ch: make(chan os.Signal, 2048)}
	signal.Notify(s.ch, interrupts...)
	ch := make(chan *signals, 1)
	go func() {
		signal.Notify(s.ch)
		ch <- s
	}()
	return sync.OnceValue(func() *signals { return <-ch })
}

func (s *signals) stop() { signal.Stop(s.ch) }

// forward relays signals to p and returns its exit status (as runc: 128+sig
// for a signal death).
func (s *signals) forward(p *libcontainer.Process, io *stdio) (int, error) {
	pid1, err := p.Pid()
	if err != nil {
		return -1, err
	}
	// reap collects exited children; done once pid1 is among them.
	reap := func() (status int, done bool) {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				return 0, false
			}
			if pid == pid1 {
				_, _ = p.Wait()
				return utils.ExitStatus(ws), true
			}
		}
	}
	// pid1 may have exited before the handler caught SIGCHLD (a `run`
	// waits for the handler only after Start): look once first.
	if status, done := reap(); done {
		return status, nil
	}
	io.resize()
	for sig := range s.ch {
		switch sig {
		case unix.SIGWINCH:
			io.resize()
		case unix.SIGCHLD:
			if status, done := reap(); done {
				return status, nil
			}
		case unix.SIGURG:
			// Go's runtime preemption signal: not meant for the container.
		case unix.SIGPIPE:
		default:
			if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
				logrus.Debugf("forward %v to %d: %v", sig, pid1, err)
			}
		}
	}
	return -1, errors.New("signal channel closed")
}
