//go:build linux

package container

import (
	"os"
	"testing"
)

// The parsing is internal/procstat's (tested there); a live process (this
// test) is not exiting, and no process is not either.
func TestExiting(t *testing.T) {
	if exiting(os.Getpid()) {
		t.Errorf("pid %d reads as exiting", os.Getpid())
	}
	if exiting(-1) {
		t.Error("no process reads as exiting")
	}
}
