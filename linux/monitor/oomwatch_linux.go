package monitor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/cgwarm"
)

// notifyOOM returns a channel that receives a value each time the kernel's
// OOM killer acts in the container's memory cgroup, and is closed once the
// watch ends (the cgroup is gone).
//
// It does what libcontainer's (*Container).NotifyOOM does (runc's
// notify_linux.go and notify_v2_linux.go, Apache-2.0), from the cgroup
// paths the monitor is given instead of from libcontainer's state: loading
// that state (libcontainer.Load) cost the monitor ~3.5 ms of CPU per
// container, most of it encoding/json's first use of the config types,
// on a machine where a policy `run` is CPU-bound.
//
// base, when set, is the cgroup's OOM kill count when the monitor's C
// stage started watching: kills since then (which woke this stage, or
// came while it started) are reported first.
func notifyOOM(paths map[string]string, base *uint64) (<-chan struct{}, error) {
	file, dir, err := oomCountFile(paths)
	if err != nil {
		return nil, err
	}
	if file == "memory.events" {
		return oomEventsV2(dir, base)
	}
	return oomEventsV1(dir, base)
}

// oomCountFile names the file that counts the OOM kills of the container's
// memory cgroup ("oom_kill N"), and the cgroup's directory.
func oomCountFile(paths map[string]string) (file, dir string, err error) {
	if cgwarm.IsCgroup2("/sys/fs/cgroup") { // cgroup v2 alone
		if dir = paths[""]; dir == "" {
			return "", "", errors.New("no cgroup v2 path")
		}
		return "memory.events", dir, nil
	}
	if dir = paths["memory"]; dir == "" {
		return "", "", errors.New("memory controller missing")
	}
	return "memory.oom_control", dir, nil
}

// oomKillsSince is how many OOM kills the container's memory cgroup
// counted since its count was base (0 when it cannot tell).
func oomKillsSince(paths map[string]string, base uint64) int {
	file, dir, err := oomCountFile(paths)
	if err != nil {
		return 0
	}
	if v, ok := keyValue(filepath.Join(dir, file), "oom_kill"); ok && v > base {
		return int(v - base)
	}
	return 0
}

// oomEventsV1 registers an eventfd for memory.oom_control through
// cgroup.event_control (cgroup v1). The kernel signals the eventfd on
// every OOM in the cgroup, and once more when the cgroup is removed.
func oomEventsV1(dir string, base *uint64) (<-chan struct{}, error) {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := os.NewFile(uintptr(efd), "eventfd")
	eventControl := filepath.Join(dir, "cgroup.event_control")
	if err := os.WriteFile(eventControl, []byte(fmt.Sprintf("%d %d", efd, ctl.Fd())), 0o700); err != nil {
		ev.Close()
		ctl.Close()
		return nil, err
	}
	// Kills the C stage saw, or that came before the eventfd was armed;
	// one armed before the count is read may be reported twice, never
	// missed.
	pending := 0
	if base != nil {
		if v, ok := keyValue(filepath.Join(dir, "memory.oom_control"), "oom_kill"); ok && v > *base {
			pending = int(v - *base)
		}
	}
	ch := make(chan struct{})
	go func() {
		defer func() {
			ev.Close()
			ctl.Close()
			close(ch)
		}()
		for range pending {
			ch <- struct{}{}
		}
		buf := make([]byte, 8)
		for {
			if _, err := ev.Read(buf); err != nil {
				return
			}
			// The removal of the cgroup signals too: that is the end.
			if _, err := os.Lstat(eventControl); errors.Is(err, os.ErrNotExist) {
				return
			}
			ch <- struct{}{}
		}
	}()
	return ch, nil
}

// oomEventsV2 watches memory.events (its oom_kill count) and cgroup.events
// (populated 0 ends the watch) with inotify (cgroup v2).
func oomEventsV2(dir string, base *uint64) (<-chan struct{}, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	events := filepath.Join(dir, "memory.events")
	memWd, err := unix.InotifyAddWatch(fd, events, unix.IN_MODIFY)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch memory.events: %w", err)
	}
	cgWd, err := unix.InotifyAddWatch(fd, filepath.Join(dir, "cgroup.events"), unix.IN_MODIFY)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch cgroup.events: %w", err)
	}
	// memory.events changes on every event it counts (max, high, oom,
	// oom_kill), so "oom_kill > 0" after a change, libcontainer's test,
	// reports the first kill again at every later brush with the limit.
	// One notification per kill: the count's growth since the last look,
	// from its value when the watch starts.
	killed, _ := keyValue(events, "oom_kill")
	pending := 0
	if base != nil && killed > *base {
		pending = int(killed - *base)
	}
	ch := make(chan struct{})
	go func() {
		defer func() {
			unix.Close(fd)
			close(ch)
		}()
		for range pending {
			ch <- struct{}{}
		}
		var buf [unix.SizeofInotifyEvent + unix.PathMax + 1]byte
		for {
			n, err := unix.Read(fd, buf[:])
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || n < unix.SizeofInotifyEvent {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if ev.Mask&unix.IN_MODIFY == 0 {
					continue
				}
				switch int(ev.Wd) {
				case memWd:
					v, ok := keyValue(events, "oom_kill")
					if !ok {
						continue // gone with its cgroup: cgroup.events ends the watch
					}
					for ; killed < v; killed++ {
						ch <- struct{}{}
					}
				case cgWd:
					if v, ok := keyValue(filepath.Join(dir, "cgroup.events"), "populated"); !ok || v == 0 {
						return
					}
				}
			}
		}
	}()
	return ch, nil
}

// keyValue reads the value of key in a flat-keyed cgroup file ("key value"
// lines); ok is false when the file or the key cannot be read.
func keyValue(file, key string) (v uint64, ok bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, val, found := strings.Cut(line, " ")
		if found && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
