package egress

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/internal/procstat"
)

// A gate host is a long-lived helper of a container that runs the
// namespace's gate in its own process instead of a separate `egress-gate`:
// the runtime's policy monitor (linux/enforce), so that one helper per
// container carries both. The runtime starts the helper first and hands
// Setup the runtime's ends of two pipes (GateHost); Setup programs the table
// while the helper starts up, then tells it what to do on Cmd (one JSON
// line) and, when it asked it to serve, waits for its readiness on Ready.
// The helper's side is Keeper.
//
// A keeper either serves the gate ("serve") or, when another process
// already serves the namespace (a second container of a pod), watches that
// process ("watch") and takes the gate over, in-process, when it dies. A
// keeper that serves restarts the gate in-process when it fails. Between a
// failure and the restart the namespace fails closed (the table stays).

// GateHost is the runtime's side of a gate host. Setup and Ensure write to
// Cmd, read Ready, and close both.
type GateHost struct {
	// Pid is the host process (it becomes gate.pid when it serves).
	Pid int
	// Cmd is the write end of the instruction pipe.
	Cmd *os.File
	// Ready is the read end of the readiness pipe.
	Ready *os.File
}

const (
	opServe = "serve"
	opWatch = "watch"
)

// hostInstruction is what Setup or Ensure tell a host.
type hostInstruction struct {
	Op        string `json:"op"`
	GateDir   string `json:"gateDir"`
	Container string `json:"container"`
	NetNSPath string `json:"netnsPath"`
}

func (h *GateHost) close() {
	if h.Cmd != nil {
		h.Cmd.Close()
		h.Cmd = nil
	}
	if h.Ready != nil {
		h.Ready.Close()
		h.Ready = nil
	}
}

// instruct writes the instruction line; Cmd stays open for serve's "go".
func (h *GateHost) instruct(in hostInstruction) error {
	if h.Cmd == nil {
		return errors.New("egress gate host: instructions already given")
	}
	b, _ := json.Marshal(in)
	if _, err := h.Cmd.Write(append(b, '\n')); err != nil {
		if errors.Is(err, unix.EPIPE) {
			return fmt.Errorf("the egress gate (pid %d) exited before it could serve", h.Pid)
		}
		return fmt.Errorf("egress gate host %d: %w", h.Pid, err)
	}
	return nil
}

// tell gives a one-line instruction (watch) and closes Cmd.
func (h *GateHost) tell(in hostInstruction) error {
	err := h.instruct(in)
	if h.Cmd != nil {
		h.Cmd.Close()
		h.Cmd = nil
	}
	return err
}

// serve tells a host that was instructed to serve that the table is in
// place ("go") and waits until it serves. The host prepared its sockets
// meanwhile.
func (h *GateHost) serve(ctx context.Context) (pidFile, error) {
	st, err := procstat.Read(h.Pid)
	if err != nil {
		return pidFile{}, fmt.Errorf("egress gate host %d: %w", h.Pid, err)
	}
	var werr error
	if h.Cmd == nil {
		werr = errors.New("egress gate host: not instructed")
	} else {
		_, werr = h.Cmd.Write([]byte("go\n"))
		h.Cmd.Close()
		h.Cmd = nil
	}
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(h.Ready, 4096))
		done <- strings.TrimSpace(string(b))
	}()
	timer := time.NewTimer(gateStartTimeout)
	defer timer.Stop()
	select {
	case msg := <-done:
		if msg == "ok" && werr == nil {
			return pidFile{Pid: h.Pid, Start: st.Start}, nil
		}
		if msg == "" || msg == "ok" {
			msg = "the helper exited before the gate was ready"
			if werr != nil && !errors.Is(werr, unix.EPIPE) {
				msg = werr.Error()
			}
		}
		return pidFile{}, fmt.Errorf("egress gate: %s", strings.TrimPrefix(msg, "error: "))
	case <-timer.C:
		return pidFile{}, fmt.Errorf("egress gate did not get ready within %s", gateStartTimeout)
	case <-ctx.Done():
		return pidFile{}, fmt.Errorf("egress gate start: %w", ctx.Err())
	}
}

// KeepOptions are a gate host's ends of the pipes.
type KeepOptions struct {
	// Cmd is the read end of the instruction pipe.
	Cmd *os.File
	// Ready is the write end of the readiness pipe.
	Ready *os.File
	// Lifeline, when set, ends the gate when it reads EOF: its owner (a
	// sandbox) is gone without a Teardown; the gate then removes its own
	// state.
	Lifeline *os.File
	// Adopt, when set, replaces Cmd and Ready: the instruction came with
	// the process (Config.Launch), and so did the sockets to serve.
	Adopt *Adoption
}

// Keeper is the helper's side of a gate host.
type Keeper struct {
	opt      KeepOptions
	in       hostInstruction
	serving  atomic.Bool
	orphaned chan struct{}
	cur      atomic.Pointer[gate] // the gate served now (tests)

	settled     chan struct{}
	settledOnce sync.Once
}

// NewKeeper returns a keeper; Run does the work.
func NewKeeper(opt KeepOptions) *Keeper { return &Keeper{opt: opt, settled: make(chan struct{})} }

// Settled is closed once the runtime's instruction has been carried out
// (the gate serves, or the keeper watches, or there was nothing to do) or
// Run has returned: until then the runtime's create waits on this process,
// so a host with other start-up work (the policy monitor) does it after.
func (k *Keeper) Settled() <-chan struct{} { return k.settled }

func (k *Keeper) settle() { k.settledOnce.Do(func() { close(k.settled) }) }

// Serving reports whether this process serves the namespace's gate now
// (it must then outlive the container's processes, until Teardown).
func (k *Keeper) Serving() bool { return k.serving.Load() }

// Restart bounds: a gate that keeps failing is retried at most every
// keeperMaxBackoff.
const (
	keeperMinBackoff = 500 * time.Millisecond
	keeperMaxBackoff = 30 * time.Second
)

// Run waits for the runtime's instruction and carries it out until ctx
// ends. It returns nil at once when the runtime gave none (no egress
// filter), and when the namespace's gate state is gone (torn down).
func (k *Keeper) Run(ctx context.Context) error {
	defer k.settle()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix(fmt.Sprintf("egress-gate[%d] ", os.Getpid()))
	if k.opt.Adopt != nil {
		return k.runAdopted(ctx, k.opt.Adopt)
	}
	defer k.opt.Cmd.Close()
	rd := bufio.NewReader(io.LimitReader(k.opt.Cmd, 1<<16))
	line, err := rd.ReadString('\n')
	if strings.TrimSpace(line) == "" {
		k.opt.Ready.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("egress keeper: %w", err)
		}
		return nil
	}
	if err := json.Unmarshal([]byte(line), &k.in); err != nil {
		k.opt.Ready.Close()
		return fmt.Errorf("egress keeper instruction: %w", err)
	}
	// SIGHUP (a container of the namespace joined or left) must never
	// take the default action: catch it for the whole process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	defer signal.Stop(hup)

	if k.opt.Lifeline != nil {
		k.orphaned = make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, k.opt.Lifeline)
			close(k.orphaned)
		}()
	}
	switch k.in.Op {
	case opServe:
		// Prepare while Setup programs the table; serve on its "go".
		k.serving.Store(true)
		g, err := prepareGate(filepath.Join(k.in.GateDir, "gate.json"), nil)
		if err == nil {
			goLine, rerr := rd.ReadString('\n')
			switch {
			case strings.TrimSpace(goLine) != "go":
				// Setup failed before the table was in: nothing to serve.
				g.close()
				k.opt.Ready.Close()
				k.serving.Store(false)
				if rerr != nil && !errors.Is(rerr, io.EOF) {
					return fmt.Errorf("egress keeper: %w", rerr)
				}
				return nil
			default:
				if err = g.activate(); err != nil {
					g.close()
				}
			}
		}
		k.opt.Cmd.Close()
		msg := "ok\n"
		if err != nil {
			msg = "error: " + err.Error() + "\n"
		}
		_, _ = k.opt.Ready.WriteString(msg)
		k.opt.Ready.Close()
		k.settle()
		if err != nil {
			k.serving.Store(false)
			return err
		}
		return k.serve(ctx, g, nil, hup)
	case opWatch:
		k.opt.Ready.Close()
		k.settle()
		return k.watch(ctx, hup)
	}
	k.opt.Ready.Close()
	return fmt.Errorf("egress keeper: unknown instruction %q", k.in.Op)
}

// runAdopted carries out an instruction that came with the process: the
// runtime already reported the gate ready (its sockets were bound before
// this process started), so there is nobody to tell; a gate that fails
// to start from them is restarted as a failed gate would be.
func (k *Keeper) runAdopted(ctx context.Context, a *Adoption) error {
	k.in = hostInstruction{Op: a.Op, GateDir: a.GateDir, Container: a.Container, NetNSPath: a.NetNSPath}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	defer signal.Stop(hup)
	if !a.Serves() {
		k.settle()
		return k.watch(ctx, hup)
	}
	k.serving.Store(true)
	g, err := prepareGate(filepath.Join(a.GateDir, "gate.json"), a.sockets())
	if err == nil {
		if err = g.activate(); err != nil {
			g.close()
			g = nil
		}
	}
	k.settle()
	return k.serve(ctx, g, err, hup)
}

// serve runs g and restarts the gate in-process whenever it fails. A nil g
// is a gate that failed to start with startErr: it is restarted as if it
// had failed serving.
func (k *Keeper) serve(ctx context.Context, g *gate, startErr error, hup <-chan os.Signal) error {
	backoff := keeperMinBackoff
	for {
		started := time.Now()
		err := startErr
		startErr = nil
		if g != nil {
			k.cur.Store(g)
			err = g.run(ctx, hup, k.orphaned)
			k.cur.Store(nil)
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errOrphaned) {
			_ = os.RemoveAll(k.in.GateDir)
			k.serving.Store(false)
			return nil
		}
		// Failed: the table stays, so the namespace is closed meanwhile.
		if time.Since(started) > keeperMaxBackoff {
			backoff = keeperMinBackoff
		}
		log.Printf("gate failed (%v); restarting in %s", err, backoff)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, keeperMaxBackoff)
			var gone bool
			g, gone, err = k.restart(false)
			if gone {
				log.Printf("namespace torn down: stopping")
				k.serving.Store(false)
				return nil
			}
			if err == nil {
				break
			}
			log.Printf("gate restart: %v; retrying in %s", err, backoff)
		}
	}
}

// watch follows the process that serves the namespace's gate and takes
// the gate over when it dies.
func (k *Keeper) watch(ctx context.Context, hup <-chan os.Signal) error {
	gd := k.in.GateDir
	for {
		p, err := readPidFile(filepath.Join(gd, "gate.pid"))
		if err == nil && procstat.Alive(p.Pid, p.Start) {
			if !waitExit(ctx, p) {
				return nil // ctx ended
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		g, gone, err := k.restart(true)
		switch {
		case gone:
			return nil
		case err != nil:
			log.Printf("gate takeover: %v; retrying", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(keeperMinBackoff):
			}
		case g != nil:
			log.Printf("took the gate over")
			k.serving.Store(true)
			return k.serve(ctx, g, nil, hup)
		}
		// g == nil without error: another process serves it now; watch it.
	}
}

// waitExit blocks until p exits (true) or ctx ends (false).
func waitExit(ctx context.Context, p pidFile) bool {
	fd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		return true // already gone
	}
	defer unix.Close(fd)
	if !procstat.Alive(p.Pid, p.Start) {
		return true
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for ctx.Err() == nil {
		n, err := unix.Poll(fds, 5000) // ctx ends with the process, in practice
		if err == unix.EINTR {
			continue
		}
		if err != nil || n > 0 {
			reap(p.Pid)
			return true
		}
	}
	return false
}

// restart (re)starts the gate in this process, under the run dir's lock:
// the table is re-installed if it vanished. With takeover, it does so only
// if the gate is dead (another keeper or Ensure may have been first; then
// it returns a nil gate) and records this process in gate.pid. gone is true
// when this container no longer holds a ref on the namespace (torn down).
func (k *Keeper) restart(takeover bool) (g *gate, gone bool, err error) {
	gd := k.in.GateDir
	unlock, err := lockRunDir(filepath.Dir(gd))
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(gd, "refs", k.in.Container)); err != nil {
		return nil, true, nil
	}
	if takeover {
		if p, err := readPidFile(filepath.Join(gd, "gate.pid")); err == nil && procstat.Alive(p.Pid, p.Start) {
			return nil, false, nil
		}
	}
	gc, ok := readGateConfig(gd)
	if !ok {
		return nil, true, nil
	}
	nsfd, key, err := openNetNS(k.in.NetNSPath)
	if err != nil {
		return nil, false, err
	}
	defer unix.Close(nsfd)
	if key.String() != gc.Key {
		return nil, true, nil // our namespace path now names another one
	}
	if exists, err := tableExists(nsfd); err != nil {
		return nil, false, err
	} else if !exists {
		pl, err := compile(gc.policy(), gc.HostAddrs)
		if err != nil {
			return nil, false, err
		}
		if err := applyTable(nsfd, buildTable(pl)); err != nil {
			return nil, false, err
		}
	}
	if gc.NetNSPath != k.in.NetNSPath {
		gc.NetNSPath = k.in.NetNSPath
		if err := writeJSON(filepath.Join(gd, "gate.json"), gc); err != nil {
			return nil, false, err
		}
	}
	g, err = startGate(filepath.Join(gd, "gate.json"))
	if err != nil {
		return nil, false, err
	}
	if takeover {
		st, err := procstat.Read(os.Getpid())
		if err == nil {
			err = writePidFile(filepath.Join(gd, "gate.pid"), pidFile{Pid: os.Getpid(), Start: st.Start})
		}
		if err != nil {
			g.close()
			return nil, false, err
		}
	}
	return g, false, nil
}
