package enforce

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHelperExe: mxc-monitor next to mxc-runtime is used only when it is a
// regular executable file with the runtime's owner, writable by nobody
// else; otherwise the helpers run from mxc-runtime itself.
func TestHelperExe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, helper string)
		use   bool
	}{
		{"installed", func(t *testing.T, h string) { writeExe(t, h, 0o755) }, true},
		{"missing", func(t *testing.T, h string) {}, false},
		{"not executable", func(t *testing.T, h string) { writeExe(t, h, 0o644) }, false},
		{"group writable", func(t *testing.T, h string) { writeExe(t, h, 0o775) }, false},
		{"world writable", func(t *testing.T, h string) { writeExe(t, h, 0o757) }, false},
		{"a directory", func(t *testing.T, h string) {
			if err := os.Mkdir(h, 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"another owner", func(t *testing.T, h string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the file another owner")
			}
			writeExe(t, h, 0o755)
			if err := os.Chown(h, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rt := filepath.Join(dir, "mxc-runtime")
			writeExe(t, rt, 0o755)
			helper := filepath.Join(dir, HelperName)
			tc.setup(t, helper)
			want := rt
			if tc.use {
				want = helper
			}
			if got := HelperExe(rt); got != want {
				t.Errorf("HelperExe = %s, want %s", got, want)
			}
			t.Setenv("MXC_HELPER_EXE", "runtime")
			if got := HelperExe(rt); got != rt {
				t.Errorf("with MXC_HELPER_EXE=runtime: %s, want %s", got, rt)
			}
		})
	}
}

func writeExe(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}
