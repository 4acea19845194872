//go:build linux

// Package enforce_test is mxc's escape battery and enforcement tests: real
// containers under real agent policies, through the mxc-runtime binary.
// Tests need root and busybox-static; without them they skip.
package enforce_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"mxc.dev/mxc/internal/reaper"
)

// TestMain makes the test process a child subreaper and reaps the
// detached helpers (policy monitors, egress gates, container inits) that
// are re-parented to it: the machines' init does not reap orphans.
func TestMain(m *testing.M) {
	_ = reaper.Subreaper()
	stop := reaper.Background(100 * time.Millisecond)
	code := m.Run()
	stop()
	cleanupBuilds()
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "enforce tests left host state behind:\n  %s\n", strings.Join(left, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// leftovers lists what the tests' containers must not leave on the host:
// session id ranges, id-mapped rootfs mounts, policy monitors.
func leftovers() []string {
	var out []string
	ents, _ := os.ReadDir("/run/mxc-session-slots")
	for _, e := range ents {
		b, _ := os.ReadFile("/run/mxc-session-slots/" + e.Name())
		if strings.Contains(string(b), "/run/mxc-test-") {
			out = append(out, "session slot "+e.Name()+": "+string(b))
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "/run/mxc-test-") && strings.Contains(l, ".mxc-idmap") {
				out = append(out, "mount: "+l)
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "policy-monitor /run/mxc-test-") {
			out = append(out, "process "+e.Name()+": "+cmd)
		}
	}
	return out
}
