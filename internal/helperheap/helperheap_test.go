package helperheap

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestStartThenSettled(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	Start()
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Errorf("GOGC after Start = %d, want off", p)
	}
	if l := debug.SetMemoryLimit(-1); l != startLimit {
		t.Errorf("memory limit after Start = %d, want %d", l, startLimit)
	}
	settled()
	if p := debug.SetGCPercent(-1); p != 25 {
		t.Errorf("GOGC once settled = %d, want 25", p)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit once settled = %d, want none", l)
	}
}
