package cgkill

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestAll puts a sleeping process in a pids cgroup made for the test and
// freezes it (v1 freezer): All must kill it anyway, and return once the
// cgroup is empty.
func TestAll(t *testing.T) { testAll(t, "") }

// TestAllReachesSubCgroups: the process sits in a sub-cgroup, frozen by
// itself; All is given only the container's cgroups, as the monitor and
// delete give it.
func TestAllReachesSubCgroups(t *testing.T) { testAll(t, "sub/inner") }

func testAll(t *testing.T, sub string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (makes cgroups)")
	}
	name := fmt.Sprintf("mxc-cgkill-%d", os.Getpid())
	paths := map[string]string{}  // what All gets
	leaves := map[string]string{} // where the process is
	for _, ctrl := range []string{"pids", "freezer"} {
		d := filepath.Join("/sys/fs/cgroup", ctrl, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			continue
		}
		t.Cleanup(func() { _ = os.Remove(d) })
		leaf := d
		if sub != "" {
			leaf = filepath.Join(d, sub)
			if err := os.MkdirAll(leaf, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				for p := leaf; p != d; p = filepath.Dir(p) {
					_ = os.Remove(p)
				}
			})
		}
		paths[ctrl] = d
		leaves[ctrl] = leaf
	}
	if len(paths) == 0 {
		t.Skip("no v1 pids or freezer hierarchy here")
	}
	cmd := exec.Command("/bin/sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if p, ok := leaves["freezer"]; ok {
			_ = os.WriteFile(filepath.Join(p, "freezer.state"), []byte("THAWED"), 0o644)
		}
		<-done
	})
	for _, p := range leaves {
		if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if p, ok := leaves["freezer"]; ok {
		if err := os.WriteFile(filepath.Join(p, "freezer.state"), []byte("FROZEN"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	All(paths, 100)
	select {
	case <-done:
		done <- nil // for the clean-up
	case <-time.After(5 * time.Second):
		t.Fatal("the process in the cgroup survived All")
	}
	for _, p := range leaves {
		if b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs")); len(b) != 0 {
			t.Errorf("%s still lists %q", p, b)
		}
	}
}
