//go:build linux

package shim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	cgroupsv2 "github.com/containerd/cgroups/v3/cgroup2"
	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/internal/helperheap"
	"mxc.dev/mxc/internal/jsonwarm"
)

// A spare shim is the shim binary, started and initialised ahead of time,
// waiting for the next task's `start` of the same containerd: the `start`
// process (in C, package faststart, before any Go runs) hands it its
// command line, environment, working directory and bootstrap parameters,
// and the spare does the start in the runc shim's way (socket, grouping,
// shim cgroup, OOM score) and then becomes the task's long-running shim
// itself, with the command line and environment that process would have
// had. The start process spawns the next spare and exits.
//
// Per container, containerd starts a `start` process that spawns the
// long-running shim: two Go start-ups of an 8.7 MB binary on the path of
// every task's creation (~3 ms each here: exec, page faults, runtime and
// package initialisation). With a spare, neither is on that path; the
// next spare's start-up runs while the task is created.
//
// One spare per containerd address (a lock in SpareDir). It serves one
// start at most: a shim per task (or per pod, by the runc code's grouping)
// is kept, as is every property of the shim's process: its parent (the
// start process, which exits: init, as for a spawned shim), its cgroup
// (containerd's, then ShimCgroup), its process group, its cwd and stdio.
// It exits when idle for MXC_SHIM_SPARE_IDLE (default 5 min), when its
// containerd's socket is gone, when its binary is removed or replaced (an
// uninstall, an upgrade), or when asked by a start of a different shim
// binary (an upgrade in place). MXC_SHIM_SPARE=0 in containerd's environment
// turns spares off; any start the spare cannot do exactly as the Go path
// would (SCHED_CORE, an unexpected command line or parameters) falls back
// to the Go path, which also spawns the first spare.

const spareIdleDefault = 5 * time.Minute

// spareGonePoll is how often an idle spare checks for its containerd.
const spareGonePoll = 2 * time.Second

// runSpare is the spare's main: args are what follows SpareFlag.
func runSpare(args []string) {
	fs := flag.NewFlagSet(SpareFlag, flag.ContinueOnError)
	address := fs.String("address", "", "containerd's address")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil || *address == "" {
		fmt.Fprintf(os.Stderr, "containerd-shim-mxc-v2 %s: want -address ADDRESS\n", SpareFlag)
		os.Exit(2)
	}
	// A copy: the memory of the arguments is the shim's command line later.
	sp, err := lockSpare(strings.Clone(*address))
	if err == nil {
		// Before listening: a start that comes meanwhile takes the Go
		// path rather than wait for this.
		prewarm()
		err = sp.listen()
	}
	if err != nil {
		// Another spare holds the lock, or the directory is not ours:
		// nothing to do. (stderr is /dev/null when spawned.)
		fmt.Fprintf(os.Stderr, "containerd-shim-mxc-v2 %s: %v\n", SpareFlag, err)
		os.Exit(0)
	}
	// From here the spare sleeps until a start, whose path it is on.
	restoreSched()
	b := sp.serve()
	if b == nil {
		os.Exit(0)
	}
	b.become()
}

// prewarm builds, while the spare waits, what a freshly started shim
// builds on its task's path: the first-use tables of encoding/json and
// protobuf for the spec and the messages of a start and a task
// (newTaskService starts the same in the background; here they are
// done by the time a start comes). Populating the binary's pages
// (MADV_POPULATE_READ/WRITE) as well cost 0.8 ms of CPU per spare for no
// difference measured in `ctr run --rm` (2026-11-28), and is not done.
func prewarm() {
	jsonwarm.Warm(&specs.Spec{}, &bootapi.BootstrapParams{})
	warmProto()
	_ = proto.Size(&bootapi.BootstrapParams{})
	_ = proto.Size(&bootapi.BootstrapResult{})
}

// spare is a listening spare.
type spare struct {
	address string
	path    string
	l       *net.UnixListener
	lock    *os.File
	dev     uint64
	ino     uint64
	self    string
	idle    time.Duration
}

// lockSpare takes the lock of the spare for address: one spare per
// containerd.
func lockSpare(address string) (*spare, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return nil, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	if err := os.MkdirAll(SpareDir, 0o700); err != nil {
		return nil, err
	}
	path := SparePath(address)
	lock, err := os.OpenFile(spareLockPath(address), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another spare for %s: %w", address, err)
	}
	idle := spareIdleDefault
	if v := os.Getenv(spareIdleEnv); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			idle = d
		}
	}
	return &spare{address: address, path: path, lock: lock, dev: uint64(st.Dev), ino: st.Ino, self: self, idle: idle}, nil
}

// listen opens the spare's socket; under the lock, a socket left at its
// path is a dead spare's.
func (sp *spare) listen() error {
	_ = os.Remove(sp.path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sp.path, Net: "unix"})
	if err != nil {
		sp.lock.Close()
		return err
	}
	if err := os.Chmod(sp.path, 0o600); err != nil {
		l.Close()
		sp.lock.Close()
		return err
	}
	sp.l = l
	return nil
}

// spareSchedEnv carries its spawner's scheduling to a spare (policy,
// static priority, nice). With it, the C constructor (faststart) puts the
// spare in SCHED_IDLE before the Go runtime starts: the spare's start-up
// and prewarm use only CPU nothing else wants, instead of competing with
// the task being created meanwhile; restoreSched then gives the spawner's
// scheduling back.
const spareSchedEnv = "MXC_SPARE_SCHED"

// restoreSched gives every thread of the process the scheduling the spare
// was started with (threads inherit their creator's, so the ones made
// later follow).
func restoreSched() {
	v, ok := os.LookupEnv(spareSchedEnv)
	if !ok {
		return
	}
	os.Unsetenv(spareSchedEnv)
	var policy, prio, nice int
	if n, err := fmt.Sscanf(v, "%d %d %d", &policy, &prio, &nice); err != nil || n != 3 {
		return
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	attr := unix.SchedAttr{Policy: uint32(policy), Priority: uint32(prio), Nice: int32(nice)}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			a := attr
			_ = unix.SchedSetAttr(tid, &a, 0)
		}
	}
}

// close stops being a spare: the socket goes (no further start reaches
// this process) and the lock with it (the next spare may take over).
func (sp *spare) close() {
	sp.l.Close() // unlinks the path
	sp.lock.Close()
}

// serve answers starts until one makes this process a task's shim (the
// returned becoming) or the spare ends (nil).
func (sp *spare) serve() *becoming {
	// SIGTERM or SIGINT end a waiting spare with its socket removed (an
	// administrator's kill, a test's clean-up); not a start under way,
	// whose shim installs its own handlers.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGTERM, unix.SIGINT)
	defer func() { signal.Stop(sig); close(sig) }()
	var stop atomic.Bool
	go func() {
		for range sig {
			stop.Store(true)
			_ = sp.l.SetDeadline(time.Now())
		}
	}()
	deadline := time.Now().Add(sp.idle)
	for {
		wake := time.Now().Add(spareGonePoll)
		if wake.After(deadline) {
			wake = deadline
		}
		_ = sp.l.SetDeadline(wake)
		if stop.Load() {
			sp.close()
			return nil
		}
		conn, err := sp.l.AcceptUnix()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				if stop.Load() || !time.Now().Before(deadline) || containerdGone(sp.address) || exeGone() {
					sp.close()
					return nil
				}
				continue
			}
			sp.close()
			return nil
		}
		b, done := sp.handle(conn)
		conn.Close()
		if b != nil || done {
			return b
		}
		deadline = time.Now().Add(sp.idle)
	}
}

// containerdGone says whether the containerd this spare is for has no
// socket any more (stopped, or a test's private instance removed).
func containerdGone(address string) bool {
	_, err := os.Stat(strings.TrimPrefix(address, "unix://"))
	return errors.Is(err, os.ErrNotExist)
}

// exeGone says whether this process's binary was removed or replaced (an
// uninstall, an upgrade by rename): such a spare would only decline.
func exeGone() bool {
	exe, err := os.Readlink("/proc/self/exe")
	return err == nil && strings.HasSuffix(exe, " (deleted)")
}

// handle answers one connection. It returns the becoming when the start
// made this process a task's shim, done when the spare must end.
func (sp *spare) handle(conn *net.UnixConn) (b *becoming, done bool) {
	if !peerIsUs(conn) {
		return nil, false
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := decodeSpareRequest(conn)
	if err != nil {
		return nil, false // closed without a request, or garbage: stay
	}
	reply := func(status byte, gone bool, payload []byte) {
		_, _ = conn.Write(encodeSpareReply(status, gone, payload))
	}
	if req.Dev != sp.dev || req.Ino != sp.ino {
		// The shim binary was replaced: this spare runs the old one.
		sp.close()
		reply(spareFallback, true, []byte("the spare runs another shim binary"))
		return nil, true
	}
	st, err := parseStart(req, sp.address)
	if err != nil {
		reply(spareFallback, false, []byte(err.Error()))
		return nil, false
	}
	res, b, err := sp.start(st)
	var out []byte
	if err == nil {
		out, err = proto.Marshal(res)
	}
	if err != nil {
		reply(spareError, b != nil, []byte(err.Error()))
		if b != nil { // committed: the sockets are made and this process is no spare
			b.abandon()
			return nil, true
		}
		return nil, false
	}
	reply(spareOK, b != nil, out)
	return b, false
}

// peerIsUs checks the connecting process runs as this one's user.
func peerIsUs(conn *net.UnixConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return int(cred.Uid) == os.Getuid()
}

// startArgs is a start request the spare can do exactly as the Go path.
type startArgs struct {
	req       *spareRequest
	namespace string
	id        string
	params    *bootapi.BootstrapParams
}

// parseStart checks the request is containerd's start of a task for this
// spare's containerd, in the form the Go path would read it
// (pkg/shim's flags and bootstrap parameters). Anything else falls back.
func parseStart(req *spareRequest, address string) (*startArgs, error) {
	if len(req.Args) < 2 {
		return nil, errors.New("no command line")
	}
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("debug", false, "")
	ns := fs.String("namespace", "", "")
	id := fs.String("id", "", "")
	addr := fs.String("address", "", "")
	fs.String("publish-binary", "", "")
	fs.String("bundle", "", "")
	if err := fs.Parse(req.Args[1:]); err != nil {
		return nil, fmt.Errorf("command line: %w", err)
	}
	if fs.NArg() != 1 || fs.Arg(0) != "start" {
		return nil, fmt.Errorf("not a start: %q", fs.Args())
	}
	if *addr != address {
		return nil, fmt.Errorf("start for containerd %q, spare for %q", *addr, address)
	}
	if *ns == "" || *id == "" {
		return nil, errors.New("no namespace or id")
	}
	if !filepath.IsAbs(req.Cwd) {
		return nil, fmt.Errorf("working directory %q not absolute", req.Cwd)
	}
	if spareOff(req.Env) {
		return nil, errors.New(spareEnv + " is off")
	}
	for _, e := range req.Env {
		if v, ok := strings.CutPrefix(e, "SCHED_CORE="); ok && v != "" {
			return nil, errors.New("SCHED_CORE is set")
		}
	}
	params := &bootapi.BootstrapParams{}
	if len(req.Stdin) == 0 || proto.Unmarshal(req.Stdin, params) != nil {
		return nil, errors.New("no bootstrap parameters (an older containerd)")
	}
	if params.GetInstanceID() != *id || params.GetNamespace() != *ns {
		return nil, errors.New("bootstrap parameters do not match the command line")
	}
	return &startArgs{req: req, namespace: *ns, id: *id, params: params}, nil
}

// shimSocket is the runc shim manager's: a listening socket for the
// long-running shim.
type shimSocket struct {
	addr string
	l    *net.UnixListener
	f    *os.File
}

func (s *shimSocket) close() {
	if s.l != nil {
		s.l.SetUnlinkOnClose(false)
		s.l.Close()
	}
	if s.f != nil {
		s.f.Close()
	}
	_ = shim.RemoveSocket(s.addr)
}

// newShimSocket is the runc shim manager's newShimSocket
// (cmd/containerd-shim-runc-v2/manager), which is not exported.
func newShimSocket(ctx context.Context, root, path, id string, debug bool) (*shimSocket, error) {
	address, err := shim.CreateSocketAddress(ctx, root, path, id, debug)
	if err != nil {
		return nil, err
	}
	socket, err := shim.NewSocket(address)
	if err != nil {
		if !shim.SocketEaddrinuse(err) {
			return nil, fmt.Errorf("create new shim socket: %w", err)
		}
		if !debug && shim.CanConnect(address) {
			return &shimSocket{addr: address}, errdefs.ErrAlreadyExists
		}
		if err := shim.RemoveSocket(address); err != nil {
			return nil, fmt.Errorf("remove pre-existing socket: %w", err)
		}
		if socket, err = shim.NewSocket(address); err != nil {
			return nil, fmt.Errorf("try create new shim socket 2x: %w", err)
		}
	}
	s := &shimSocket{addr: address, l: socket}
	f, err := socket.File()
	if err != nil {
		s.close()
		return nil, err
	}
	s.f = f
	return s, nil
}

// groupLabels are the runc shim manager's: a task whose spec carries one
// joins the shim of that group.
var groupLabels = []string{
	"io.containerd.runc.v2.group",
	"io.kubernetes.cri.sandbox-id",
}

// start is the runc shim manager's Start (and pkg/shim's start action)
// with the spawn of the long-running process replaced by this process.
// Until the sockets are made nothing is changed and the spare stays one;
// after that (b != nil) it is committed.
func (sp *spare) start(st *startArgs) (_ *bootapi.BootstrapResult, b *becoming, err error) {
	params := st.params
	ctx := namespaces.WithNamespace(context.Background(), st.namespace)
	res := &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc"}

	grouping := st.id
	var spec struct {
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	cfg, err := os.ReadFile(filepath.Join(st.req.Cwd, "config.json"))
	if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(cfg, &spec); err != nil {
		return nil, nil, err
	}
	for _, g := range groupLabels {
		if v, ok := spec.Annotations[g]; ok {
			grouping = v
			break
		}
	}
	var runcOpts options.Options
	if _, err := params.FindExtension(&runcOpts); err != nil {
		return nil, nil, fmt.Errorf("failed to fetch runc options: %w", err)
	}
	if dir := params.GetSocketDir(); dir != "" {
		// pkg/shim's writeSocketDir: the long-running shim's cleanupSockets reads it
		link := filepath.Join(st.req.Cwd, "s")
		if _, err := os.Lstat(link); err == nil {
			if err := os.Remove(link); err != nil {
				return nil, nil, fmt.Errorf("failed to write socket-dir: remove existing socket dir link: %w", err)
			}
		}
		if err := os.Symlink(dir, link); err != nil {
			return nil, nil, fmt.Errorf("failed to write socket-dir: %w", err)
		}
	}
	socketDir := params.GetSocketDir()
	if socketDir == "" {
		socketDir = filepath.Join(defaults.DefaultStateDir, "s")
	}
	s, err := newShimSocket(ctx, socketDir, params.GetContainerdGrpcAddress(), grouping, false)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			res.Address = s.addr // the group's shim serves this task
			return res, nil, nil
		}
		return nil, nil, err
	}
	debug := params.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG
	b = &becoming{st: st, self: sp.self, sockets: []*shimSocket{s}, debug: debug}
	if debug {
		ds, err := newShimSocket(ctx, socketDir, params.GetContainerdGrpcAddress(), grouping, true)
		if err != nil {
			s.close()
			return nil, nil, err
		}
		b.sockets = append(b.sockets, ds)
	}
	// Committed: no other start may reach this process now.
	sp.close()
	if cg := runcOpts.GetShimCgroup(); cg != "" {
		if err := joinShimCgroup(cg); err != nil {
			return nil, b, err
		}
	}
	if err := shim.AdjustOOMScore(os.Getpid()); err != nil {
		return nil, b, fmt.Errorf("failed to adjust OOM score for shim: %w", err)
	}
	res.Address = s.addr
	return res, b, nil
}

func joinShimCgroup(path string) error {
	pid := uint64(os.Getpid())
	if cgroups.Mode() == cgroups.Unified {
		cg, err := cgroupsv2.Load(path)
		if err != nil {
			return fmt.Errorf("failed to load cgroup %s: %w", path, err)
		}
		if err := cg.AddProc(pid); err != nil {
			return fmt.Errorf("failed to join cgroup %s: %w", path, err)
		}
		return nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return fmt.Errorf("failed to load cgroup %s: %w", path, err)
	}
	if err := cg.AddProc(pid); err != nil {
		return fmt.Errorf("failed to join cgroup %s: %w", path, err)
	}
	return nil
}

// becoming is a spare that did a task's start and now turns into the
// long-running shim the runc manager would have spawned for it.
type becoming struct {
	st      *startArgs
	self    string
	sockets []*shimSocket
	debug   bool
}

// abandon undoes a committed start that failed before it was answered.
func (b *becoming) abandon() {
	for _, s := range b.sockets {
		s.close()
	}
}

// become sets up this process as the runc manager's newCommand sets up the
// long-running shim (the sockets at fds 3 and 4, the bundle as working
// directory, the start's environment with GOMAXPROCS=4 and
// OTEL_SERVICE_NAME, its command line) and runs the shim.
func (b *becoming) become() {
	st := b.st
	fail := func(err error) {
		// Answered already: containerd's connection to the socket fails
		// and the task's creation with it, as when a spawned shim dies.
		fmt.Fprintf(os.Stderr, "containerd-shim-mxc-v2: spare: %v\n", err)
		os.Exit(1)
	}
	// fds 3 and 4 were held by /dev/null since before the Go runtime
	// started (faststart), so nothing of the runtime lives there.
	for i, s := range b.sockets {
		if err := unix.Dup3(int(s.f.Fd()), 3+i, 0); err != nil {
			fail(fmt.Errorf("socket to fd %d: %w", 3+i, err))
		}
		s.l.SetUnlinkOnClose(false)
		s.l.Close()
		s.f.Close()
	}
	if err := os.Chdir(st.req.Cwd); err != nil {
		fail(err)
	}
	os.Clearenv()
	env := append(append([]string{}, st.req.Env...), "GOMAXPROCS=4", "OTEL_SERVICE_NAME=containerd-shim-"+st.id)
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			os.Setenv(k, v)
		}
	}
	if n, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && n > 0 {
		runtime.GOMAXPROCS(n)
	}
	args := []string{b.self, "-namespace", st.namespace, "-id", st.id, "-address", st.params.GetContainerdGrpcAddress()}
	if b.debug {
		args = append(args, "-debug")
	}
	os.Args = args
	setCmdline(args)
	runShim()
}

// setCmdline makes /proc/self/cmdline read args, so that ps, pgrep and
// an operator's tooling see the command line of a spawned shim, not the
// spare's. A spare is started with spareArgRoom empty arguments after its
// own, room that is overwritten here (through /proc/self/mem: the kernel
// reads the command line from that memory); a command line too long for
// it needs PR_SET_MM (CAP_SYS_RESOURCE), without which the spare's stays.
// Nothing reads the old arguments by then: os.Args and every string taken
// from them were replaced or copied.
func setCmdline(args []string) {
	line := strings.Join(args, "\x00") + "\x00"
	if start, end, err := argArea(); err == nil && uint64(len(line)) <= end-start {
		area := make([]byte, end-start)
		copy(area, line)
		if f, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0); err == nil {
			_, err = f.WriteAt(area, int64(start))
			f.Close()
			if err == nil {
				return
			}
		}
	}
	// Memory the Go heap does not own and never frees: the kernel reads
	// the command line from it for as long as the process lives.
	mem, err := unix.Mmap(-1, 0, len(line), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return
	}
	copy(mem, line)
	start := uintptr(unsafe.Pointer(&mem[0]))
	end := start + uintptr(len(line))
	// The kernel checks start <= end after each step: which bound moves
	// first depends on where the new area lies relative to the old one.
	if unix.Prctl(unix.PR_SET_MM, unix.PR_SET_MM_ARG_START, start, 0, 0) == nil {
		if unix.Prctl(unix.PR_SET_MM, unix.PR_SET_MM_ARG_END, end, 0, 0) == nil {
			return
		}
	}
	if unix.Prctl(unix.PR_SET_MM, unix.PR_SET_MM_ARG_END, end, 0, 0) == nil {
		_ = unix.Prctl(unix.PR_SET_MM, unix.PR_SET_MM_ARG_START, start, 0, 0)
	}
}

// argArea is this process's command line memory: arg_start and arg_end,
// fields 48 and 49 of /proc/self/stat (counted after the command name,
// which may hold spaces).
func argArea() (start, end uint64, err error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, errors.New("/proc/self/stat: no command name")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 49-2 {
		return 0, 0, errors.New("/proc/self/stat: too few fields")
	}
	if start, err = strconv.ParseUint(f[48-3], 10, 64); err != nil {
		return 0, 0, err
	}
	if end, err = strconv.ParseUint(f[49-3], 10, 64); err != nil {
		return 0, 0, err
	}
	if end < start || start == 0 {
		return 0, 0, errors.New("/proc/self/stat: no argument area")
	}
	return start, end, nil
}

// spareArgRoom is how many empty arguments a spare gets after its own:
// room for the longer command line of the shim it becomes (setCmdline),
// enough for containerd's longest namespace and id.
const spareArgRoom = 256

// spareArgs is a spare's command line (the C side builds the same).
func spareArgs(self, address string) []string {
	args := []string{self, SpareFlag, "-address", address}
	return append(args, make([]string, spareArgRoom)...)
}

// spawnSpare starts a spare for the containerd at address unless spares
// are off or one is listening. The spare is this process's child only
// until it exits (a start process exits at once), like a spawned shim.
func spawnSpare(address string) {
	if address == "" || spareOff(os.Environ()) {
		return
	}
	if spareRunning(address) {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	cmd := exec.Command(self)
	cmd.Args = spareArgs(self, address)
	cmd.Dir = "/"
	cmd.Env = spareEnviron(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return
	}
	go cmd.Wait() //nolint:errcheck // reaped if this process is still there
}

// spareRunning says whether a spare for address holds its lock: one that
// waits, or one still starting up (in SCHED_IDLE it may wait long for CPU
// on a busy host; a second spawned meanwhile would only find the lock
// taken and exit, one doomed process per start).
func spareRunning(address string) bool {
	f, err := os.OpenFile(spareLockPath(address), os.O_RDWR, 0)
	if err != nil {
		return false // never made: no spare yet
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

func spareLockPath(address string) string {
	return strings.TrimSuffix(SparePath(address), ".sock") + ".lock"
}

// spareEnviron is env for a spare: its collector off until it becomes a
// shim (which sets its own), whatever the starter had, and the starter's
// scheduling (spareSchedEnv).
func spareEnviron(env []string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "MXC_GOGC_BEFORE=") || strings.HasPrefix(kv, spareSchedEnv+"=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, helperheap.Env)
	if a, err := unix.SchedGetAttr(0, 0); err == nil {
		out = append(out, fmt.Sprintf("%s=%d %d %d", spareSchedEnv, a.Policy&^unix.SCHED_RESET_ON_FORK, a.Priority, a.Nice))
	}
	return out
}
