package monitor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

func TestKeyValue(t *testing.T) {
	f := filepath.Join(t.TempDir(), "memory.events")
	if err := os.WriteFile(f, []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		want uint64
		ok   bool
	}{
		{"oom_kill", 2, true},
		{"oom", 1, true},
		{"max", 3, true},
		{"populated", 0, false},
	} {
		if v, ok := keyValue(f, tc.key); v != tc.want || ok != tc.ok {
			t.Errorf("keyValue(%s) = %d, %v, want %d, %v", tc.key, v, ok, tc.want, tc.ok)
		}
	}
	if _, ok := keyValue(filepath.Join(t.TempDir(), "none"), "oom_kill"); ok {
		t.Error("a missing file reads as ok")
	}
}

// TestNotifyOOM runs `tail /dev/zero` (which buffers without end) in a
// memory cgroup of 16 MiB made for the test: the watch must report the OOM
// kill, and end when the cgroup is removed.
func TestNotifyOOM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (makes a memory cgroup)")
	}
	name := fmt.Sprintf("mxc-oomwatch-%d", os.Getpid())
	var dir string
	var paths map[string]string
	limits := map[string]string{}
	if cgroups.IsCgroup2UnifiedMode() {
		dir = filepath.Join("/sys/fs/cgroup", name)
		paths = map[string]string{"": dir}
		limits["memory.max"] = "16M"
		limits["memory.swap.max"] = "0"
	} else {
		dir = filepath.Join("/sys/fs/cgroup/memory", name)
		paths = map[string]string{"memory": dir}
		limits["memory.limit_in_bytes"] = "16M"
		limits["memory.memsw.limit_in_bytes"] = "16M"
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("no memory cgroup here: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	for _, f := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.max", "memory.swap.max"} {
		if v, ok := limits[f]; ok {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil && f != "memory.memsw.limit_in_bytes" && f != "memory.swap.max" {
				t.Fatalf("%s: %v", f, err)
			}
		}
	}
	ch, err := notifyOOM(paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec tail /dev/zero`, "sh", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("the watch ended before the OOM")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no OOM event in 20s")
	}
	_ = cmd.Wait()
	// The cgroup going away ends the watch (v1: the eventfd fires and
	// cgroup.event_control is gone; v2: populated 0 came with the exit).
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the watch did not end with its cgroup")
		}
	}
}
