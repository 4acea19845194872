//go:build linux

package shim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

func startRequest(t *testing.T, address string, env ...string) *spareRequest {
	t.Helper()
	params, err := proto.Marshal(&bootapi.BootstrapParams{InstanceID: "c1", Namespace: "ns1", ContainerdGrpcAddress: address})
	if err != nil {
		t.Fatal(err)
	}
	return &spareRequest{
		Args:  []string{"containerd-shim-mxc-v2", "-namespace", "ns1", "-address", address, "-publish-binary", "/usr/bin/containerd", "-id", "c1", "start"},
		Env:   append([]string{"PATH=/usr/bin"}, env...),
		Cwd:   "/run/containerd/io.containerd.runtime.v2.task/ns1/c1",
		Stdin: params,
	}
}

func TestParseStart(t *testing.T) {
	const addr = "/run/containerd/containerd.sock"
	if st, err := parseStart(startRequest(t, addr), addr); err != nil || st.id != "c1" || st.namespace != "ns1" {
		t.Fatalf("parseStart = %+v, %v", st, err)
	}
	for name, tc := range map[string]struct {
		edit func(r *spareRequest)
		want string
	}{
		"another containerd": {func(r *spareRequest) { r.Args[4] = "/other.sock" }, "spare for"},
		"not a start":        {func(r *spareRequest) { r.Args[len(r.Args)-1] = "delete" }, "not a start"},
		"unknown flag":       {func(r *spareRequest) { r.Args[1] = "-bogus" }, "command line"},
		"relative cwd":       {func(r *spareRequest) { r.Cwd = "bundle" }, "not absolute"},
		"spares off":         {func(r *spareRequest) { r.Env = append(r.Env, "MXC_SHIM_SPARE=0") }, "off"},
		"SCHED_CORE":         {func(r *spareRequest) { r.Env = append(r.Env, "SCHED_CORE=1") }, "SCHED_CORE"},
		"no parameters":      {func(r *spareRequest) { r.Stdin = nil }, "older containerd"},
		"other parameters": {func(r *spareRequest) {
			r.Stdin, _ = proto.Marshal(&bootapi.BootstrapParams{InstanceID: "c2", Namespace: "ns1"})
		}, "do not match"},
	} {
		r := startRequest(t, addr)
		tc.edit(r)
		if _, err := parseStart(r, addr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", name, err, tc.want)
		}
	}
}

// listenSpare is what runSpare does before it serves (lockSpare, listen),
// without the prewarm.
func listenSpare(address string) (*spare, error) {
	sp, err := lockSpare(address)
	if err != nil {
		return nil, err
	}
	return sp, sp.listen()
}

// fakeContainerd is an address whose socket file the test controls.
func fakeContainerd(t *testing.T) string {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "containerd.sock")
	if err := os.WriteFile(addr, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return addr
}

// runningSpare is a spare serving in this test process.
type runningSpare struct {
	*spare
	ended  chan struct{}
	became *becoming
}

// wait waits for the spare's end; false on timeout.
func (r *runningSpare) wait(d time.Duration) bool {
	select {
	case <-r.ended:
		return true
	case <-time.After(d):
		return false
	}
}

func spareFor(t *testing.T, addr string) *runningSpare {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root (" + SpareDir + ")")
	}
	sp, err := listenSpare(addr)
	if err != nil {
		t.Fatal(err)
	}
	sp.idle = time.Hour
	r := &runningSpare{spare: sp, ended: make(chan struct{})}
	go func() { r.became = sp.serve(); close(r.ended) }()
	t.Cleanup(func() {
		os.Remove(addr) // ends the spare within spareGonePoll if it still runs
		if !r.wait(2 * spareGonePoll) {
			t.Error("spare did not end")
		}
		os.Remove(spareLockPath(addr))
	})
	return r
}

func ask(t *testing.T, sp *runningSpare, req []byte) (status byte, gone bool, payload string) {
	t.Helper()
	c, err := net.Dial("unix", sp.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 6)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("reply: %v", err)
	}
	p := make([]byte, binary.LittleEndian.Uint32(hdr[2:]))
	if _, err := io.ReadFull(c, p); err != nil {
		t.Fatal(err)
	}
	return hdr[0], hdr[1] == 1, string(p)
}

func TestSpareOnePerContainerd(t *testing.T) {
	addr := fakeContainerd(t)
	if spareRunning(addr) {
		t.Fatal("a spare runs before one was started")
	}
	sp := spareFor(t, addr)
	if sp2, err := listenSpare(addr); err == nil {
		sp2.close()
		t.Fatal("a second spare for the same containerd listened")
	}
	// what spawnSpare checks: a spare holds the lock (also while it
	// starts up, before it listens)
	if !spareRunning(addr) {
		t.Error("spareRunning: false with a spare running")
	}
	sp.close()
	if spareRunning(addr) {
		t.Error("spareRunning: true once the spare closed")
	}
}

// A connection closed without a request and a start the spare cannot do
// leave it waiting; a start of another shim binary ends it, socket and all.
func TestSpareDeclines(t *testing.T) {
	addr := fakeContainerd(t)
	sp := spareFor(t, addr)
	c, err := net.Dial("unix", sp.path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	req := startRequest(t, addr, "SCHED_CORE=1")
	req.Dev, req.Ino = sp.dev, sp.ino
	if st, gone, msg := ask(t, sp, req.encode()); st != spareFallback || gone || !strings.Contains(msg, "SCHED_CORE") {
		t.Errorf("SCHED_CORE: status %d gone %v %q", st, gone, msg)
	}
	req = startRequest(t, addr)
	req.Dev, req.Ino = sp.dev, sp.ino+1
	if st, gone, _ := ask(t, sp, req.encode()); st != spareFallback || !gone {
		t.Errorf("another binary: status %d gone %v", st, gone)
	}
	if !sp.wait(5 * time.Second) {
		t.Fatal("the spare of another binary did not end")
	}
	if sp.became != nil {
		t.Error("the spare became a shim")
	}
	if _, err := os.Stat(sp.path); !os.IsNotExist(err) {
		t.Errorf("spare socket left: %v", err)
	}
}

// A spare whose containerd's socket is gone ends.
func TestSpareEndsWithContainerd(t *testing.T) {
	addr := fakeContainerd(t)
	sp := spareFor(t, addr)
	os.Remove(addr)
	if !sp.wait(2 * spareGonePoll) {
		t.Fatal("spare still waiting")
	}
	if _, err := os.Stat(sp.path); !os.IsNotExist(err) {
		t.Errorf("spare socket left: %v", err)
	}
}

// setCmdline rewrites the command line in the room a spare is started
// with: run in a child of this test started as a spare is.
func TestSetCmdline(t *testing.T) {
	if os.Getenv("MXC_TEST_SETCMDLINE") == "1" {
		setCmdline([]string{"/usr/bin/containerd-shim-mxc-v2", "-namespace", "k8s.io", "-id", strings.Repeat("f", 64), "-address", "/run/containerd/containerd.sock"})
		b, _ := os.ReadFile("/proc/self/cmdline")
		os.Stdout.Write(b)
		os.Exit(0)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Args = append([]string{self, "-test.run=^TestSetCmdline$"}, make([]string, spareArgRoom)...)
	cmd.Env = append(os.Environ(), "MXC_TEST_SETCMDLINE=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	got := string(bytes.TrimRight(out, "\x00"))
	want := strings.Join([]string{"/usr/bin/containerd-shim-mxc-v2", "-namespace", "k8s.io", "-id", strings.Repeat("f", 64), "-address", "/run/containerd/containerd.sock"}, "\x00")
	if got != want {
		t.Errorf("cmdline %q, want %q", got, want)
	}
}

func TestArgArea(t *testing.T) {
	start, end, err := argArea()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, a := range os.Args {
		n += uint64(len(a)) + 1
	}
	if end-start != n {
		t.Errorf("argument area %d bytes, os.Args take %d", end-start, n)
	}
}

func TestSpareEnviron(t *testing.T) {
	env := spareEnviron([]string{"PATH=/bin", "GOGC=40", "MXC_GOGC_BEFORE=", spareSchedEnv + "=3 0 5", "TTRPC_ADDRESS=/x"})
	var sched string
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOGC=") && kv != "GOGC=off" || strings.HasPrefix(kv, "MXC_GOGC_BEFORE=") {
			t.Errorf("kept %q", kv)
		}
		if v, ok := strings.CutPrefix(kv, spareSchedEnv+"="); ok {
			if sched != "" {
				t.Errorf("two %s entries", spareSchedEnv)
			}
			sched = v
		}
	}
	if !slices.Contains(env, "GOGC=off") || !slices.Contains(env, "PATH=/bin") || !slices.Contains(env, "TTRPC_ADDRESS=/x") {
		t.Errorf("environment %q", env)
	}
	// this process's own scheduling, not the one it was given
	if a, err := unix.SchedGetAttr(0, 0); err == nil && sched != fmt.Sprintf("%d %d %d", a.Policy&^unix.SCHED_RESET_ON_FORK, a.Priority, a.Nice) {
		t.Errorf("%s=%q, this process runs with %+v", spareSchedEnv, sched, a)
	}
}

// restoreSched gives every thread the scheduling the spare's spawner had,
// whatever the C constructor set (SCHED_IDLE).
func TestRestoreSched(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Skip(err)
	}
	if before.Policy != 0 { // SCHED_OTHER
		t.Skipf("test runs with policy %d", before.Policy)
	}
	idle := unix.SchedAttr{Policy: 5} // SCHED_IDLE
	if err := unix.SchedSetAttr(0, &idle, 0); err != nil {
		t.Skip(err)
	}
	t.Setenv(spareSchedEnv, fmt.Sprintf("0 0 %d", before.Nice))
	restoreSched()
	after, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if after.Policy != 0 || after.Nice != before.Nice {
		t.Errorf("after restoreSched: policy %d nice %d, want 0 and %d", after.Policy, after.Nice, before.Nice)
	}
	if _, set := os.LookupEnv(spareSchedEnv); set {
		t.Errorf("%s left in the environment", spareSchedEnv)
	}
}

// startChildSpare runs a spare for a fake containerd in a child process,
// as the shim binary runs it, from bin (this test binary or a copy), and
// waits until it listens. It returns the child and the spare's socket.
func startChildSpare(t *testing.T, bin string) (*exec.Cmd, string) {
	t.Helper()
	addr := fakeContainerd(t)
	path := SparePath(addr)
	t.Cleanup(func() { os.Remove(spareLockPath(addr)) })
	cmd := exec.Command(bin, "-test.run=^TestSpareEndsOnSIGTERM$")
	cmd.Env = append(os.Environ(), "MXC_TEST_SPARE_ADDRESS="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", path); err == nil {
			// Garbage, which the spare reads and hangs up on: its accept
			// loop runs, so its signal handler is in place.
			_, _ = c.Write([]byte("not a request"))
			_, err = io.ReadAll(c)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			return cmd, path
		}
		if i == 100 {
			t.Fatal("the spare did not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A spare killed with SIGTERM (an administrator, a clean-up) removes its
// socket: run as a child of this test, as the shim binary runs it.
func TestSpareEndsOnSIGTERM(t *testing.T) {
	if addr := os.Getenv("MXC_TEST_SPARE_ADDRESS"); addr != "" {
		runSpare([]string{"-address", addr})
		os.Exit(3) // runSpare returns only as a task's shim
	}
	if os.Getuid() != 0 {
		t.Skip("needs root (" + SpareDir + ")")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, path := startChildSpare(t, self)
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("spare: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("spare socket left: %v", err)
	}
}

// A spare whose binary is removed (an uninstall) or replaced by a rename
// (an upgrade) ends within spareGonePoll, socket and all.
func TestSpareEndsWhenBinaryRemoved(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (" + SpareDir + ")")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "shim.test")
	if err := os.WriteFile(bin, b, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd, path := startChildSpare(t, bin)
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("spare: %v", err)
		}
	case <-time.After(3 * spareGonePoll):
		t.Fatal("the spare of a removed binary still runs")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("spare socket left: %v", err)
	}
}
