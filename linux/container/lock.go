//go:build linux

package container

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Lock serialises every verb that changes one container. It is an flock on
// <root>/.locks/<id>; the file is removed by the delete that holds it, and a
// waiter that then gets the lock on the removed inode notices and retries on
// the new file, so two callers never both believe they hold the lock.
type Lock struct {
	f    *os.File
	path string
}

// AcquireLock blocks until it holds the lock for id under root.
func AcquireLock(root, id string) (*Lock, error) {
	return acquire(root, id, -1)
}

// TryAcquireLock is AcquireLock giving up after wait: (nil, nil) then. For
// the best-effort work of a verb that another lock holder may be waiting
// for (an OCI hook that create or start runs may call exec).
func TryAcquireLock(root, id string, wait time.Duration) (*Lock, error) {
	return acquire(root, id, wait)
}

// acquire takes the lock, waiting for ever when wait < 0.
func acquire(root, id string, wait time.Duration) (*Lock, error) {
	dir := filepath.Join(root, ".locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock dir: %w", err)
	}
	path := filepath.Join(dir, id)
	var deadline time.Time // zero: block
	if wait >= 0 {
		deadline = time.Now().Add(wait)
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open lock %s: %w", path, err)
		}
		got, err := flockUntil(f, unix.LOCK_EX, deadline)
		if err != nil || !got {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("lock %s: %w", path, err)
			}
			return nil, nil
		}
		// Still the file at path? (a concurrent delete may have unlinked it)
		var held, cur unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &cur) == nil &&
			held.Ino == cur.Ino && held.Dev == cur.Dev {
			return &Lock{f: f, path: path}, nil
		}
		f.Close()
	}
}

// Release unlocks.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// ReleaseAndRemove unlinks the lock file, then unlocks: used by delete.
func (l *Lock) ReleaseAndRemove() {
	if l != nil && l.f != nil {
		_ = os.Remove(l.path)
		l.Release()
	}
}

// waitUnlocked returns once no other process holds the lock for id (a
// create or a delete of id in progress), at once when none does, and after
// at most a second in any case: an OCI hook that create runs while holding
// the lock may itself ask about the container (runc answers it that the
// container does not exist yet), and must not wait for the create that
// waits for it. A caller holding the lock itself must not call it (flock
// would wait for it).
func waitUnlocked(root, id string) {
	f, err := os.Open(filepath.Join(root, ".locks", id))
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = flockUntil(f, unix.LOCK_SH, time.Now().Add(time.Second))
}

// flockUntil takes the flock how (LOCK_EX or LOCK_SH) on f: blocking when
// deadline is zero, else trying every 5 ms until deadline; false when it
// gave up.
func flockUntil(f *os.File, how int, deadline time.Time) (bool, error) {
	if deadline.IsZero() {
		return true, unix.Flock(int(f.Fd()), how)
	}
	for unix.Flock(int(f.Fd()), how|unix.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true, nil
}
