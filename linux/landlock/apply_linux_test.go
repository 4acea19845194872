//go:build linux

package landlock

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The ruleset binds the thread that applies it (and what it execs), so
// these tests apply it in a child: the test binary re-runs itself.
func TestMain(m *testing.M) {
	if dir := os.Getenv("MXC_LANDLOCK_CHILD"); dir != "" {
		os.Exit(child(dir))
	}
	os.Exit(m.Run())
}

func child(dir string) int {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Println("nnp:", err)
		return 2
	}
	r := &Ruleset{HandleFS: true, Paths: []PathRule{
		{Path: filepath.Join(dir, "ro"), Access: ReadOnly},
		{Path: filepath.Join(dir, "rw"), Access: ReadWrite},
		{Path: filepath.Join(dir, "ro", "file"), Access: ReadWrite}, // a file rule
		{Path: filepath.Join(dir, "missing"), Access: ReadWrite},
	}}
	res, err := r.Apply()
	if err != nil {
		fmt.Println("apply:", err)
		return 2
	}
	fmt.Printf("abi=%d missing=%s\n", res.ABI, strings.Join(res.Missing, ","))
	try := func(name string, err error) {
		if err != nil {
			fmt.Printf("%s=denied\n", name)
		} else {
			fmt.Printf("%s=ok\n", name)
		}
	}
	_, err = os.ReadFile(filepath.Join(dir, "ro", "a"))
	try("read-ro", err)
	try("write-ro", os.WriteFile(filepath.Join(dir, "ro", "b"), nil, 0o644))
	try("write-rw", os.WriteFile(filepath.Join(dir, "rw", "b"), nil, 0o644))
	try("write-file-rule", os.WriteFile(filepath.Join(dir, "ro", "file"), []byte("x"), 0o644))
	_, err = os.ReadFile(filepath.Join(dir, "other", "c"))
	try("read-other", err)
	return 0
}

func TestApplyInChild(t *testing.T) {
	if ABI() < 1 {
		t.Skip("Landlock not available")
	}
	dir := t.TempDir()
	for _, d := range []string{"ro", "rw", "other"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"ro/a", "ro/file", "other/c"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MXC_LANDLOCK_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		"missing=" + filepath.Join(dir, "missing"),
		"read-ro=ok", "write-ro=denied", "write-rw=ok", "write-file-rule=ok", "read-other=denied",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("child output lacks %q:\n%s", want, got)
		}
	}
}
