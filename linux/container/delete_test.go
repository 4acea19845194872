//go:build linux

package container

import (
	"os"
	"strconv"
	"testing"
)

func TestStatExiting(t *testing.T) {
	for _, c := range []struct {
		stat string
		want bool
	}{
		// init of a pid namespace in zap_pid_ns_processes: PF_EXITING (0x4) set
		{"4242 (sleep) S 1 4242 4242 0 -1 4210948 120 0 0 0 0 0 0 0 20 0 1 0 1000 0 0", true},
		{"4242 (sleep) S 1 4242 4242 0 -1 4210944 120 0 0 0 0 0 0 0 20 0 1 0 1000 0 0", false},
		// a command name with spaces and parentheses
		{"7 (a ) b) R 1 7 7 0 -1 4 0 0", true},
		{"7 (x) R 1", false},
		{"garbage", false},
	} {
		if got := statExiting(c.stat); got != c.want {
			t.Errorf("%q: %v, want %v", c.stat, got, c.want)
		}
	}
	// A live process (this test) is not exiting.
	if exiting(os.Getpid()) {
		t.Errorf("pid %s reads as exiting", strconv.Itoa(os.Getpid()))
	}
}
