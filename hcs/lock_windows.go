//go:build windows

package hcs

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// lock serializes verbs on one container (create against delete, start
// against kill) with a byte-range lock on <root>/<id>.lock. The lock is
// released by Windows when the process exits, so a killed verb never leaves
// the container locked.
type lock struct {
	f    *os.File
	path string
}

func acquireLock(root, id string) (*lock, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("state root: %w", err)
	}
	path := filepath.Join(root, id+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	ol := new(windows.Overlapped)
	if err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, ol); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	return &lock{f: f, path: path}, nil
}

func (l *lock) release() {
	if l == nil {
		return
	}
	ol := new(windows.Overlapped)
	_ = windows.UnlockFileEx(windows.Handle(l.f.Fd()), 0, 1, 0, ol)
	l.f.Close()
}

// releaseAndRemove drops the lock file too (after delete).
func (l *lock) releaseAndRemove() {
	if l == nil {
		return
	}
	l.release()
	_ = os.Remove(l.path)
}
