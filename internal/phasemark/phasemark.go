// Package phasemark records timing marks of mxc's own steps, for profiling
// (docs/benchmarks.md): with MXC_PHASE_MARKS set to a file, each Mark
// appends "<CLOCK_MONOTONIC ns> <pid> <name>" to it, a line per write, so
// that the runtime's marks and its helpers' can be merged and sorted.
// Without the variable a Mark costs one load of a bool.
package phasemark

import (
	"os"
	"strconv"
	"time"
)

// Env names the file the marks go to.
const Env = "MXC_PHASE_MARKS"

var (
	file *os.File
	pid  = []byte(" " + strconv.Itoa(os.Getpid()) + " ")
	base = time.Now() // for systems without CLOCK_MONOTONIC in x/sys
)

func init() {
	if p := os.Getenv(Env); p != "" {
		// O_APPEND: every process appends whole lines.
		file, _ = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	}
}

// On reports whether marks are recorded.
func On() bool { return file != nil }

// Mark records that the step name is reached now.
func Mark(name string) {
	if file == nil {
		return
	}
	b := strconv.AppendInt(nil, int64(monotonic()), 10)
	b = append(b, pid...)
	b = append(b, name...)
	b = append(b, '\n')
	_, _ = file.Write(b)
}
