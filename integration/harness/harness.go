//go:build linux

// Package harness is what mxc's integration tests share: the mxc-runtime
// binary under test, busybox root filesystems built from Debian's
// busybox-static, OCI bundles, and a state root per test with teardown that
// runs even when the test fails.
//
// Tests need root; without it they are skipped with a message (CI is root).
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Busybox is the static busybox the root filesystems are made of.
const Busybox = "/bin/busybox"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns the mxc-runtime under test: $MXC_RUNTIME if set, else it
// is built once per test process with `make build` into the repo's bin/.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("MXC_RUNTIME"); p != "" {
			binPath = p
			return
		}
		root := RepoRoot()
		cmd := exec.Command("make", "-s", "build")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("make build: %v\n%s", err, out)
			return
		}
		binPath = filepath.Join(root, "bin", "mxc-runtime")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// RequireRoot skips the test when not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (integration tests run real containers)")
	}
	if _, err := os.Stat(Busybox); err != nil {
		t.Skip("needs busybox-static at " + Busybox)
	}
}

var (
	rootfsOnce sync.Once
	rootfsTar  string
	rootfsErr  error
)

// MakeRootfs fills dir with a busybox root filesystem: applets as hard
// links (so masking one applet does not mask busybox), /etc/passwd and
// group with root, nobody and an "agent" user (uid 1000).
func MakeRootfs(dir string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev", "home/agent", "workspace", "var/run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	_ = os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	_ = os.Chown(filepath.Join(dir, "home/agent"), 1000, 1000)
	_ = os.Chown(filepath.Join(dir, "workspace"), 1000, 1000)
	bb := filepath.Join(dir, "bin/busybox")
	data, err := os.ReadFile(Busybox)
	if err != nil {
		return err
	}
	if err := os.WriteFile(bb, data, 0o755); err != nil {
		return err
	}
	// The applet list from the source binary, not the copy just written:
	// a fork elsewhere in the test binary (parallel containers) can hold
	// the copy's write fd for a moment, and exec'ing it then fails with
	// ETXTBSY (golang/go#22315).
	out, err := exec.Command(Busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, a := range strings.Fields(string(out)) {
		p := filepath.Join(dir, a)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Link(bb, p); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":      "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":       "root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n",
		"etc/hostname":    "mxc\n",
		"etc/hosts":       "127.0.0.1 localhost\n",
		"etc/resolv.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Bundle is an OCI bundle made for one test.
type Bundle struct {
	Dir  string
	Spec *specs.Spec
}

// NewBundle makes a bundle in a temp dir with a fresh busybox rootfs and
// runc's default spec running args (no terminal). Edit b.Spec, then Save.
func NewBundle(t testing.TB, args ...string) *Bundle {
	t.Helper()
	dir := t.TempDir()
	if err := MakeRootfs(filepath.Join(dir, "rootfs")); err != nil {
		t.Fatalf("make rootfs: %v", err)
	}
	out, err := exec.Command(Binary(t), "spec", "--bundle", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mxc-runtime spec: %v: %s", err, out)
	}
	b := &Bundle{Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &b.Spec); err != nil {
		t.Fatal(err)
	}
	b.Spec.Process.Terminal = false
	// runc's example spec has a read-only rootfs; tests write to /tmp.
	b.Spec.Root.Readonly = false
	// Cgroup paths are global: two tests (or two packages' tests running in
	// parallel) using the same container id must not share a cgroup. Each
	// bundle gets its own path, so run one container per bundle at a time.
	b.Spec.Linux.CgroupsPath = fmt.Sprintf("/mxc-test/%s-%d", strings.TrimPrefix(filepath.Base(filepath.Dir(dir)), "Test"), time.Now().UnixNano())
	if len(args) > 0 {
		b.Spec.Process.Args = args
	}
	b.Save(t)
	return b
}

// Save writes b.Spec to config.json.
func (b *Bundle) Save(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	rootPrefix = "mxc-test-"
	ownerFile  = ".owner"
)

var sweepOnce sync.Once

// selfIdentity is "pid starttime" of this process: a pid alone may be reused.
func selfIdentity() string { return processIdentity(os.Getpid()) }

func processIdentity(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return ""
	}
	return fmt.Sprintf("%d %s", pid, f[19])
}

// sweepStale force-deletes the containers of test roots whose owning test
// process is gone (a run killed by its timeout), then removes those roots.
// Roots of live test processes (other packages running now) are left alone.
func sweepStale(bin string) {
	roots, _ := filepath.Glob("/run/" + rootPrefix + "*")
	for _, root := range roots {
		owner, err := os.ReadFile(filepath.Join(root, ownerFile))
		if err == nil {
			var pid int
			fmt.Sscanf(string(owner), "%d", &pid)
			if pid > 0 && processIdentity(pid) == string(owner) {
				continue // still running
			}
		} else if fi, err := os.Stat(root); err != nil || time.Since(fi.ModTime()) < time.Hour {
			continue // no owner file yet: possibly being created right now
		}
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.IsDir() && e.Name()[0] != '.' {
				_ = exec.Command(bin, "--root", root, "delete", "--force", e.Name()).Run()
			}
		}
		_ = os.RemoveAll(root)
	}
}

// Runtime runs mxc-runtime with its own --root, removed with every
// container in it when the test ends.
type Runtime struct {
	t      testing.TB
	Bin    string
	Root   string
	Config string // --config (node config); empty means none
	// Timeout bounds each invocation (default 60s).
	Timeout time.Duration
	// Env is added to each invocation's environment.
	Env []string
}

// NewRuntime returns a Runtime with a fresh state root and registers its
// teardown: every container under it is force-deleted, then the root removed.
func NewRuntime(t testing.TB) *Runtime {
	t.Helper()
	RequireRoot(t)
	sweepOnce.Do(func() { sweepStale(Binary(t)) })
	root, err := os.MkdirTemp("/run", rootPrefix)
	if err != nil {
		t.Fatal(err)
	}
	// The owner file lets a later run remove what a crashed run left (a test
	// binary killed by -timeout runs no t.Cleanup).
	if err := os.WriteFile(filepath.Join(root, ownerFile), []byte(selfIdentity()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Runtime{t: t, Bin: Binary(t), Root: root, Timeout: 60 * time.Second}
	t.Cleanup(func() { r.Teardown() })
	return r
}

// Teardown force-deletes every container under the root and removes it.
func (r *Runtime) Teardown() {
	ents, _ := os.ReadDir(r.Root)
	for _, e := range ents {
		if e.IsDir() && e.Name()[0] != '.' {
			if res := r.Run("delete", "--force", e.Name()); res.Err != nil {
				r.t.Logf("teardown: delete --force %s: %v %s", e.Name(), res.Err, res.Stderr)
			}
		}
	}
	// A mount left under the root (a leak of the runtime's) fails the
	// test, and is detached first: RemoveAll would descend into it and
	// delete what it shows (an id-mapped view of a bundle's rootfs).
	for _, m := range MountsUnder(r.Root) {
		r.t.Errorf("teardown: mount left under the state root: %s", m)
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			r.t.Errorf("teardown: unmount %s: %v; %s kept", m, err, r.Root)
			return
		}
	}
	if err := os.RemoveAll(r.Root); err != nil {
		r.t.Logf("teardown: %v", err)
	}
}

// MountsUnder lists the mount points of this mount namespace at or below
// dir, deepest first.
func MountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// Result of one invocation.
type Result struct {
	Stdout, Stderr string
	Code           int
	Err            error
}

// Args returns the global flags followed by args.
func (r *Runtime) Args(args ...string) []string {
	g := []string{"--root", r.Root}
	if r.Config != "" {
		g = append(g, "--config", r.Config)
	}
	return append(g, args...)
}

// Command returns an exec.Cmd for mxc-runtime with the global flags.
func (r *Runtime) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.Bin, r.Args(args...)...)
	cmd.Env = append(append(os.Environ(), "MXC_CONFIG="), r.Env...)
	return cmd
}

// Run runs mxc-runtime with args (stdin empty) and collects the result.
func (r *Runtime) Run(args ...string) Result { return r.RunIn("", args...) }

// RunIn is Run with stdin.
func (r *Runtime) RunIn(stdin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()
	cmd := r.Command(ctx, args...)
	// Files, not pipes: a detached container inherits mxc-runtime's stdio
	// and would hold a pipe open, so Wait would block until it exits.
	outF, errF, err := tempPair()
	if err != nil {
		r.t.Fatal(err)
	}
	defer outF.Close()
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.Stdin = strings.NewReader(stdin)
	err = cmd.Run()
	res := Result{Stdout: readBack(outF), Stderr: readBack(errF), Err: err}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		res.Code = -1
	}
	if ctx.Err() != nil {
		res.Err = fmt.Errorf("mxc-runtime %s: timed out after %s", strings.Join(args, " "), r.Timeout)
	}
	return res
}

func tempPair() (*os.File, *os.File, error) {
	a, err := os.CreateTemp("", "mxc-out-")
	if err != nil {
		return nil, nil, err
	}
	b, err := os.CreateTemp("", "mxc-err-")
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	os.Remove(a.Name())
	os.Remove(b.Name())
	return a, b, nil
}

func readBack(f *os.File) string {
	var buf bytes.Buffer
	_, _ = f.Seek(0, 0)
	_, _ = buf.ReadFrom(f)
	return buf.String()
}

// MustRun runs and fails the test on a non-zero exit.
func (r *Runtime) MustRun(args ...string) Result {
	r.t.Helper()
	res := r.Run(args...)
	if res.Err != nil {
		r.t.Fatalf("mxc-runtime %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Err, res.Stdout, res.Stderr)
	}
	return res
}

// State returns the parsed `state` of id.
func (r *Runtime) State(id string) (map[string]any, error) {
	res := r.Run("state", id)
	if res.Err != nil {
		return nil, fmt.Errorf("%v: %s", res.Err, res.Stderr)
	}
	var m map[string]any
	err := json.Unmarshal([]byte(res.Stdout), &m)
	return m, err
}

// Status returns the container's status string ("" if state fails).
func (r *Runtime) Status(id string) string {
	m, err := r.State(id)
	if err != nil {
		return ""
	}
	s, _ := m["status"].(string)
	return s
}

// WaitStatus polls until the container reaches want or the timeout passes.
func (r *Runtime) WaitStatus(id, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got := r.Status(id)
		if got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: status %q, want %q after %s", id, got, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KillDuring runs the runtime n times with the arguments args(i) returns
// (which may prepare the iteration), SIGKILLs it at points spread evenly
// over span (how long one such call takes here, plus a margin) with up to
// a millisecond of jitter, and calls after(i) once the killed process is
// reaped.
func (r *Runtime) KillDuring(span time.Duration, n int, args func(i int) []string, after func(i int)) {
	r.t.Helper()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := r.Command(ctx, args(i)...)
		if err := cmd.Start(); err != nil {
			cancel()
			r.t.Fatal(err)
		}
		time.Sleep(span*time.Duration(i)/time.Duration(n) + time.Duration(rng.Intn(1000))*time.Microsecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cancel()
		after(i)
	}
}
