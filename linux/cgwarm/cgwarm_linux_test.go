package cgwarm

import (
	"os"
	"testing"

	"mxc.dev/mxc/internal/argv"
)

func TestAttaches(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"mxc-runtime", "run", "--bundle", "b", "id"}, true},
		{[]string{"mxc-runtime", "--root", "/run/x", "--log", "f", "create", "id"}, true},
		{[]string{"mxc-runtime", "--root=/run/x", "--debug", "run", "id"}, true},
		{[]string{"mxc-runtime", "--root", "run", "state", "id"}, false}, // "run" is --root's value
		{[]string{"mxc-runtime", "exec", "id", "true"}, false},
		{[]string{"mxc-runtime", "start", "run"}, false},
		{[]string{"mxc-runtime", "--version"}, false},
		{[]string{"mxc-runtime"}, false},
		{[]string{"mxc-runtime", "--", "run"}, false},
	} {
		if got := attaches(argv.Verb(tc.args)); got != tc.want {
			t.Errorf("attaches(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestProcsFile(t *testing.T) {
	p := ProcsFile()
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		t.Skip("no /sys/fs/cgroup")
	}
	if p == "" {
		t.Fatal("no cgroup.procs found for this process")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	t.Logf("warms through %s", p)
}
