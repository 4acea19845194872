package ctorargs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// compilers are the C libraries mxc's constructors are built against:
// glibc (LIBC=glibc, and cgo's default for tests) and musl (`make build`).
var compilers = []struct {
	name, cc string
	static   bool
}{
	{"glibc", "gcc", false},
	{"glibc static", "gcc", true},
	{"musl", "musl-gcc", true},
}

// build compiles testdata/ctor.c with cc; extra are more flags.
func build(t *testing.T, cc string, static bool, extra ...string) string {
	t.Helper()
	if _, err := exec.LookPath(cc); err != nil {
		if cc == "musl-gcc" {
			t.Fatalf("musl-gcc not found: `make build` links mxc with musl (hack/deps.sh installs musl-tools)")
		}
		t.Skipf("%s not found", cc)
	}
	out := filepath.Join(t.TempDir(), "ctor")
	args := []string{"-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-I.", "-o", out, "testdata/ctor.c"}
	if static {
		args = append(args, "-static")
	}
	args = append(args, extra...)
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, b)
	}
	return out
}

// run starts bin with exactly argv and env (argv may be empty) and returns
// its output.
func run(t *testing.T, bin string, argv, env []string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := os.StartProcess(bin, argv, &os.ProcAttr{Env: env, Files: []*os.File{nil, w, os.Stderr}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// want is what ctor.c prints for argv and env.
func want(argv, env []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "argc=%d\n", len(argv))
	for _, a := range argv {
		fmt.Fprintf(&b, "arg=%s\n", a)
	}
	fmt.Fprintf(&b, "envc=%d\n", len(env))
	if len(env) > 0 {
		fmt.Fprintf(&b, "env0=%s\n", env[0])
	}
	return b.String()
}

func many(prefix string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return s
}

func TestCtorArgs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ELF constructors: Linux only")
	}
	cases := []struct {
		name      string
		argv, env []string
	}{
		// Linux 5.18 on gives a program run with no argv at all an
		// argv[0] of "" (CVE-2021-4034); older kernels leave argc 0.
		{"no argv at all", []string{}, []string{"A=1"}},
		{"argv[0] only", []string{"ctor"}, []string{"A=1"}},
		{"the exec verb", []string{"mxc-runtime", "--root", "/run/x", "exec", "c1", "/bin/true"}, []string{"PATH=/bin", "MXC_EXEC_FAST=require"}},
		{"empty environment", []string{"ctor", "x"}, []string{}},
		{"small numbers as arguments", []string{"1", "2", "3", "0"}, []string{"3=3"}},
		{"empty arguments", []string{"", "", ""}, []string{""}},
		{"many arguments", many("arg", 3000), many("E=", 10)},
		{"large environment", []string{"ctor"}, many("VAR=", 5000)},
	}
	for _, c := range compilers {
		t.Run(c.name, func(t *testing.T) {
			bin := build(t, c.cc, c.static)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					got, w := run(t, bin, tc.argv, tc.env), want(tc.argv, tc.env)
					if len(tc.argv) == 0 && got == want([]string{""}, tc.env) {
						return
					}
					if got != w {
						t.Errorf("got\n%s\nwant\n%s", trim(got), trim(w))
					}
				})
			}
		})
	}
}

// TestCtorArgsEnvironMoved: a constructor that ran earlier and called
// setenv moved environ off the initial stack; under musl the walk must
// refuse (the caller leaves the work to Go), never guess. glibc passes the
// arguments and is not affected.
func TestCtorArgsEnvironMoved(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ELF constructors: Linux only")
	}
	argv, env := []string{"ctor", "exec", "c1"}, []string{"A=1"}
	for _, c := range compilers {
		t.Run(c.name, func(t *testing.T) {
			bin := build(t, c.cc, c.static, "-DSETENV_FIRST")
			got := run(t, bin, argv, env)
			w := "unknown\n"
			if strings.HasPrefix(c.name, "glibc") {
				w = want(argv, env)
			}
			if got != w {
				t.Errorf("got\n%s\nwant\n%s", trim(got), trim(w))
			}
		})
	}
}

func trim(s string) string {
	if len(s) > 600 {
		return s[:600] + "..."
	}
	return s
}
