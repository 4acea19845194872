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

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// verb runs `VERB [extraArgs] id` with MXC_<VERB>_FAST=mode and its debug
// output on (stdio on files).
func verb(t *testing.T, r *harness.Runtime, name, mode, id string, extraArgs ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := r.Command(ctx, append(append([]string{name}, extraArgs...), id)...)
	env := "MXC_" + strings.ToUpper(name) + "_FAST"
	cmd.Env = append(cmd.Env, env+"="+mode, env+"_DEBUG=1")
	out, errOut := tempFile(t), tempFile(t)
	cmd.Stdout, cmd.Stderr = out, errOut
	err := cmd.Run()
	res := result{Stdout: readBack(out), Stderr: readBack(errOut)}
	if ee, ok := err.(*osexec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mxc-runtime %s %s: %v", name, id, err)
	}
	return res
}

func start(t *testing.T, r *harness.Runtime, mode, id string, extraArgs ...string) result {
	t.Helper()
	return verb(t, r, "start", mode, id, extraArgs...)
}

// sameAsNormal runs the verb with the fast path on (default) and off, and
// fails unless both answer alike (the debug line and log times aside).
func sameAsNormal(t *testing.T, r *harness.Runtime, name, id string, args ...string) result {
	t.Helper()
	a, n := verb(t, r, name, "", id, args...), verb(t, r, name, normal, id, args...)
	strip := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "mxc-runtime: "+name+": normal path:") {
				keep = append(keep, strings.TrimSpace(stripTime(l)))
			}
		}
		return strings.Join(keep, "\n")
	}
	if a.Code != n.Code || a.Stdout != n.Stdout || strip(a.Stderr) != strip(n.Stderr) {
		t.Fatalf("%s, default: %s\nfast path off: %s", name, a, n)
	}
	return a
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
		return sameAsNormal(t, r, "start", id, args...)
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

// stoppedContainer creates and starts b as id and waits until it stopped;
// it returns the container's cgroup paths.
func stoppedContainer(t *testing.T, r *harness.Runtime, b *harness.Bundle, id string) []string {
	t.Helper()
	create(t, r, b, id)
	st, err := r.State(id)
	if err != nil {
		t.Fatal(err)
	}
	pid := int(st["pid"].(float64))
	var paths []string
	if data, err := os.ReadFile(filepath.Join(r.Root, id, "state.json")); err == nil {
		var ls struct {
			CgroupPaths map[string]string `json:"cgroup_paths"`
		}
		if json.Unmarshal(data, &ls) == nil {
			for _, p := range ls.CgroupPaths {
				paths = append(paths, p)
			}
		}
	}
	if len(paths) == 0 {
		t.Fatalf("container %s (pid %d): no cgroup paths in its state", id, pid)
	}
	if res := start(t, r, "", id); res.Code != 0 {
		t.Fatalf("start: %s", res)
	}
	if err := r.WaitStatus(id, "stopped", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return paths
}

// gone fails unless the container left nothing: state dir, lock file,
// cgroups.
func gone(t *testing.T, r *harness.Runtime, id string, cgroups []string) {
	t.Helper()
	for _, p := range append([]string{filepath.Join(r.Root, id), filepath.Join(r.Root, ".locks", id)}, cgroups...) {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after delete (%v)", p, err)
		}
	}
	if res := r.Run("state", id); res.Code == 0 {
		t.Errorf("state after delete: %s", res.Stdout)
	}
}

// handedOver: delete of the stopped container id is the Go CLI's, for
// reason: with the fast path required it fails saying so, by default the
// Go CLI deletes the container, and nothing is left.
func handedOver(t *testing.T, r *harness.Runtime, id, reason string, cgroups []string) {
	t.Helper()
	if res := verb(t, r, "delete", fast, id); res.Code != 255 || !strings.Contains(res.Stderr, reason) {
		t.Fatalf("fast path required: %s", res)
	}
	if res := verb(t, r, "delete", "", id); res.Code != 0 || !strings.Contains(res.Stderr, "normal path: "+reason) {
		t.Fatalf("delete: %s", res)
	}
	gone(t, r, id, cgroups)
}

// TestDeleteFastPath: a stopped container without a policy is deleted
// without Go, and leaves what the Go CLI's delete leaves: nothing.
func TestDeleteFastPath(t *testing.T) {
	r := harness.NewRuntime(t)
	b := harness.NewBundle(t, "true")
	id := newID("delete")
	cgroups := stoppedContainer(t, r, b, id)
	res := verb(t, r, "delete", fast, id)
	if res.Code != 0 || !strings.Contains(res.Stderr, "delete: fast path") {
		t.Fatalf("delete: %s", res)
	}
	gone(t, r, id, cgroups)
	// --force (podman's way) changes nothing for a stopped container.
	id = newID("delete-force")
	cgroups = stoppedContainer(t, r, harness.NewBundle(t, "true"), id)
	if res := verb(t, r, "delete", fast, id, "--force"); res.Code != 0 || !strings.Contains(res.Stderr, "delete: fast path") {
		t.Fatalf("delete --force: %s", res)
	}
	gone(t, r, id, cgroups)
}

// TestDeleteFastPathHandsOver: what the fast path leaves to the Go CLI
// reaches it before anything is removed (or, for a cgroup one rmdir does
// not remove, with what is left), and ends as with the fast path off.
func TestDeleteFastPathHandsOver(t *testing.T) {
	r := harness.NewRuntime(t)
	t.Run("no such container", func(t *testing.T) {
		if res := sameAsNormal(t, r, "delete", "nope-"+newID("x")); res.Code == 0 {
			t.Fatalf("%s", res)
		}
	})
	t.Run("running", func(t *testing.T) {
		b := harness.NewBundle(t, "sleep", "600")
		id := newID("delete-running")
		create(t, r, b, id)
		if res := start(t, r, "", id); res.Code != 0 {
			t.Fatalf("start: %s", res)
		}
		if res := sameAsNormal(t, r, "delete", id); res.Code == 0 || !strings.Contains(res.Stderr, "not stopped") {
			t.Fatalf("%s", res)
		}
		if res := verb(t, r, "delete", fast, id); res.Code != 255 || !strings.Contains(res.Stderr, "not stopped") {
			t.Fatalf("fast path required: %s", res)
		}
		res := verb(t, r, "delete", "", id, "-f")
		if res.Code != 0 || !strings.Contains(res.Stderr, "normal path: the container is not stopped") {
			t.Fatalf("delete -f of a running container (the Go CLI kills it): %s", res)
		}
		gone(t, r, id, nil)
	})
	t.Run("agent policy", func(t *testing.T) {
		b := harness.NewBundle(t, "true")
		raw, err := json.Marshal(harness.BatteryPolicy("delete-agent", spec.TierProcess))
		if err != nil {
			t.Fatal(err)
		}
		b.Spec.Annotations = map[string]string{"io.mxc.policy": string(raw)}
		b.Save(t)
		id := newID("delete-agent")
		handedOver(t, r, id, "an agent policy", stoppedContainer(t, r, b, id))
	})
	t.Run("poststop hook", func(t *testing.T) {
		b := harness.NewBundle(t, "true")
		mark := filepath.Join(t.TempDir(), "poststop")
		b.Spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo ran > " + mark}}}}
		b.Save(t)
		id := newID("delete-hook")
		handedOver(t, r, id, "poststop hooks", stoppedContainer(t, r, b, id))
		if _, err := os.Stat(mark); err != nil {
			t.Fatalf("the poststop hook did not run: %v", err)
		}
	})
	t.Run("host pid namespace", func(t *testing.T) {
		b := harness.NewBundle(t, "true")
		var ns []specs.LinuxNamespace
		for _, n := range b.Spec.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				ns = append(ns, n)
			}
		}
		b.Spec.Linux.Namespaces = ns
		b.Save(t)
		id := newID("delete-hostpid")
		handedOver(t, r, id, "no pid namespace of its own", stoppedContainer(t, r, b, id))
	})
	t.Run("sub-cgroup", func(t *testing.T) {
		b := harness.NewBundle(t, "true")
		id := newID("delete-subcg")
		cgroups := stoppedContainer(t, r, b, id)
		// A child cgroup in one hierarchy: one rmdir does not remove it.
		child := filepath.Join(cgroups[len(cgroups)-1], "child")
		if err := os.Mkdir(child, 0o755); err != nil {
			t.Fatal(err)
		}
		res := verb(t, r, "delete", "", id)
		if res.Code != 0 || !strings.Contains(res.Stderr, "normal path: a cgroup that one rmdir does not remove") {
			t.Fatalf("delete: %s", res)
		}
		gone(t, r, id, append(cgroups, child))
	})
}
