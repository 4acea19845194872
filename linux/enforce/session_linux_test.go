//go:build linux

package enforce

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIDMapDirSharedByCreates: one container's teardown (or a create's
// clean-up of a stale mount) must not pull the shared .mxc-idmap directory
// from under another container's create, between the two mkdirs of its
// MkdirAll.
func TestIDMapDirSharedByCreates(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unmount needs root")
	}
	root := t.TempDir()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // container a, created and removed over and over
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = unmountIDMapped(idmapDir(root, "a"))
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 3000; i++ { // container b's create, then its removal
		dst := idmapDir(root, "b")
		if err := os.MkdirAll(dst, 0o711); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if err := unmountIDMapped(dst); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, ".mxc-idmap")); err != nil {
		t.Errorf("the shared directory: %v", err)
	}
}

// TestIDMappedRootfsHelpers: both ways of making the user namespace for
// the session tier's id-mapped rootfs (the cloned child sharing the
// runtime's memory, and the ptrace-stopped exec) give the slot's mapping:
// files of host uid/gid k show as base+k, the helper is reaped and its
// namespace fd not left open.
func TestIDMappedRootfsHelpers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("id-mapped mounts need root")
	}
	for _, helper := range []string{"", "exec"} {
		t.Run("helper="+helper, func(t *testing.T) {
			t.Setenv("MXC_USERNS_HELPER", helper)
			src := t.TempDir()
			for name, id := range map[string]int{"root": 0, "user": 1000} {
				p := filepath.Join(src, name)
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Lchown(p, id, id); err != nil {
					t.Fatal(err)
				}
			}
			root := t.TempDir()
			// Searchable, as a runtime's root must be (mountIDMappedRootfs
			// checks: the agent's uid must reach the rootfs).
			for _, d := range []string{src, root, filepath.Dir(src), filepath.Dir(root)} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			dst := idmapDir(root, "c")
			fds := openFDs(t)
			r := idRange{Base: 1 << 30, Size: 65536}
			if err := mountIDMappedRootfs(root, src, dst, r); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = unmountIDMapped(dst) })
			for name, id := range map[string]uint32{"root": 0, "user": 1000} {
				var st unix.Stat_t
				if err := unix.Stat(filepath.Join(dst, name), &st); err != nil {
					t.Fatal(err)
				}
				if st.Uid != r.Base+id || st.Gid != r.Base+id {
					t.Errorf("%s: owner %d:%d, want %d:%d", name, st.Uid, st.Gid, r.Base+id, r.Base+id)
				}
			}
			if got := openFDs(t); got != fds {
				t.Errorf("open fds: %d before, %d after", fds, got)
			}
			var ws unix.WaitStatus
			if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil); pid > 0 {
				t.Errorf("a child %d was left for others to reap", pid)
			} else if err != nil && !errors.Is(err, unix.ECHILD) {
				t.Errorf("wait4: %v", err)
			}
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
