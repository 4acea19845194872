//go:build linux

package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/internal/monitorwatch"
	"mxc.dev/mxc/internal/phasemark"
	"mxc.dev/mxc/linux/initmount"
	"mxc.dev/mxc/spec"
)

// Runtime is the Linux driver over one state root.
type Runtime struct {
	Root          string
	SystemdCgroup bool
	// Exe is the path of the mxc-runtime binary, for helper processes.
	Exe string
	// Policy resolves and enforces agent policies; nil runs every container
	// as a plain OCI container.
	Policy PolicyEngine
}

// PolicyEngine is the hook through which the policy layer acts on a create.
// The Linux enforcement (linux/enforce) implements it; keeping it an
// interface lets the lifecycle code be read and tested on its own.
type PolicyEngine interface {
	// Resolve computes the effective policy from the spec's annotations
	// (nil when no policy applies).
	Resolve(s *specs.Spec) (*spec.Effective, error)
	// PrepareSpec edits the OCI spec to enforce eff before libcontainer
	// sees it (mounts, capabilities, seccomp, namespaces, resources) and
	// returns what create records about it.
	PrepareSpec(s *specs.Spec, eff *spec.Effective, c *CreateContext) error
	// PrepareProcess edits a process (the init or an exec) right before it
	// starts: in-container enforcement that must run last (Landlock). For
	// the init it may start work that waits for the init to exist (the
	// monitor's configuration, the egress filter); AfterCreate or
	// AbortCreate ends it.
	PrepareProcess(p *libcontainer.Process, eff *spec.Effective, c *CreateContext) error
	// AfterCreate runs once the container's init exists and before the
	// agent's process starts (egress filter in the netns, monitor). What
	// it records in cc.Record it saves itself, as soon as it is set (a
	// create killed from then on must leave a record that delete
	// follows): create saves nothing after it, on the path the init waits
	// on at the exec fifo.
	AfterCreate(c *libcontainer.Container, eff *spec.Effective, cc *CreateContext) error
	// AbortCreate stops the policy work a create started in the
	// background (see PrepareProcess) when the create fails before
	// AfterCreate, and waits for it, so that the clean-up after it sees all
	// it did.
	AbortCreate(c *CreateContext)
	// Teardown undoes AfterCreate; idempotent, safe after a crash.
	Teardown(stateDir string, rec *Record) error
	// EnsureHelpers restarts the helpers of a running container that are
	// gone (the policy monitor, and the egress gate it hosts); it does
	// nothing when they run or the container's init is gone.
	EnsureHelpers(stateDir, id string, eff *spec.Effective) error
}

// CreateContext carries per-create facts between the policy hooks.
type CreateContext struct {
	ID       string
	Bundle   string
	StateDir string
	Record   *Record
	Audit    *audit.Writer
	Spec     *specs.Spec
}

// CreateOpts are create's and run's flags.
type CreateOpts struct {
	ID            string
	Bundle        string
	ConsoleSocket string
	PidFile       string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
	Detach        bool // run --detach
	NoSubreaper   bool
	Keep          bool
}

type action int

const (
	actCreate action = iota
	actRun
)

// ErrExist / ErrNotExist are libcontainer's, re-exported for callers.
var (
	ErrExist    = libcontainer.ErrExist
	ErrNotExist = libcontainer.ErrNotExist
)

func (r *Runtime) stateDir(id string) string { return filepath.Join(r.Root, id) }

// Create implements `create`: the container exists, its process waits for `start`.
func (r *Runtime) Create(o CreateOpts) error {
	_, err := r.create(o, actCreate)
	return err
}

// Run implements `run`: create and start; in the foreground it returns the
// process's exit status and deletes the container afterwards.
func (r *Runtime) Run(o CreateOpts) (int, error) {
	return r.create(o, actRun)
}

func (r *Runtime) create(o CreateOpts, act action) (status int, retErr error) {
	if o.Bundle == "" {
		o.Bundle = "."
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return -1, err
	}
	if o.PidFile != "" {
		if o.PidFile, err = filepath.Abs(o.PidFile); err != nil {
			return -1, err
		}
	}
	detach := act == actCreate || o.Detach
	if err := checkTerminal(nil, detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	var waitSigs func() *signals
	if !detach {
		waitSigs = catchSignalsAsync(!o.NoSubreaper)
		// signal.Stop waits for the runtime's signal loop to go idle, ~1 ms
		// measured at the end of every foreground `run`, which exits right
		// after: let it finish in the background (a caller that lives on
		// gets it done a moment later; the channel is buffered).
		defer func() { go func() { waitSigs().stop() }() }()
	}
	s, err := LoadSpec(bundle)
	if err != nil {
		return -1, err
	}
	phasemark.Mark("create: spec loaded")
	if err := checkTerminal(s.Process, detach, o.ConsoleSocket); err != nil {
		return -1, err
	}
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return -1, fmt.Errorf("create root %s: %w", r.Root, err)
	}
	lock, err := AcquireLock(r.Root, o.ID)
	if err != nil {
		return -1, err
	}
	defer lock.Release()
	if _, err := os.Lstat(r.stateDir(o.ID)); err == nil {
		return -1, fmt.Errorf("container %q: %w", o.ID, ErrExist)
	}
	phasemark.Mark("create: locked")

	var eff *spec.Effective
	if r.Policy != nil {
		if eff, err = r.Policy.Resolve(s); err != nil {
			return -1, fmt.Errorf("agent policy: %w", err)
		}
	}
	phasemark.Mark("create: policy resolved")
	// The user's mounts; the policy may append its own (package initmount
	// tells them apart).
	userMounts := len(s.Mounts)
	cc := &CreateContext{ID: o.ID, Bundle: bundle, StateDir: r.stateDir(o.ID), Spec: s}
	rec := &Record{ID: o.ID, Bundle: bundle, Created: time.Now().UTC()}
	cc.Record = rec
	if eff != nil {
		rec.PolicyDigest = eff.Digest
		rec.Tier = string(eff.Policy.Isolation)
		if eff.Policy.Identity != nil {
			rec.Agent = eff.Policy.Identity.Agent
		}
		if err := r.Policy.PrepareSpec(s, eff, cc); err != nil {
			return -1, fmt.Errorf("agent policy: %w", err)
		}
		phasemark.Mark("create: spec prepared")
		// mxc enforcement (issue 4): PrepareSpec may leave host state (a
		// session id range, an id-mapped rootfs mount) before libcontainer's
		// container exists; undo it if create fails from here on. Teardown
		// is idempotent, so running it after destroy's is harmless.
		defer func() {
			if retErr != nil {
				r.teardownPolicy(cc.StateDir, rec)
			}
		}()
	}

	normalizeSpec(s)
	// specconv resolves relative paths against the cwd, as runc does.
	if err := os.Chdir(bundle); err != nil {
		return -1, fmt.Errorf("enter bundle: %w", err)
	}
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       o.ID,
		UseSystemdCgroup: r.SystemdCgroup,
		NoPivotRoot:      o.NoPivot,
		NoNewKeyring:     o.NoNewKeyring,
		Spec:             s,
		RootlessEUID:     os.Geteuid() != 0,
	})
	if err != nil {
		return -1, fmt.Errorf("convert config.json: %w", err)
	}
	phasemark.Mark("create: spec converted")
	// mxc (issue 2): the run of standard mounts at the end of the list
	// (/dev's pseudo-filesystems, /sys, the cgroup v1 view) is mounted by
	// mxc's code in the init instead of libcontainer's checked per-mount
	// path (package initmount; nil when libcontainer keeps them all).
	initMounts, err := initmount.Take(config, userMounts)
	if err != nil {
		return -1, err
	}
	defer initMounts.Close()
	c, err := libcontainer.Create(r.Root, o.ID, config)
	if err != nil {
		if errors.Is(err, libcontainer.ErrExist) {
			return -1, fmt.Errorf("container %q: %w", o.ID, ErrExist)
		}
		return -1, fmt.Errorf("create container: %w", err)
	}
	// The cgroup paths libcontainer computed (nothing is created yet): the
	// journal needs them to undo a create killed half-way.
	if st, err := c.State(); err == nil {
		rec.CgroupPaths = st.CgroupPaths
	}
	// From here on a failure must leave nothing behind.
	defer func() {
		if retErr != nil {
			r.destroy(c, cc.StateDir, rec)
		}
	}()
	if err := SaveRecord(cc.StateDir, rec); err != nil {
		return -1, err
	}
	if eff != nil {
		phasemark.Mark("create: libcontainer created, record saved")
		if err := SavePolicy(cc.StateDir, eff); err != nil {
			return -1, err
		}
		w, err := audit.Open(filepath.Join(cc.StateDir, audit.FileName), o.ID, rec.Agent)
		if err != nil {
			return -1, err
		}
		defer w.Close()
		cc.Audit = w
	}

	p, err := newProcess(s.Process)
	if err != nil {
		return -1, err
	}
	p.Init = true
	lateRlimits := takeLateRlimits(p)
	p.LogLevel = strconv.Itoa(int(logrus.GetLevel()))
	if n := listenFDs(); n > 0 {
		p.Env = append(p.Env, "LISTEN_FDS="+strconv.Itoa(n), "LISTEN_PID=1")
		for i := 0; i < n; i++ {
			p.ExtraFiles = append(p.ExtraFiles, os.NewFile(uintptr(3+i), "LISTEN_FD_"+strconv.Itoa(i)))
		}
	}
	if err := addPreservedFDs(p, o.PreserveFDs); err != nil {
		return -1, err
	}
	if eff != nil {
		// Runs before destroy's and teardownPolicy's defers (LIFO).
		defer func() {
			if retErr != nil {
				r.Policy.AbortCreate(cc)
			}
		}()
		if err := r.Policy.PrepareProcess(p, eff, cc); err != nil {
			return -1, fmt.Errorf("agent policy: %w", err)
		}
	}
	if initMounts != nil {
		initMounts.Attach(p) // the last ExtraFile, after the policy's
	}
	phasemark.Mark("create: process prepared")
	io, err := setupStdio(p, c, s.Process.Terminal, detach, o.ConsoleSocket)
	if err != nil {
		return -1, err
	}
	defer func() {
		// Before destroy (defers run last first): a failed create's init
		// is still alive and holds the pipes, so waiting for the copies
		// would wait forever.
		if retErr != nil {
			io.abandon()
		} else {
			io.Close()
		}
	}()

	if err := c.Start(p); err != nil {
		return -1, fmt.Errorf("start container process: %w", err)
	}
	phasemark.Mark("create: libcontainer started")
	if err := applyLateRlimits(p, lateRlimits); err != nil {
		return -1, err
	}
	if eff != nil {
		if err := r.Policy.AfterCreate(c, eff, cc); err != nil {
			return -1, fmt.Errorf("agent policy: %w", err)
		}
		phasemark.Mark("create: after-create done")
	}
	if err := io.waitConsole(); err != nil {
		return -1, err
	}
	io.closePostStart()
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, p); err != nil {
			return -1, err
		}
	}
	if act == actCreate {
		return 0, nil
	}
	// The signal handler (catchSignalsAsync) is waited for here, not before
	// Start: its ~1.5 ms of thread round trips then overlap the init's
	// start-up instead of delaying it. Nothing of the container's runs
	// before Exec, and forward reaps an init that died meanwhile (its
	// SIGCHLD may have come before the handler). The interrupts (SIGINT,
	// SIGTERM, SIGHUP, SIGQUIT) are caught from the start, so a Ctrl-C
	// during Start reaches the container instead of leaving it created.
	var sigs *signals
	if !detach {
		sigs = waitSigs()
	}
	if err := c.Exec(); err != nil {
		return -1, fmt.Errorf("start container: %w", err)
	}
	phasemark.Mark("run: exec fifo opened")
	// Other verbs (kill, exec, ps) must reach a foreground container.
	lock.Release()
	if detach {
		return 0, nil
	}
	stopWatch := make(chan struct{})
	if eff != nil && rec.MonitorPid > 0 {
		// A foreground run lives as long as its container, as the shim
		// does: it restarts the policy monitor if that dies first.
		go monitorwatch.Watch(stopWatch, cc.StateDir, func() error { return r.EnsureHelpers(o.ID) },
			monitorwatch.Options{Logf: logrus.Warnf})
	}
	status, err = sigs.forward(p, io)
	close(stopWatch)
	phasemark.Mark("run: container exited")
	if err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return -1, err
	}
	if !o.Keep {
		io.Close()
		// The container is ours and stopped: destroy it directly rather than
		// reloading it from disk as `delete` would.
		if l, err := AcquireLock(r.Root, o.ID); err == nil {
			r.destroy(c, cc.StateDir, rec)
			l.ReleaseAndRemove()
			phasemark.Mark("run: destroyed")
		}
	}
	return status, nil
}

func checkTerminal(p *specs.Process, detach bool, consoleSocket string) error {
	tty := p != nil && p.Terminal
	if p == nil {
		return nil
	}
	if detach && tty && consoleSocket == "" {
		return errors.New("process.terminal is true but no --console-socket was given: cannot allocate a tty for a detached container")
	}
	if (!detach || !tty) && consoleSocket != "" {
		return errors.New("--console-socket needs a detached container with process.terminal true")
	}
	return nil
}

// listenFDs implements systemd socket activation pass-through as runc does.
func listenFDs() int {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return 0
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func addPreservedFDs(p *libcontainer.Process, n int) error {
	base := 3 + len(p.ExtraFiles)
	for fd := base; fd < base+n; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("--preserve-fds: fd %d (%d of %d) is not open: %w", fd, fd-base+1, n, err)
		}
		p.ExtraFiles = append(p.ExtraFiles, os.NewFile(uintptr(fd), "PreserveFD:"+strconv.Itoa(fd)))
	}
	return nil
}

func writePidFile(path string, p *libcontainer.Process) error {
	pid, err := p.Pid()
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return os.Rename(tmp, path)
}
