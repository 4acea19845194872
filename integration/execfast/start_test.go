//go:build linux

package execfast_test

import (
	"context"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// start runs `start id` with MXC_START_FAST=mode (stdio on files).
func start(t *testing.T, r *harness.Runtime, mode, id string, extraArgs ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := r.Command(ctx, append(append([]string{"start"}, extraArgs...), id)...)
	cmd.Env = append(cmd.Env, "MXC_START_FAST="+mode, "MXC_START_FAST_DEBUG=1")
	out, errOut := tempFile(t), tempFile(t)
	cmd.Stdout, cmd.Stderr = out, errOut
	err := cmd.Run()
	res := result{Stdout: readBack(out), Stderr: readBack(errOut)}
	if ee, ok := err.(*osexec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mxc-runtime start %s: %v", id, err)
	}
	return res
}

// create makes container id from b, its process's output into a file.
func create(t *testing.T, r *harness.Runtime, b *harness.Bundle, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := r.Command(ctx, "create", "--bundle", b.Dir, id)
	cmd.Stdout, cmd.Stderr = f, f
	t.Cleanup(func() { r.Run("delete", "--force", id) })
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out)
		t.Fatalf("create %s: %v\n%s", id, err, b)
	}
	return out
}

// TestStartFastPath: a created container started without Go runs its
// process, and start leaves what the Go CLI's start leaves.
func TestStartFastPath(t *testing.T) {
	r := harness.NewRuntime(t)
	b := harness.NewBundle(t, "sh", "-c", "echo started-$$; sleep 600")
	id := newID("start")
	out := create(t, r, b, id)
	res := start(t, r, fast, id)
	if res.Code != 0 || !strings.Contains(res.Stderr, "start: fast path") {
		t.Fatalf("start: %s", res)
	}
	if got := r.Status(id); got != "running" {
		t.Fatalf("status after start: %q", got)
	}
	if _, err := os.Stat(filepath.Join(r.Root, id, "exec.fifo")); !os.IsNotExist(err) {
		t.Fatalf("exec.fifo after start: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if strings.Contains(string(b), "started-1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the process did not run (pid 1 in its namespace): %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A second start is the Go CLI's to refuse, worded as always.
	again, normalAgain := start(t, r, "", id), start(t, r, normal, id)
	if again.Code == 0 || again.Code != normalAgain.Code || !strings.Contains(again.Stderr, "already running") {
		t.Fatalf("second start: %s; normal path: %s", again, normalAgain)
	}
	if res := start(t, r, fast, id); res.Code != 255 || !strings.Contains(res.Stderr, "not in the created state") {
		t.Fatalf("second start, fast path required: %s", res)
	}
}

// TestStartFastPathAgentPolicy: the agent's process starts under its
// policy through the fast path (start only releases the init; everything
// the policy puts on the process is done by then).
func TestStartFastPathAgentPolicy(t *testing.T) {
	r := harness.NewRuntime(t)
	b := harness.NewBundle(t, "sh", "-c", "echo x > /etc/owned 2>/dev/null && echo wrote || echo refused; echo ok > /tmp/w && echo tmp-ok; sleep 600")
	pol := harness.BatteryPolicy("start-agent", spec.TierProcess)
	raw, err := json.Marshal(pol)
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.Annotations = map[string]string{"io.mxc.policy": string(raw)}
	b.Save(t)
	id := newID("start-agent")
	out := create(t, r, b, id)
	if res := start(t, r, fast, id); res.Code != 0 {
		t.Fatalf("start: %s", res)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := os.ReadFile(out)
		if strings.Contains(string(got), "tmp-ok") {
			if !strings.Contains(string(got), "refused") || strings.Contains(string(got), "wrote") {
				t.Fatalf("write outside the policy's paths: %q", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's process did not run: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartFastPathHandsOver: whatever the fast path does not serve
// reaches the Go CLI, which answers exactly as with the fast path off.
func TestStartFastPathHandsOver(t *testing.T) {
	r := harness.NewRuntime(t)
	same := func(t *testing.T, id string, args ...string) result {
		t.Helper()
		a, n := start(t, r, "", id, args...), start(t, r, normal, id, args...)
		strip := func(s string) string {
			var keep []string
			for _, l := range strings.Split(s, "\n") {
				if !strings.HasPrefix(l, "mxc-runtime: start: normal path:") {
					keep = append(keep, strings.TrimSpace(stripTime(l)))
				}
			}
			return strings.Join(keep, "\n")
		}
		if a.Code != n.Code || a.Stdout != n.Stdout || strip(a.Stderr) != strip(n.Stderr) {
			t.Fatalf("default: %s\nfast path off: %s", a, n)
		}
		return a
	}
	t.Run("no such container", func(t *testing.T) {
		if res := same(t, "nope-"+newID("x")); res.Code == 0 {
			t.Fatalf("%s", res)
		}
	})
	t.Run("help", func(t *testing.T) {
		if res := same(t, "--help"); res.Code != 0 || !strings.Contains(res.Stdout, "start the process") {
			t.Fatalf("%s", res)
		}
	})
	t.Run("paused", func(t *testing.T) {
		b := harness.NewBundle(t, "true")
		id := newID("start-paused")
		create(t, r, b, id)
		r.MustRun("pause", id)
		if res := same(t, id); res.Code == 0 || !strings.Contains(res.Stderr, "paused") {
			t.Fatalf("%s", res)
		}
		if res := start(t, r, fast, id); res.Code != 255 || !strings.Contains(res.Stderr, "paused") {
			t.Fatalf("fast path required: %s", res)
		}
		r.MustRun("resume", id)
		if res := start(t, r, fast, id); res.Code != 0 {
			t.Fatalf("start after resume: %s", res)
		}
	})
	t.Run("stopped before start", func(t *testing.T) {
		b := harness.NewBundle(t, "true")
		id := newID("start-dead")
		create(t, r, b, id)
		r.MustRun("kill", id, "KILL")
		if err := r.WaitStatus(id, "stopped", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if res := same(t, id); res.Code == 0 {
			t.Fatalf("%s", res)
		}
	})
	t.Run("lock held", func(t *testing.T) {
		b := harness.NewBundle(t, "true")
		id := newID("start-locked")
		create(t, r, b, id)
		f, err := os.OpenFile(filepath.Join(r.Root, ".locks", id), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		if res := start(t, r, fast, id); res.Code != 255 || !strings.Contains(res.Stderr, "lock") {
			t.Fatalf("fast path required, lock held: %s", res)
		}
		// The default waits for the lock, in the Go CLI.
		go func() {
			time.Sleep(300 * time.Millisecond)
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
		}()
		res := start(t, r, "", id)
		if res.Code != 0 || !strings.Contains(res.Stderr, "normal path: another verb holds the container's lock") {
			t.Fatalf("start, lock held for 300 ms: %s", res)
		}
	})
}

// stripTime drops logrus's time="..." field.
func stripTime(l string) string {
	if i := strings.Index(l, `time="`); i >= 0 {
		if j := strings.Index(l[i+6:], `"`); j >= 0 {
			return l[:i] + l[i+6+j+1:]
		}
	}
	return l
}
