//go:build linux

// Package procstat reads the few fields of /proc/PID/stat that mxc's
// helpers use to tell one process from another: its state, its flags and
// its start time (which, with the pid, names one process and guards
// against a recycled pid).
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is what Read returns of /proc/PID/stat.
type Stat struct {
	// State is the state letter (R, S, D, Z, X, ...).
	State byte
	// Flags is the kernel's per-process flags word (PF_*).
	Flags uint64
	// Start is the start time in clock ticks since boot.
	Start uint64
}

// pfExiting is PF_EXITING: the process has entered its exit.
const pfExiting = 0x4

// Exiting reports whether the process has entered its exit.
func (s Stat) Exiting() bool { return s.Flags&pfExiting != 0 }

// Gone reports whether the process has ended (a zombie waiting to be
// reaped, or dead).
func (s Stat) Gone() bool { return s.State == 'Z' || s.State == 'X' }

// Read reads /proc/PID/stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return Parse(b)
}

// Parse parses a /proc/PID/stat line. The command name may hold spaces
// and parentheses, so the fields are counted from after its last ')'.
func Parse(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errors.New("malformed /proc stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) == 0 {
		return Stat{}, errors.New("malformed /proc stat: too few fields")
	}
	flags, err := strconv.ParseUint(f[6], 10, 64) // field 9 of proc(5)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc stat flags: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64) // field 22 of proc(5)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc stat start time: %w", err)
	}
	return Stat{State: f[0][0], Flags: flags, Start: start}, nil
}

// Alive reports whether the process pid that started at start still runs:
// the same process (not a later one that reused the pid) and not a zombie.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := Read(pid)
	return err == nil && st.Start == start && !st.Gone()
}

// StartTime is Read(pid).Start, 0 when the process is gone or unreadable.
func StartTime(pid int) uint64 {
	s, err := Read(pid)
	if err != nil {
		return 0
	}
	return s.Start
}
