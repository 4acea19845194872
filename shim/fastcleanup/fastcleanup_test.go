//go:build linux && cgo

package fastcleanup_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"mxc.dev/mxc/shim"
	_ "mxc.dev/mxc/shim/fastcleanup"
)

// childEnv marks a run of this test binary as the shim under test: when
// the constructor hands over, TestMain stands in for the Go shim.
const childEnv = "MXC_FASTCLEANUP_TEST_CHILD"

// goPathExit is the Go stand-in's exit status.
const goPathExit = 3

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Stdout.WriteString("go-path")
		os.Exit(goPathExit)
	}
	os.Exit(m.Run())
}

// containerdArgs is the command line containerd 2.x runs after a shim's
// exit (core/runtime/v2/command.go), with the bundle as the working dir.
func containerdArgs(id, bundle string) []string {
	return []string{"-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock",
		"-publish-binary", "/usr/bin/containerd", "-id", id, "-bundle", bundle, "delete"}
}

// runShim runs this binary as `containerd-shim-mxc-v2 ARGS` in dir and
// returns its stdout, stderr and exit status.
func runShim(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func response(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(&taskAPI.DeleteResponse{
		Pid: 4242, ExitStatus: 137,
		ExitedAt: timestamppb.New(time.Date(2026, 11, 28, 18, 0, 0, 123456789, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCleanup(t *testing.T) {
	resp := response(t)
	for _, tc := range []struct {
		name   string
		marker []byte // nil: no marker
		id     string // default task1
		args   func(id, bundle string) []string
		env    []string
		mount  bool // a tmpfs at the bundle's rootfs
		fast   bool
		why    string // the hand-over's reason (MXC_SHIM_FAST_CLEANUP_DEBUG)
	}{
		{name: "deleted by the shim", marker: resp, fast: true},
		{name: "debug flag", marker: resp, fast: true, args: func(id, b string) []string {
			return append([]string{"-debug"}, containerdArgs(id, b)...)
		}},
		{name: "no bundle flag", marker: resp, fast: true, args: func(id, b string) []string {
			return []string{"-namespace", "n", "-address", "a", "-publish-binary", "p", "-id", id, "delete"}
		}},
		{name: "no marker", why: "no task deletion recorded"},
		{name: "empty marker of an older shim", marker: []byte{}, why: "no response"},
		{name: "oversized marker", marker: bytes.Repeat([]byte{1}, 4096), why: "no task deletion recorded"},
		{name: "turned off", marker: resp, env: []string{"MXC_SHIM_FAST_CLEANUP=0"}},
		{name: "rootfs still mounted", marker: resp, mount: true, why: "a mount is left"},
		{name: "id with a slash", marker: resp, id: "a/b", why: "not one path component"},
		{name: "dot-dot id", marker: resp, id: "..", why: "not one path component"},
		{name: "start, not delete", marker: resp, args: func(id, b string) []string {
			return []string{"-namespace", "n", "-id", id, "-address", "a", "start"}
		}},
		{name: "flag=value form", marker: resp, args: func(id, b string) []string {
			return []string{"-namespace=n", "-id", id, "delete"}
		}},
		{name: "unknown flag", marker: resp, args: func(id, b string) []string {
			return []string{"-namespace", "n", "-id", id, "-other", "x", "delete"}
		}},
		{name: "flag without value", marker: resp, args: func(id, b string) []string {
			return []string{"-namespace", "n", "-id", id, "-address", "delete"}
		}},
		{name: "no id", marker: resp, args: func(id, b string) []string {
			return []string{"-namespace", "n", "-address", "a", "delete"}
		}},
		{name: "delete not last", marker: resp, args: func(id, b string) []string {
			return append(containerdArgs(id, b), "extra")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			if id == "" {
				id = "task1"
			}
			// The working directory is the bundle; for the odd ids the
			// Go path's own rule (parent joined with id) is not reached.
			bundle := filepath.Join(t.TempDir(), "task1")
			if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.marker != nil {
				if err := os.WriteFile(filepath.Join(bundle, shim.DeletedMarker), tc.marker, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.mount {
				if os.Geteuid() != 0 {
					t.Skip("mounting needs root")
				}
				rootfs := filepath.Join(bundle, "rootfs")
				if err := unix.Mount("tmpfs", rootfs, "tmpfs", 0, ""); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = unix.Unmount(rootfs, unix.MNT_DETACH) })
			}
			args := containerdArgs(id, bundle)
			if tc.args != nil {
				args = tc.args(id, bundle)
			}
			env := append([]string{"MXC_SHIM_FAST_CLEANUP_DEBUG=1"}, tc.env...)
			out, stderr, code := runShim(t, bundle, env, args...)
			if tc.fast {
				if code != 0 || out != string(resp) || stderr != "" {
					t.Fatalf("exit %d, stdout %q, stderr %q; want the marker's response", code, out, stderr)
				}
				var got taskAPI.DeleteResponse
				if err := proto.Unmarshal([]byte(out), &got); err != nil || got.GetPid() != 4242 || got.GetExitStatus() != 137 {
					t.Fatalf("response %v (%v)", &got, err)
				}
				return
			}
			if code != goPathExit || out != "go-path" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want the Go path", code, out, stderr)
			}
			if !strings.Contains(stderr, tc.why) {
				t.Fatalf("stderr %q, want a hand-over saying %q", stderr, tc.why)
			}
		})
	}
}

// With MXC_SHIM_FAST_CLEANUP=require a hand-over is an error that says why.
func TestRequire(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "task1")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runShim(t, bundle, []string{"MXC_SHIM_FAST_CLEANUP=require"}, containerdArgs("task1", bundle)...)
	if code != 2 || out != "" || !strings.Contains(stderr, "fast clean-up required") || !strings.Contains(stderr, "no task deletion recorded") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
