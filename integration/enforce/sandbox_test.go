//go:build linux

package enforce_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/integration/harness"
)

// sandboxEnv is a work tree for `mxc-runtime sandbox`: a workspace with a
// secret file and a secret directory, an outside directory, a policy.
type sandboxEnv struct {
	dir, ws, outside, policy, probe string
	// env is added to the sandbox's environment (MXC_SANDBOX_FAST picks
	// the C or the Go path, see cpath_test.go).
	env []string
}

func newSandboxEnv(t *testing.T, extraPolicy string) *sandboxEnv {
	t.Helper()
	harness.RequireRoot(t)
	probe := escapeBinary(t)
	dir := t.TempDir()
	e := &sandboxEnv{dir: dir, ws: filepath.Join(dir, "ws"), outside: filepath.Join(dir, "outside"), probe: probe}
	for _, d := range []string{e.ws, e.outside, filepath.Join(e.ws, "secrets"), filepath.Join(dir, "unlisted")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(e.ws, ".env"), secretFile+"\n")
	write(filepath.Join(e.ws, "secrets", "token"), secretDir+"\n")
	write(filepath.Join(e.ws, "public"), publicText+"\n")
	write(filepath.Join(dir, "unlisted", "notes"), "unlisted\n")
	// Everything on the host is readable (the probe, libc, /bin), except
	// the unlisted dir, which lies outside every listed path.
	pol := fmt.Sprintf(`apiVersion: mxc.dev/v1alpha1
kind: AgentPolicy
identity: {agent: sandbox-test}
filesystem:
  readonlyPaths: [/usr, /bin, /lib, /lib64, /etc, %s, %s]
  readwritePaths: [%s]
  deniedPaths: [%s, %s]
%s`, probe, e.outside, e.ws, filepath.Join(e.ws, ".env"), filepath.Join(e.ws, "secrets"), extraPolicy)
	e.policy = filepath.Join(dir, "policy.yaml")
	write(e.policy, pol)
	// The first sandbox of a policy caches its plan in /run/mxc-sandbox;
	// the test's policy is unique to it, so its plan goes with it.
	plan := e.planPath(t)
	t.Cleanup(func() { os.Remove(plan) })
	return e
}

// sandbox runs `mxc-runtime sandbox --policy P -- args` with a timeout.
func (e *sandboxEnv) cmd(ctx context.Context, t *testing.T, args ...string) *osexec.Cmd {
	bin := harness.Binary(t)
	cmd := osexec.CommandContext(ctx, bin, append([]string{"sandbox", "--policy", e.policy, "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "MXC_CONFIG="), e.env...)
	cmd.Dir = e.ws
	return cmd
}

func (e *sandboxEnv) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.cmd(ctx, t, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sandbox %v: %v", args, err)
	}
	return result{Out: strings.TrimSpace(out.String()), Code: code}
}

// TestSandboxFilesystem: read-only host view, the workspace writable, the
// denied paths masked, unlisted paths out of reach.
func TestSandboxFilesystem(t *testing.T) {
	e := newSandboxEnv(t, "")
	cases := []struct {
		name string
		args []string
		want func(result) bool
	}{
		{"workspace writable", []string{e.probe, "write", filepath.Join(e.ws, "out")}, result.OK},
		{"outside read-only", []string{e.probe, "write", filepath.Join(e.outside, "x")}, func(r result) bool { return r.Denied() && strings.Contains(r.Out, "read-only") }},
		{"host /etc read-only", []string{e.probe, "write", "/etc/mxc-sandbox-pwned"}, result.Denied},
		{"denied file masked", []string{e.probe, "read", filepath.Join(e.ws, ".env")}, refusedNoSecret},
		{"denied dir masked", []string{e.probe, "read", filepath.Join(e.ws, "secrets", "token")}, func(r result) bool { return r.Denied() && noSecret(r) }},
		{"denied via symlink", []string{e.probe, "symlink-read", filepath.Join(e.ws, ".env"), filepath.Join(e.ws, "lnk")}, refusedNoSecret},
		{"unlisted unreachable", []string{e.probe, "read", filepath.Join(e.dir, "unlisted", "notes")}, func(r result) bool { return r.Denied() && strings.Contains(r.Out, "permission denied") }},
		{"public readable", []string{e.probe, "read", filepath.Join(e.ws, "public")}, readsPublic},
		{"mount refused", []string{e.probe, "mount", filepath.Join(e.ws, "m")}, result.Denied},
		{"user namespace refused", []string{e.probe, "unshare-user"}, result.Denied},
		{"confined", []string{e.probe, "status"}, func(r result) bool {
			return r.OK() && strings.Contains(r.Out, "NoNewPrivs:1") && strings.Contains(r.Out, "Seccomp:2")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r := e.run(t, c.args...); !c.want(r) {
				t.Errorf("%v: %s", c.args, r)
			}
		})
	}
	if _, err := os.Stat("/etc/mxc-sandbox-pwned"); err == nil {
		os.Remove("/etc/mxc-sandbox-pwned")
		t.Error("the sandbox wrote to the host's /etc")
	}
	if b, _ := os.ReadFile(filepath.Join(e.ws, "out")); string(b) != "pwned\n" {
		t.Errorf("the workspace write did not reach the host: %q", b)
	}
}

// TestSandboxHostIsolation: host processes and the host's abstract sockets
// and network are out of reach; the command's own are not.
func TestSandboxHostIsolation(t *testing.T) {
	e := newSandboxEnv(t, "")
	host := hostSleeper(t)
	name := fmt.Sprintf("/tmp/.X11-unix/X%d", 40000+rand.IntN(20000))
	l, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	pid := strconv.Itoa(host.Process.Pid)
	for _, c := range []struct {
		name      string
		try, twin []string
	}{
		{"signal", []string{e.probe, "kill", pid}, []string{e.probe, "kill-child"}},
		{"ptrace", []string{e.probe, "ptrace", pid}, []string{e.probe, "child"}},
		{"abstract socket", []string{e.probe, "abstract-connect", name}, []string{e.probe, "abstract-self", "mxc-sb-" + strconv.Itoa(rand.IntN(1<<20))}},
		{"keyctl", []string{e.probe, "keyctl"}, []string{e.probe, "noop"}},
		{"bpf", []string{e.probe, "bpf"}, []string{e.probe, "noop"}},
		{"io_uring", []string{e.probe, "io-uring"}, []string{e.probe, "noop"}},
		{"raw socket", []string{e.probe, "raw-socket"}, []string{e.probe, "udp-socket"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := e.run(t, c.try...); !r.Denied() {
				t.Errorf("attempt %v: %s", c.try, r)
			}
			if r := e.run(t, c.twin...); !r.OK() {
				t.Errorf("twin %v: %s", c.twin, r)
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		r := e.run(t, "sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
		if r.Code != 0 || r.Out != "lo" {
			t.Errorf("interfaces in the sandbox: %s, want lo only", r)
		}
		if r := e.run(t, e.probe, "abstract-connect", "x"); !r.Denied() {
			t.Errorf("%s", r)
		}
	})
	if !alive(host) {
		t.Error("the host process was signalled")
	}
}

// TestSandboxPassThrough: exit status, signals, stdin/stdout and the
// terminal are the command's.
func TestSandboxPassThrough(t *testing.T) {
	sandboxPassThrough(t, newSandboxEnv(t, ""))
}

func sandboxPassThrough(t *testing.T, e *sandboxEnv) {
	t.Run("exit status", func(t *testing.T) {
		if r := e.run(t, "sh", "-c", "exit 42"); r.Code != 42 {
			t.Errorf("exit status %d, want 42", r.Code)
		}
	})
	t.Run("not found", func(t *testing.T) {
		if r := e.run(t, "/bin/mxc-does-not-exist"); r.Code != 127 {
			t.Errorf("%s, want 127", r)
		}
	})
	t.Run("stdin and stdout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := e.cmd(ctx, t, "cat")
		cmd.Stdin = strings.NewReader("through the sandbox\n")
		out, err := cmd.Output()
		if err != nil || string(out) != "through the sandbox\n" {
			t.Errorf("cat: %q %v", out, err)
		}
	})
	t.Run("signal", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := e.cmd(ctx, t, "sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("sleep after SIGTERM: %v (%v)", err, ws)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		ptm, pts, err := openPTY()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		defer ptm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := e.cmd(ctx, t, "tty")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pts.Close()
		var buf bytes.Buffer
		done := make(chan struct{})
		go func() { _, _ = buf.ReadFrom(ptm); close(done) }()
		if err := cmd.Wait(); err != nil {
			t.Errorf("tty: %v", err)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		if !strings.Contains(buf.String(), "/dev/pts/") {
			t.Errorf("tty printed %q, want the pty", buf.String())
		}
	})
}

func openPTY() (*os.File, *os.File, error) {
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		ptm.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		ptm.Close()
		return nil, nil, err
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		return nil, nil, err
	}
	return ptm, pts, nil
}

// TestSandboxRefusals: what the sandbox cannot enforce is refused (125)
// before anything runs. (Egress allow rules are enforced for a root caller
// since the sandbox got its own network: integration/egress tests them.)
func TestSandboxRefusals(t *testing.T) {
	for name, extra := range map[string]string{
		"resources":    "resources: {memory: 64Mi}\n",
		"session tier": "isolation: session\n",
		"timeout":      "process: {timeout: 1000}\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := newSandboxEnv(t, extra)
			marker := filepath.Join(e.ws, "ran")
			r := e.run(t, "touch", marker)
			if r.Code != 125 || !strings.Contains(r.Out, "sandbox") {
				t.Errorf("%s, want exit 125 with a reason", r)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the command ran")
			}
		})
	}
}

// TestSandboxUnprivileged: a non-root caller gets the same confinement
// through a user namespace (skipped where unprivileged user namespaces
// are disabled).
func TestSandboxUnprivileged(t *testing.T) {
	e := newSandboxEnv(t, "")
	for _, d := range []string{e.dir, e.ws, e.outside} {
		_ = os.Chown(d, 65534, 65534)
	}
	// The temp dirs above the work tree and the probe are root's (0700).
	for _, d := range []string{filepath.Dir(e.dir), filepath.Dir(filepath.Dir(e.dir)), filepath.Dir(e.probe)} {
		_ = os.Chmod(d, 0o755)
	}
	probe := osexec.Command("unshare", "-U", "true")
	probe.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := probe.Run(); err != nil {
		t.Skipf("unprivileged user namespaces unavailable: %v", err)
	}
	run := func(args ...string) result {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := e.cmd(ctx, t, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *osexec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return result{Out: strings.TrimSpace(string(out)), Code: code}
	}
	if r := run(e.probe, "write", filepath.Join(e.ws, "out")); !r.OK() {
		t.Errorf("workspace write: %s", r)
	}
	if r := run(e.probe, "write", filepath.Join(e.outside, "x")); !r.Denied() {
		t.Errorf("outside write: %s", r)
	}
	if r := run(e.probe, "read", filepath.Join(e.ws, ".env")); !noSecret(r) {
		t.Errorf("denied read: %s", r)
	}
	if r := run(e.probe, "status"); !strings.Contains(r.Out, "NoNewPrivs:1") || !strings.Contains(r.Out, "CapEff:0000000000000000") {
		t.Errorf("status: %s", r)
	}
	if r := run("sh", "-c", "exit 7"); r.Code != 7 {
		t.Errorf("exit status: %s", r)
	}
}
