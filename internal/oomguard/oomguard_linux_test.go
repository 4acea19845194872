//go:build linux

package oomguard

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestProtect runs Protect in a child (the test process keeps its own
// score) and reads the child's score back: Score with CAP_SYS_RESOURCE,
// else the inherited score, unharmed.
func TestProtect(t *testing.T) {
	if os.Getenv("OOMGUARD_CHILD") == "1" {
		Protect()
		b, err := os.ReadFile("/proc/self/oom_score_adj")
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString(strings.TrimSpace(string(b)) + "\n")
		return
	}
	inherited, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Skipf("no oom_score_adj: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestProtect$")
	cmd.Env = append(os.Environ(), "OOMGUARD_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	got := strings.Split(string(out), "\n")[0]
	want := strings.TrimSpace(string(inherited))
	if hasSysResource(t) {
		want = strconv.Itoa(Score)
	} else {
		t.Logf("no CAP_SYS_RESOURCE here: the score must stay %s", want)
	}
	if got != want {
		t.Fatalf("child's oom_score_adj %q, want %s", got, want)
	}
}

func hasSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			const capSysResource = 24
			return caps&(1<<capSysResource) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}
