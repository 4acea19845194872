package phasemark

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMarks(t *testing.T) {
	if On() {
		t.Skip(Env + " is set for this test process")
	}
	Mark("off") // no file: nothing, no panic
	path := filepath.Join(t.TempDir(), "marks")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	file = f
	t.Cleanup(func() { file = nil; f.Close() })
	Mark("a: first")
	Mark("b: second")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), b)
	}
	var prev int64
	for i, want := range []string{"a: first", "b: second"} {
		f := strings.SplitN(lines[i], " ", 3)
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || len(f) != 3 || f[1] != strconv.Itoa(os.Getpid()) || f[2] != want || ns < prev {
			t.Fatalf("line %q: want <ns> %d %q after %d", lines[i], os.Getpid(), want, prev)
		}
		prev = ns
	}
}
