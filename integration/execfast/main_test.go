//go:build linux

// Package execfast_test tests the exec fast path (linux/execsrv, its C half
// linux/execsrv/fastexec): real containers through the mxc-runtime binary,
// each exec through the fast path compared with the same exec through the
// normal path. Tests need root and busybox-static; without them they skip.
//
// The fast path is forced with MXC_EXEC_FAST=require (an exec the fast
// path should serve fails instead of quietly taking the normal path) and
// the normal path with MXC_EXEC_FAST=0.
package execfast_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/internal/reaper"
)

// TestMain makes the test process a child subreaper and reaps what is
// re-parented to it (exec servers of containers in the host's pid
// namespace, the background starters of exec servers, policy helpers):
// the machines' init does not reap orphans.
func TestMain(m *testing.M) {
	_ = reaper.Subreaper()
	stop := reaper.Background(100 * time.Millisecond)
	code := m.Run()
	stop()
	if escapeDir != "" {
		os.RemoveAll(escapeDir)
	}
	os.Exit(code)
}

// Modes of MXC_EXEC_FAST.
const (
	fast   = "require" // the fast path or an error
	normal = "0"       // the normal path only
)

// result of one mxc-runtime invocation.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
}

// run runs mxc-runtime with MXC_EXEC_FAST=mode and extra environment.
func run(t *testing.T, r *harness.Runtime, mode, stdin string, extraEnv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := r.Command(ctx, args...)
	cmd.Env = append(cmd.Env, "MXC_EXEC_FAST="+mode)
	cmd.Env = append(cmd.Env, extraEnv...)
	out, errOut := tempFile(t), tempFile(t)
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	res := result{Stdout: readBack(out), Stderr: readBack(errOut)}
	if ee, ok := err.(*osexec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mxc-runtime %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("mxc-runtime %s: timed out", strings.Join(args, " "))
	}
	return res
}

func tempFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "io")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readBack(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

// startDetached runs the bundle's process detached, stdio on /dev/null,
// and registers its deletion.
func startDetached(t *testing.T, r *harness.Runtime, b *harness.Bundle, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := r.Command(ctx, "run", "--detach", "--bundle", b.Dir, id)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	errf := tempFile(t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, errf
	t.Cleanup(func() { r.Run("delete", "--force", id) })
	if err := cmd.Run(); err != nil {
		t.Fatalf("run --detach %s: %v\n%s", id, err, readBack(errf))
	}
}

// serverStatus is `exec-server status`.
type serverStatus struct {
	Running     bool   `json:"running"`
	Pid         int    `json:"pid"`
	Unavailable string `json:"unavailable"`
}

func status(t *testing.T, r *harness.Runtime, id string) serverStatus {
	t.Helper()
	res := r.Run("exec-server", "status", id)
	if res.Err != nil {
		t.Fatalf("exec-server status: %v %s", res.Err, res.Stderr)
	}
	var s serverStatus
	if err := json.Unmarshal([]byte(res.Stdout), &s); err != nil {
		t.Fatalf("exec-server status %q: %v", res.Stdout, err)
	}
	return s
}

// startServer starts the container's exec server explicitly.
func startServer(t *testing.T, r *harness.Runtime, id string) serverStatus {
	t.Helper()
	r.MustRun("exec-server", "start", id)
	s := status(t, r, id)
	if !s.Running {
		t.Fatalf("exec server not running after start: %+v", s)
	}
	return s
}

// waitServer waits until the container's exec server runs (one started in
// the background by a normal-path exec).
func waitServer(t *testing.T, r *harness.Runtime, id string) serverStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := status(t, r, id)
		if s.Running {
			return s
		}
		if s.Unavailable != "" {
			t.Fatalf("no exec server: %s", s.Unavailable)
		}
		if time.Now().After(deadline) {
			t.Fatal("the exec server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nsPid is a host process's pid in its innermost pid namespace.
func nsPid(t *testing.T, hostPid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hostPid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
			f := strings.Fields(v)
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	t.Fatal("no NSpid")
	return 0
}

// processGone reports whether pid no longer runs (gone or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// The escape battery's probe (integration/enforce/testdata/escape).
var (
	escapeOnce sync.Once
	escapeBin  string
	escapeDir  string
	escapeErr  error
)

func escapeBinary(t *testing.T) string {
	t.Helper()
	escapeOnce.Do(func() {
		escapeDir, escapeErr = os.MkdirTemp("", "mxc-execfast-escape-")
		if escapeErr != nil {
			return
		}
		escapeBin = filepath.Join(escapeDir, "escape")
		cmd := osexec.Command("go", "build", "-trimpath", "-o", escapeBin, "../enforce/testdata/escape")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			escapeErr = fmt.Errorf("build the escape probe: %v\n%s", err, out)
		}
	})
	if escapeErr != nil {
		t.Fatal(escapeErr)
	}
	return escapeBin
}
