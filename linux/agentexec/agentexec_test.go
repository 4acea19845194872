//go:build linux

package agentexec

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/seccomp"
)

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		args   []string
		fd     int
		server bool
		argv   string
		err    string
	}{
		{args: []string{"--config-fd", "4", "--", "sh", "-c", "x"}, fd: 4, argv: "sh -c x"},
		{args: []string{"--config-fd", "4", "--server", "--", "exec-server", "serve"}, fd: 4, server: true, argv: "exec-server serve"},
		{args: []string{"--server", "--config-fd", "5", "--", "x"}, fd: 5, server: true, argv: "x"},
		{args: []string{"--config-fd", "4", "--", "--config-fd"}, fd: 4, argv: "--config-fd"},
		{args: []string{"--", "sh"}, err: "--config-fd is required"},
		{args: []string{"--config-fd", "2", "--", "sh"}, err: "not an fd number"},
		{args: []string{"--config-fd", "x", "--", "sh"}, err: "not an fd number"},
		{args: []string{"--config-fd"}, err: "needs a value"},
		{args: []string{"--config-fd", "4", "--"}, err: "no command"},
		{args: []string{"--config-fd", "4", "sh"}, err: "unknown argument"},
		{args: []string{"--config-fd", "4"}, err: "missing --"},
		{args: nil, err: "missing --"},
	} {
		fd, server, argv, err := ParseArgs(c.args)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || fd != c.fd || server != c.server || strings.Join(argv, " ") != c.argv {
			t.Errorf("%q: %d %v %q %v", c.args, fd, server, argv, err)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("--config-fd\x004\x00--\x00sh")
	f.Add("--\x00sh")
	f.Add("--config-fd\x00-1\x00--")
	f.Fuzz(func(t *testing.T, s string) {
		fd, _, argv, err := ParseArgs(strings.Split(s, "\x00"))
		if err == nil && (fd < 3 || len(argv) == 0) {
			t.Errorf("%q: accepted fd %d argv %q", s, fd, argv)
		}
	})
}

// TestWrap: the process execs the last step first, with the config in a
// sealed memfd and the exe placeholder, both within its ExtraFiles.
func TestWrap(t *testing.T) {
	pre, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	p := &libcontainer.Process{Args: []string{"sh", "-c", "echo hi"}, ExtraFiles: []*os.File{pre}}
	cfg := &Config{
		Landlock:     &landlock.Ruleset{HandleFS: true, Paths: []landlock.PathRule{{Path: "/workspace", Access: landlock.ReadWrite}}},
		AgentSeccomp: &seccomp.Options{AllowPtrace: true},
	}
	if err := Wrap(p, cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{"/proc/self/fd/4", Verb, "--config-fd", "5", "--", "sh", "-c", "echo hi"}
	if strings.Join(p.Args, "|") != strings.Join(want, "|") {
		t.Errorf("args %q, want %q", p.Args, want)
	}
	if len(p.ExtraFiles) != 3 {
		t.Fatalf("extra files %d", len(p.ExtraFiles))
	}
	exe, conf := p.ExtraFiles[1], p.ExtraFiles[2]
	defer exe.Close()
	defer conf.Close()
	for f, name := range map[*os.File]string{exe: ExeMemfdName, conf: ConfigMemfdName} {
		link, _ := os.Readlink("/proc/self/fd/" + itoa(int(f.Fd())))
		if !strings.HasPrefix(link, "/memfd:"+name) {
			t.Errorf("fd %d is %q, want memfd %s", f.Fd(), link, name)
		}
		seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
		if err != nil || seals&unix.F_SEAL_WRITE == 0 || seals&unix.F_SEAL_SEAL == 0 {
			t.Errorf("%s: seals %#x %v", name, seals, err)
		}
	}
	if _, err := conf.Write([]byte("x")); err == nil {
		t.Error("the config memfd is writable")
	}
	data, err := io.ReadAll(conf)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeConfig(data)
	if err != nil || back.Landlock == nil || back.AgentSeccomp == nil || !back.AgentSeccomp.AllowPtrace {
		t.Errorf("config round trip: %+v %v", back, err)
	}
	if fi, err := exe.Stat(); err != nil || fi.Mode().Perm() != 0 {
		t.Errorf("placeholder mode %v %v, want 0 (fail closed if not replaced)", fi.Mode(), err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestAsServer: the wrapped process starts the exec server in server mode.
func TestAsServer(t *testing.T) {
	p := &libcontainer.Process{Args: []string{"exec-server"}}
	if err := AsServer(p, []string{"exec-server", "serve"}); err == nil {
		t.Error("an unwrapped process was accepted")
	}
	if err := Wrap(p, &Config{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range p.ExtraFiles {
			f.Close()
		}
	}()
	if err := AsServer(p, []string{"exec-server", "serve", "--listen-fd", "3"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"/proc/self/fd/3", Verb, "--config-fd", "4", "--server", "--", "exec-server", "serve", "--listen-fd", "3"}
	if strings.Join(p.Args, "|") != strings.Join(want, "|") {
		t.Errorf("args %q, want %q", p.Args, want)
	}
	fd, server, argv, err := ParseArgs(p.Args[2:])
	if err != nil || fd != 4 || !server || strings.Join(argv, " ") != "exec-server serve --listen-fd 3" {
		t.Errorf("the step parses %d %v %q %v", fd, server, argv, err)
	}
}

// TestWrapExe: a process of a container without policy execs the runtime
// through the placeholder FixupInitFDs swaps.
func TestWrapExe(t *testing.T) {
	pre, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	p := &libcontainer.Process{Args: []string{"x"}, ExtraFiles: []*os.File{pre}}
	if err := WrapExe(p, []string{"exec-server", "serve"}); err != nil {
		t.Fatal(err)
	}
	defer p.ExtraFiles[1].Close()
	if strings.Join(p.Args, " ") != "/proc/self/fd/4 exec-server serve" || len(p.ExtraFiles) != 2 {
		t.Errorf("args %q, %d extra files", p.Args, len(p.ExtraFiles))
	}
	link, _ := os.Readlink("/proc/self/fd/" + itoa(int(p.ExtraFiles[1].Fd())))
	if !strings.HasPrefix(link, "/memfd:"+ExeMemfdName) {
		t.Errorf("placeholder is %q", link)
	}
}

func TestInterpreterOf(t *testing.T) {
	for _, tc := range []struct {
		path    string
		dynamic bool
	}{
		{"/bin/busybox", false}, // busybox-static
		{"/bin/sh", true},       // dash, dynamically linked
	} {
		if _, err := os.Stat(tc.path); err != nil {
			t.Skipf("%s: %v", tc.path, err)
		}
		interp, err := interpreterOf(tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if got := interp != ""; got != tc.dynamic {
			t.Errorf("%s: interpreter %q, want dynamic=%v", tc.path, interp, tc.dynamic)
		}
	}
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := interpreterOf(notELF); err == nil {
		t.Error("not an ELF file: want an error")
	}
}
