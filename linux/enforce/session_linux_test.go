//go:build linux

package enforce

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
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
