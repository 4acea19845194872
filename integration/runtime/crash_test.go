//go:build linux

package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	h "mxc.dev/mxc/integration/harness"
)

// TestKillDuringCreateThenDeleteForce kills mxc-runtime with SIGKILL at
// spread-out points of `create`; `delete --force` must then leave no state
// dir, cgroup, or process behind.
func TestKillDuringCreateThenDeleteForce(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	rootfs := filepath.Join(b.Dir, "rootfs")
	id := "crash"
	// How long does one create take on this machine right now?
	t0 := time.Now()
	rt.MustRun("create", "--bundle", b.Dir, id)
	span := time.Since(t0) * 6 / 5
	rt.MustRun("delete", "--force", id)
	iterations := 40
	outcomes := map[string]int{}
	create := func(int) []string { return []string{"create", "--bundle", b.Dir, id} }
	rt.KillDuring(span, iterations, create, func(i int) {
		outcomes[rt.Status(id)]++
		if res := rt.Run("delete", "--force", id); res.Err != nil {
			t.Fatalf("iteration %d: delete --force: %v %s", i, res.Err, res.Stderr)
		}
		if _, err := os.Stat(filepath.Join(rt.Root, id)); !os.IsNotExist(err) {
			t.Fatalf("iteration %d: state dir left: %v", i, err)
		}
		assertNoCgroup(t, b)
		if pids := processesIn(rootfs); len(pids) > 0 {
			t.Fatalf("iteration %d: processes left with cwd in the rootfs: %v", i, pids)
		}
	})
	t.Logf("create takes ~%s; status seen after the kill, over %d iterations: %v", span*5/6, iterations, outcomes)
}

// processesIn lists pids whose cwd or root is under dir (a container init
// runs with its cwd in the rootfs until it pivots).
func processesIn(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		for _, l := range []string{"cwd", "root"} {
			if p, err := os.Readlink(filepath.Join("/proc", e.Name(), l)); err == nil && strings.HasPrefix(p, dir) {
				out = append(out, e.Name())
				break
			}
		}
	}
	return out
}

// TestConcurrentVerbsAreSerialised runs creates, starts, kills and deletes
// of one id at once: exactly one create wins, nothing crashes, and the end
// state is clean.
func TestConcurrentVerbsAreSerialised(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	const n = 8
	var wg sync.WaitGroup
	results := make([]h.Result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = rt.Run("create", "--bundle", b.Dir, "race")
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		if r.Code == 0 {
			ok++
		} else if !strings.Contains(r.Stderr, "already exists") {
			t.Errorf("a losing create failed for another reason: %s", r.Stderr)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", ok)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			switch i % 4 {
			case 0:
				rt.Run("start", "race")
			case 1:
				rt.Run("state", "race")
			case 2:
				rt.Run("kill", "race", "KILL")
			case 3:
				rt.Run("delete", "--force", "race")
			}
		}(i)
	}
	wg.Wait()
	rt.MustRun("delete", "--force", "race")
	if _, err := os.Stat(filepath.Join(rt.Root, "race")); !os.IsNotExist(err) {
		t.Fatal("state left after concurrent verbs and delete --force")
	}
	assertNoCgroup(t, b)
}
