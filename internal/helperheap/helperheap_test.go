package helperheap

import (
	"math"
	"runtime/debug"
	"testing"
	"time"
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

func TestDelayRestores(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(70))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	Delay(50 * time.Millisecond)
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Errorf("GOGC during Delay = %d, want off", p)
	}
	if l := debug.SetMemoryLimit(-1); l != startLimit {
		t.Errorf("memory limit during Delay = %d, want %d", l, startLimit)
	}
	// The limit is restored last: once it is, so is GOGC.
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) != math.MaxInt64 {
		if time.Now().After(deadline) {
			t.Fatal("memory limit not restored after Delay")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p := debug.SetGCPercent(70); p != 70 {
		t.Errorf("GOGC after Delay = %d, want the 70 it started with", p)
	}
}

func TestDelayKeepsOff(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	Delay(time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Errorf("GOGC = %d, want off as it started", p)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit = %d, want none (GOGC=off sets none)", l)
	}
}
