//go:build linux && cgo

package fastexec

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/linux/execsrv"
	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/sandbox"
	"mxc.dev/mxc/linux/seccomp"
)

// The test binary carries the package's constructor, so it is itself an
// mxc-runtime for the last step: `fastexec.test agent-exec ...` runs the C
// step, or, when the constructor hands over, the Go step (agentexec.Main,
// dispatched here as cmd/mxc-runtime does). The differential tests below
// run the same configuration through both and compare what the program
// ends up holding.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == agentexec.Verb {
		agentexec.Main(os.Args[2:])
	}
	if os.Getenv("MXC_TEST_PRINT_ENVIRON") == "1" {
		os.Stdout.WriteString(strings.Join(os.Environ(), "\x00"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// ---- the record files ----

func testConfigs(t testing.TB) map[string]*agentexec.Config {
	eperm := uint(1)
	spec := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat", "mkdir", "symlinkat"}, Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
		},
	}
	specDeny := dockerLikeProfile()
	conv := func(s *specs.LinuxSeccomp) *configs.Seccomp {
		c, err := seccomp.FromSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fs := &landlock.Ruleset{HandleFS: true, LogNewExec: true, Paths: []landlock.PathRule{
		{Path: "/bin", Access: landlock.ReadOnly}, {Path: "/usr", Access: landlock.ReadOnly},
		{Path: "/lib", Access: landlock.ReadOnly}, {Path: "/lib64", Access: landlock.ReadOnly},
		{Path: "/etc", Access: landlock.ReadOnly}, {Path: "/proc", Access: landlock.ReadOnly},
		{Path: "/dev/null", Access: landlock.DeviceRW}, {Path: "/no/such/path", Access: landlock.ReadWrite},
	}}
	return map[string]*agentexec.Config{
		"landlock+agent+spec": {Landlock: fs, MinLandlockABI: 1, AgentSeccomp: &seccomp.Options{}, Seccomp: []*configs.Seccomp{conv(spec)}},
		"docker-like spec":    {Landlock: fs, AgentSeccomp: &seccomp.Options{AllowPtrace: true}, Seccomp: []*configs.Seccomp{conv(specDeny)}},
		"scopes only":         {Landlock: &landlock.Ruleset{Scoped: landlock.ScopeSignal | landlock.ScopeAbstractUnixSocket}, AgentSeccomp: &seccomp.Options{}},
		"audit agent":         {AgentSeccomp: &seccomp.Options{AuditOnly: true}},
		"nothing":             {},
	}
}

// dockerLikeProfile is a default-deny profile (an allow list, as docker's
// default), which libcontainer prefixes with its -ENOSYS stub and
// compiles as a binary tree.
func dockerLikeProfile() *specs.LinuxSeccomp {
	allow := strings.Fields(`accept accept4 access alarm arch_prctl bind brk capget capset chdir chmod chown clock_getres
	clock_gettime clock_nanosleep clone clone3 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
	epoll_create1 epoll_ctl epoll_pwait epoll_wait eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2
	fadvise64 fallocate fchdir fchmod fchmodat fchown fchownat fcntl fdatasync flock fork fstat fstatfs fsync ftruncate
	futex getcwd getdents getdents64 getegid geteuid getgid getgroups getitimer getpeername getpgid getpgrp getpid getppid
	getpriority getrandom getresgid getresuid getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid
	getxattr ioctl kill lchown lgetxattr link linkat listen lseek lstat madvise memfd_create mincore mkdir mkdirat mmap
	mprotect mremap munmap nanosleep newfstatat open openat openat2 pause pipe pipe2 poll ppoll prctl pread64 preadv
	prlimit64 pselect6 pwrite64 pwritev read readlink readlinkat readv recvfrom recvmmsg recvmsg rename renameat renameat2
	restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
	rt_sigtimedwait sched_getaffinity sched_yield select sendfile sendmmsg sendmsg sendto set_robust_list set_tid_address
	setgid setgroups setitimer setpgid setsid setsockopt setuid shutdown sigaltstack socket socketpair stat statfs statx
	symlink symlinkat sysinfo tgkill time timer_create times tkill truncate umask uname unlink unlinkat utimensat vfork
	wait4 waitid write writev landlock_create_ruleset landlock_add_rule landlock_restrict_self seccomp`)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: allow, Action: specs.ActAllow}},
	}
}

func encodeWith(t testing.TB, mode string, cfg *agentexec.Config) []byte {
	old, had := os.LookupEnv("MXC_AGENT_EXEC")
	os.Setenv("MXC_AGENT_EXEC", mode)
	defer func() {
		if had {
			os.Setenv("MXC_AGENT_EXEC", old)
		} else {
			os.Unsetenv("MXC_AGENT_EXEC")
		}
	}()
	data, err := agentexec.EncodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func testPlans(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for name, cfg := range testConfigs(t) {
		out["config "+name] = encodeWith(t, "require", cfg)
	}
	pl := &sandbox.Plan{ReadWrite: []string{"/work", "/tmp/x y"}, Denied: []string{"/work/.env", "/work/secrets/"},
		Caps: []string{"CAP_CHOWN", "CAP_KILL"}, Agent: *testConfigs(t)["scopes only"]}
	key := sha256.Sum256([]byte("k"))
	b, err := sandbox.EncodePlan(key, pl)
	if err != nil {
		t.Fatal(err)
	}
	out["sandbox"] = b
	return out
}

func magicOf(b []byte) uint32 {
	if len(b) < 4 {
		return cMagicConfig
	}
	return *(*uint32)(unsafe.Pointer(&b[0]))
}

func TestRecordsRoundTrip(t *testing.T) {
	for name, b := range testPlans(t) {
		magic := magicOf(b)
		again, why, ok := decodePlan(b, magic)
		if !ok || !bytes.Equal(again, b) {
			t.Errorf("%s: decode/encode %v %q: not the identity", name, ok, why)
			continue
		}
		for n := 0; n < len(b); n++ {
			if _, _, ok := decodePlan(b[:n], magic); ok {
				t.Errorf("%s: a prefix of %d bytes was accepted", name, n)
			}
		}
		if _, _, ok := decodePlan(append(append([]byte{}, b...), 0), magic); ok {
			t.Errorf("%s: a trailing byte was accepted", name)
		}
		other := cMagicSB
		if magic == cMagicSB {
			other = cMagicConfig
		}
		if _, _, ok := decodePlan(b, other); ok {
			t.Errorf("%s: accepted as the other kind of file", name)
		}
		// Every single-byte change is refused or decodes to exactly what
		// it says (there is one encoding of a plan).
		for i := range b {
			c := append([]byte{}, b...)
			c[i] ^= 0x41
			if again, _, ok := decodePlan(c, magic); ok && !bytes.Equal(again, c) {
				t.Fatalf("%s: byte %d changed: decoded to something else", name, i)
			}
		}
	}
}

func FuzzDecodePlan(f *testing.F) {
	for _, b := range testPlans(f) {
		f.Add(b)
	}
	f.Add([]byte("MXA1\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, magic := range []uint32{cMagicConfig, cMagicSB} {
			again, _, ok := decodePlan(data, magic)
			if ok && !bytes.Equal(again, data) {
				t.Fatalf("accepted %x but re-encodes to %x", data, again)
			}
		}
	})
}

// TestGoRecordsParse: the Go side's parser and the JSON the Go step reads.
func TestGoRecordsParse(t *testing.T) {
	for name, b := range testPlans(t) {
		recs, err := agentexec.ParseRecords(b, magicOf(b))
		if err != nil || len(recs) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// ---- pieces of Go and linux/sandbox the C path reproduces ----

func TestSHA256(t *testing.T) {
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 1 << 16} {
		b := bytes.Repeat([]byte{byte(n), 0x5a}, n)[:n]
		if got, want := sha256C(b), sha256.Sum256(b); got != want {
			t.Errorf("%d bytes: C %x, Go %x", n, got, want)
		}
	}
}

func FuzzSHA256(f *testing.F) {
	f.Add([]byte("abc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := sha256C(b), sha256.Sum256(b); got != want {
			t.Errorf("C %x, Go %x", got, want)
		}
	})
}

func TestSandboxKey(t *testing.T) {
	id, err := sandbox.BinaryIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if c := exeIdentityC("/proc/self/exe"); c != id {
		t.Errorf("binary identity: C %q, Go %q", c, id)
	}
	for _, c := range []struct{ pol, node []byte }{
		{[]byte("filesystem: {}\n"), nil},
		{[]byte("x"), []byte{}},
		{[]byte{}, []byte("ceiling: {}\n")},
	} {
		if got, want := sandboxKeyC(c.pol, c.node, id), sandbox.PlanKeyWith(c.pol, c.node, id); got != want {
			t.Errorf("%q %q: C %x, Go %x", c.pol, c.node, got, want)
		}
	}
	if sandboxKeyC([]byte("a"), nil, id) == sandboxKeyC([]byte("a"), []byte{}, id) {
		t.Error("no node config and an empty one have the same key")
	}
}

// goCopyenv is syscall's copyenv + Environ (unexported; a copy).
func goCopyenv(envs []string) []string {
	envs = append([]string{}, envs...)
	seen := map[string]bool{}
	for i, s := range envs {
		for j := 0; j < len(s); j++ {
			if s[j] == '=' {
				key := s[:j]
				if seen[key] {
					envs[i] = ""
				}
				seen[key] = true
				break
			}
		}
	}
	out := []string{}
	for _, s := range envs {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func TestGoEnviron(t *testing.T) {
	env := []string{"PATH=/a", "A=1", "", "noequals", "PATH=/b", "=x", "=y", "A=2", "B=", "noequals"}
	if got, want := goEnvironC(env), goCopyenv(env); !slices.Equal(got, want) {
		t.Errorf("C %q, copy of Go %q", got, want)
	}
	// And the real thing: a Go process started with that environment.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	penv := append(append([]string{}, env...), "MXC_TEST_PRINT_ENVIRON=1")
	pid, err := syscall.ForkExec(os.Args[0], []string{os.Args[0]}, &syscall.ProcAttr{Env: penv, Files: []uintptr{0, w.Fd(), 2}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, 0, nil)
	if got, want := goEnvironC(penv), strings.Split(string(out), "\x00"); !slices.Equal(got, want) {
		t.Errorf("C %q, a Go process %q", got, want)
	}
}

func FuzzGoEnviron(f *testing.F) {
	f.Add("A=1\nA=2\n\nB\n=\nB")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		env := strings.Split(s, "\n")
		if got, want := goEnvironC(env), goCopyenv(env); !slices.Equal(got, want) {
			t.Errorf("%q: C %q, Go %q", env, got, want)
		}
	})
}

func TestLookPathDot(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"bin", "sub", "dir.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, mode := range map[string]os.FileMode{"bin/x": 0o755, "bin/noexec": 0o644, "sub/rel": 0o755, "rel2": 0o755} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	for _, path := range []string{"", dir + "/bin", "sub:" + dir + "/bin", ":" + dir + "/bin", dir + "/bin:", "/nonexistent::sub"} {
		t.Setenv("PATH", path)
		for _, name := range []string{"x", "noexec", "rel", "rel2", "bin/x", "./rel2", dir + "/bin/x", dir + "/bin/noexec", "sub", "dir.d", ".", "..", "", "missing"} {
			want, err := exec.LookPath(name)
			dot := errors.Is(err, exec.ErrDot)
			for _, acceptDot := range []bool{true, false} {
				found := err == nil || (dot && acceptDot) // agent-exec runs it anyway; the exec server leaves it to the normal path
				got, ok := lookPathC(name, path, acceptDot)
				if ok != found || (ok && got != want) {
					t.Errorf("PATH=%q %q accept dot %v: C %q %v, Go %q %v", path, name, acceptDot, got, ok, want, err)
				}
				got, ok, intact := lookPathIntoC(name, path, acceptDot)
				if ok != found || (ok && got != want) || !intact {
					t.Errorf("PATH=%q %q accept dot %v: into a buffer %q %v (buffer end intact: %v), Go %q %v", path, name, acceptDot, got, ok, intact, want, err)
				}
			}
		}
	}
}

func TestParseAgentExecArgs(t *testing.T) {
	for _, s := range []string{
		"--config-fd\x004\x00--\x00sh", "--server\x00--config-fd\x00+5\x00--\x00x", "--config-fd\x004\x00--config-fd\x007\x00--\x00a\x00--",
		"--config-fd\x002\x00--\x00sh", "--config-fd\x00x\x00--\x00sh", "--config-fd", "--config-fd\x004\x00--", "--config-fd\x004\x00sh",
		"--\x00sh", "", "--config-fd\x0099999999999999999999\x00--\x00x", "--config-fd\x00-4\x00--\x00x", "--config-fd\x00 4\x00--\x00x",
	} {
		checkAgentExecArgs(t, strings.Split(s, "\x00"))
	}
}

func checkAgentExecArgs(t *testing.T, args []string) {
	t.Helper()
	fd, server, argv, err := agentexec.ParseArgs(args)
	cfd, cserver, cargv, ok := parseAgentExecArgsC(args)
	if ok != (err == nil) || (ok && (int64(fd) != cfd || server != cserver || !slices.Equal(argv, cargv))) {
		t.Errorf("%q: C %d %v %q %v, Go %d %v %q %v", args, cfd, cserver, cargv, ok, fd, server, argv, err)
	}
}

func FuzzParseAgentExecArgs(f *testing.F) {
	f.Add("--config-fd\x004\x00--\x00sh")
	f.Fuzz(func(t *testing.T, s string) { checkAgentExecArgs(t, strings.Split(s, "\x00")) })
}

// urfaveSandbox parses args with mxc-runtime's global flags and the
// sandbox verb's (cmd/mxc-runtime/main.go, sandbox_linux.go) as the Go CLI
// would, env holding the environment the MXC_CONFIG default comes from.
func urfaveSandbox(args []string, env map[string]string) (*sandboxCmdline, error) {
	for k, v := range env {
		os.Setenv(k, v)
		defer os.Unsetenv(k)
	}
	var got *sandboxCmdline
	app := &cli.App{
		Name: "mxc-runtime",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug"},
			&cli.StringFlag{Name: "log"},
			&cli.StringFlag{Name: "log-format", Value: "text"},
			&cli.StringFlag{Name: "root", Value: "/run/mxc"},
			&cli.BoolFlag{Name: "systemd-cgroup"},
			&cli.StringFlag{Name: "rootless", Value: "auto"},
			&cli.StringFlag{Name: "config", Value: "/etc/mxc/config.yaml", EnvVars: []string{"MXC_CONFIG"}},
		},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
		Writer:               &bytes.Buffer{},
		ErrWriter:            &bytes.Buffer{},
		Before: func(c *cli.Context) error {
			switch c.String("log-format") {
			case "", "text", "json":
				return nil
			}
			return errors.New("invalid log-format")
		},
		Commands: []*cli.Command{{
			Name:            "sandbox",
			HideHelpCommand: true, // as cmd/mxc-runtime's noHelpArgument
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "policy", Aliases: []string{"p"}, Required: true},
				&cli.StringFlag{Name: "audit"},
			},
			Action: func(c *cli.Context) error {
				a := c.Args().Slice()
				if len(a) > 0 && a[0] == "--" {
					a = a[1:]
				}
				if len(a) == 0 {
					return errors.New("no command")
				}
				if c.String("policy") == "" {
					return errors.New("empty policy")
				}
				got = &sandboxCmdline{Policy: c.String("policy"), Config: c.String("config"), Argv: a}
				return nil
			},
		}},
	}
	err := app.Run(args)
	if err == nil && got == nil {
		err = errors.New("no command ran")
	}
	return got, err
}

func checkSandboxCmdline(t *testing.T, args []string, env map[string]string) {
	t.Helper()
	var cenv []string
	for k, v := range env {
		cenv = append(cenv, k+"="+v)
	}
	got, ok := parseSandboxCmdlineC(args, cenv)
	if !ok {
		return // the Go CLI handles it
	}
	want, err := urfaveSandbox(args, env)
	if err != nil {
		t.Fatalf("%q: the C path took a command line the CLI refuses: %v", args, err)
	}
	if got.Policy != want.Policy || got.Config != want.Config || !slices.Equal(got.Argv, want.Argv) {
		t.Errorf("%q %v:\n C   %+v\n CLI %+v", args, env, got, want)
	}
}

func TestSandboxCmdline(t *testing.T) {
	t.Setenv("MXC_CONFIG", "")
	os.Unsetenv("MXC_CONFIG")
	eligible := [][]string{
		{"mxc-runtime", "sandbox", "--policy", "p.yaml", "--", "true"},
		{"mxc-runtime", "sandbox", "-p", "p.yaml", "true", "-x", "--"},
		{"mxc-runtime", "sandbox", "--policy=p.yaml", "--", "--", "x"},
		{"mxc-runtime", "--config", "/n.yaml", "--root=/r", "sandbox", "-policy", "p", "--audit", "a.jsonl", "sh", "-c", "x"},
		{"mxc-runtime", "--log-format", "json", "sandbox", "-p=--", "--", "cmd"},
		{"mxc-runtime", "sandbox", "--policy", "-x", "cmd"},
		{"mxc-runtime", "sandbox", "--policy", "p", "h", "x"},
		{"mxc-runtime", "sandbox", "--policy", "p", "--", "help"},
	}
	for _, a := range eligible {
		if _, ok := parseSandboxCmdlineC(a, nil); !ok {
			t.Errorf("%q: not taken by the C path", a)
		}
		checkSandboxCmdline(t, a, nil)
		checkSandboxCmdline(t, a, map[string]string{"MXC_CONFIG": "/env.yaml"})
		checkSandboxCmdline(t, a, map[string]string{"MXC_CONFIG": ""})
	}
	for _, a := range [][]string{
		{"mxc-runtime", "sandbox", "--", "true"},
		{"mxc-runtime", "sandbox", "--policy", "p"},
		{"mxc-runtime", "sandbox", "--policy", "p", "--"},
		{"mxc-runtime", "sandbox", "-p", "a", "--policy", "b", "x"},
		{"mxc-runtime", "sandbox", "--policy", "", "x"},
		{"mxc-runtime", "--debug", "sandbox", "-p", "p", "x"},
		{"mxc-runtime", "--log", "/l", "sandbox", "-p", "p", "x"},
		{"mxc-runtime", "--log-format", "xml", "sandbox", "-p", "p", "x"},
		{"mxc-runtime", "--config", "a", "--config", "b", "sandbox", "-p", "p", "x"},
		{"mxc-runtime", "sandbox", "-h", "-p", "p", "x"},
		{"mxc-runtime", "sandbox", "-p", "p", "x", "--generate-bash-completion"},
		{"mxc-runtime", "sandbox-stage", "--plan-fd", "3", "--", "x"},
		{"mxc-runtime", "run", "sandbox"},
		{"mxc-runtime", "--", "sandbox", "-p", "p", "x"},
		{"mxc-runtime", "sandbox", "---p", "p", "x"},
	} {
		if c, ok := parseSandboxCmdlineC(a, nil); ok {
			t.Errorf("%q: taken by the C path: %+v", a, c)
		}
	}
}

func FuzzSandboxCmdline(f *testing.F) {
	f.Add("sandbox\x00--policy\x00p\x00--\x00true", "")
	f.Add("--config\x00c\x00sandbox\x00-p=x\x00cmd\x00-a", "/e")
	f.Fuzz(func(t *testing.T, s, cfg string) {
		args := append([]string{"mxc-runtime"}, strings.Split(s, "\x00")...)
		for _, a := range args {
			if !utf8Valid(a) {
				return
			}
		}
		if strings.IndexByte(cfg, 0) >= 0 {
			return
		}
		checkSandboxCmdline(t, args, map[string]string{"MXC_CONFIG": cfg})
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestGoGetwd(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(real)
	for _, pwd := range []string{"", link, real, dir, "relative", link + "/", "/nonexistent"} {
		t.Setenv("PWD", pwd)
		want, err := os.Getwd()
		got, ok := goGetwdC([]string{"PWD=" + pwd, "PWD=" + dir})
		if !ok || (err == nil) != (got != "") || (err == nil && got != want) {
			t.Errorf("PWD=%q: C %q %v, Go %q %v", pwd, got, ok, want, err)
		}
	}
}

func TestConstants(t *testing.T) {
	if cMaxKnownABI != landlock.MaxKnownABI {
		t.Errorf("C knows Landlock ABI %d, linux/landlock %d", cMaxKnownABI, landlock.MaxKnownABI)
	}
	if cMagicConfig != agentexec.ConfigMagic || cMagicSB != agentexec.SandboxMagic {
		t.Error("record magics differ")
	}
}

// ---- the last step itself: C against Go ----

// stepRun is what a program that went through the last step holds.
type stepRun struct {
	Out     string
	Code    int
	Filters []string // hex of each seccomp filter, newest first, with its flags
}

// runStep runs `agent-exec --config-fd 3 -- /bin/sh -c script` from this
// test binary with data as the config and returns what the shell reports,
// the filters it holds (read through ptrace while it waits on stdin) and
// the exit status.
func runStep(t *testing.T, data []byte, env []string, argv ...string) stepRun {
	t.Helper()
	mf, err := execsrv.Memfd("mxc-agent-config", data)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	cmd := exec.Command(os.Args[0], append([]string{agentexec.Verb, "--config-fd", "3", "--"}, argv...)...)
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{mf}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// Read until the shell says it waits (or ends).
	buf := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "#waiting") && time.Now().Before(deadline) {
		_ = pr.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := pr.Read(buf)
		out.Write(buf[:n])
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
	}
	var filters []string
	if strings.Contains(out.String(), "#waiting") {
		filters = seccompFilters(t, cmd.Process.Pid)
	}
	stdin.Close()
	rest, _ := io.ReadAll(pr)
	out.Write(rest)
	pr.Close()
	err = cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stepRun{Out: out.String(), Code: code, Filters: filters}
}

// seccompFilters reads a process's seccomp filters through ptrace.
func seccompFilters(t *testing.T, pid int) []string {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		t.Fatalf("ptrace seize: %v", err)
	}
	defer unix.PtraceDetach(pid)
	if err := unix.PtraceInterrupt(pid); err != nil {
		t.Fatalf("ptrace interrupt: %v", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		t.Fatalf("wait for the ptrace stop: %v", err)
	}
	var out []string
	for i := 0; ; i++ {
		n, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), uintptr(i), 0, 0, 0)
		if e == unix.ENOENT || e == unix.EINVAL {
			break
		}
		if e != 0 {
			t.Fatalf("PTRACE_SECCOMP_GET_FILTER %d: %v", i, e)
		}
		prog := make([]byte, 8*n)
		if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), uintptr(i), uintptr(unsafe.Pointer(&prog[0])), 0, 0); e != 0 {
			t.Fatalf("PTRACE_SECCOMP_GET_FILTER %d: %v", i, e)
		}
		md := struct{ FilterOff, Flags uint64 }{FilterOff: uint64(i)}
		if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_METADATA, uintptr(pid), unsafe.Sizeof(md), uintptr(unsafe.Pointer(&md)), 0, 0); e != 0 {
			t.Fatalf("PTRACE_SECCOMP_GET_METADATA %d: %v", i, e)
		}
		out = append(out, fmt.Sprintf("flags=%#x %x", md.Flags, prog))
	}
	return out
}

// stepScript reports what the shell holds and what its Landlock domain
// allows, then waits on stdin (for the filters to be read). The shell's
// fds are listed by a plain `ls`: in a pipeline (`ls | tr`) ls can look
// before the shell has closed its end of the pipe, which showed up as a
// spurious fd 3 on one side under load.
func stepScript(dir string) string {
	return `grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters|Cap[A-Za-z]+|SigBlk|SigIgn|Uid|Gid):' /proc/self/status
ls /proc/$$/fd
cat /proc/$$/limits | grep -i 'open files'
echo "env: $(env | sort | tr '\n' ' ')"
cat ` + dir + `/ro/a 2>&1 || echo read-ro=denied
(echo x > ` + dir + `/ro/b) 2>&1 || echo write-ro=denied
(echo x > ` + dir + `/rw/b) 2>&1 && echo write-rw=ok
(echo x > ` + dir + `/ro/file) 2>&1 && echo write-file-rule=ok
cat ` + dir + `/other/c 2>&1 || echo read-other=denied
mkdir ` + dir + `/rw/d 2>&1 || echo mkdir=denied
echo '#waiting'
read x
echo done`
}

func TestLastStepMatchesGo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (Landlock without no_new_privs, ptrace of the filters)")
	}
	if landlock.ABI() < 1 || !seccomp.Enabled {
		t.Skip("needs Landlock and libseccomp")
	}
	dir := t.TempDir()
	for _, d := range []string{"ro", "rw", "other"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"ro/a", "ro/file", "other/c"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=/usr/bin:/bin", "A=1", "HOME=/root", "EMPTY="}
	for name, cfg := range testConfigs(t) {
		t.Run(name, func(t *testing.T) {
			c := *cfg
			if c.Landlock != nil && c.Landlock.HandleFS {
				ll := *c.Landlock
				ll.Paths = append(append([]landlock.PathRule{}, ll.Paths...),
					landlock.PathRule{Path: filepath.Join(dir, "ro"), Access: landlock.ReadOnly},
					landlock.PathRule{Path: filepath.Join(dir, "rw"), Access: landlock.ReadWrite},
					landlock.PathRule{Path: filepath.Join(dir, "ro", "file"), Access: landlock.ReadWrite})
				c.Landlock = &ll
			}
			for _, d := range []string{"rw/b", "rw/d", "ro/b"} {
				os.RemoveAll(filepath.Join(dir, d))
			}
			cres := runStep(t, encodeWith(t, "require", &c), env, "sh", "-c", stepScript(dir))
			for _, d := range []string{"rw/b", "rw/d", "ro/b"} {
				os.RemoveAll(filepath.Join(dir, d))
			}
			gres := runStep(t, encodeWith(t, "go", &c), env, "sh", "-c", stepScript(dir))
			if cres.Code != 0 || !strings.Contains(cres.Out, "done") {
				t.Fatalf("C step: exit %d\n%s", cres.Code, cres.Out)
			}
			if cres.Out != gres.Out || cres.Code != gres.Code {
				t.Errorf("C step:\n%s(exit %d)\nGo step:\n%s(exit %d)", cres.Out, cres.Code, gres.Out, gres.Code)
			}
			// Equal, or deciding alike (see bpfsem_test.go: libcontainer's
			// ENOSYS stub is not deterministic).
			if err := sameFilters(cres.Filters, gres.Filters); err != nil {
				t.Errorf("seccomp filters differ: %v:\n C  %d %.200q\n Go %d %.200q", err, len(cres.Filters), cres.Filters, len(gres.Filters), gres.Filters)
			}
			wantFilters := 0
			if c.AgentSeccomp != nil {
				wantFilters = 1 + len(c.Seccomp)
			}
			if len(cres.Filters) != wantFilters {
				t.Errorf("%d filters, want %d", len(cres.Filters), wantFilters)
			}
			t.Logf("C step:\n%s", cres.Out)
		})
	}
}

// TestLastStepExitStatuses: a command that cannot be run fails alike.
func TestLastStepExitStatuses(t *testing.T) {
	if os.Geteuid() != 0 || landlock.ABI() < 1 || !seccomp.Enabled {
		t.Skip("needs root, Landlock and libseccomp")
	}
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("noexec", "#!/bin/sh\n", 0o644)
	write("garbage", "\x01\x02\x03\x04garbage", 0o755)
	write("ok", "#!/bin/sh\necho ran-ok\n", 0o755)
	cfg := testConfigs(t)["landlock+agent+spec"]
	c := *cfg
	ll := *c.Landlock
	ll.Paths = append(append([]landlock.PathRule{}, ll.Paths...), landlock.PathRule{Path: dir, Access: landlock.ReadOnly})
	c.Landlock = &ll
	for _, argv := range [][]string{
		{"no-such-command"}, {dir + "/missing"}, {dir + "/noexec"}, {dir + "/garbage"}, {dir}, {"ok"}, {"./ok"}, {"true"},
	} {
		for _, env := range [][]string{
			{"PATH=/usr/bin:/bin:" + dir},
			{"PATH=:/bin"},
			{"NOPATH=1"},
		} {
			cmd := func(mode string) (int, string) {
				mf, err := execsrv.Memfd("mxc-agent-config", encodeWith(t, mode, &c))
				if err != nil {
					t.Fatal(err)
				}
				defer mf.Close()
				x := exec.Command(os.Args[0], append([]string{agentexec.Verb, "--config-fd", "3", "--"}, argv...)...)
				x.Env, x.Dir, x.ExtraFiles = env, dir, []*os.File{mf}
				out, err := x.CombinedOutput()
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return ee.ExitCode(), string(out)
				}
				return 0, string(out)
			}
			cc, cout := cmd("require")
			gc, gout := cmd("go")
			if cc != gc || strings.Contains(cout, "ran-ok") != strings.Contains(gout, "ran-ok") {
				t.Errorf("%q %q: C exit %d %q, Go exit %d %q", argv, env, cc, cout, gc, gout)
			}
		}
	}

	// A binary outside every listed path: refused by Landlock, and both
	// steps say which rule to change, in the same words.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "tool"), []byte("#!/bin/sh\necho ran-tool\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, mode := range []string{"require", "go"} {
		mf, err := execsrv.Memfd("mxc-agent-config", encodeWith(t, mode, &c))
		if err != nil {
			t.Fatal(err)
		}
		x := exec.Command(os.Args[0], agentexec.Verb, "--config-fd", "3", "--", filepath.Join(outside, "tool"))
		x.Env, x.Dir, x.ExtraFiles = []string{"PATH=/usr/bin:/bin"}, dir, []*os.File{mf}
		out, err := x.CombinedOutput()
		mf.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 126 {
			t.Fatalf("%s step: %v, want exit 126\n%s", mode, err, out)
		}
		want := "permission denied (under the agent policy's filesystem rules, the agent must be able to read " + filepath.Join(outside, "tool") + " and, for a dynamic binary or a script, its loader, libraries or interpreter: list them, or directories above them, in readonlyPaths)"
		if !strings.Contains(string(out), want) {
			t.Errorf("%s step: %q, want it to contain %q", mode, out, want)
		}
		outs = append(outs, string(out))
	}
	if outs[0] != outs[1] {
		t.Errorf("C step %q, Go step %q", outs[0], outs[1])
	}
}

// TestLastStepFallback: a plan the C step cannot run here goes to the Go
// step, unless the runtime required the C step; a malformed plan fails
// closed.
func TestLastStepFallback(t *testing.T) {
	if os.Geteuid() != 0 || landlock.ABI() < 1 || !seccomp.Enabled {
		t.Skip("needs root, Landlock and libseccomp")
	}
	cfg := testConfigs(t)["scopes only"]
	run := func(data []byte) (int, string) {
		mf, err := execsrv.Memfd("mxc-agent-config", data)
		if err != nil {
			t.Fatal(err)
		}
		defer mf.Close()
		x := exec.Command(os.Args[0], agentexec.Verb, "--config-fd", "3", "--", "/bin/sh", "-c", "grep Seccomp_filters /proc/self/status")
		x.Env = []string{"PATH=/bin:/usr/bin", "MXC_AGENT_EXEC_DEBUG=1"}
		x.ExtraFiles = []*os.File{mf}
		out, err := x.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	// Another Landlock ABI: patch the plan's ABI in the LANDLOCK record.
	otherABI := func(data []byte) []byte {
		recs, err := agentexec.ParseRecords(data, agentexec.ConfigMagic)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Type == agentexec.RecLandlock {
				*(*uint32)(unsafe.Pointer(&r.Payload[4])) = 99
			}
		}
		return data
	}
	if code, out := run(encodeWith(t, "", cfg)); code != 0 || !strings.Contains(out, "C step") {
		t.Errorf("default: exit %d %q, want the C step", code, out)
	}
	if code, out := run(encodeWith(t, "go", cfg)); code != 0 || !strings.Contains(out, "Go step") {
		t.Errorf("MXC_AGENT_EXEC=go: exit %d %q, want the Go step", code, out)
	}
	if code, out := run(otherABI(encodeWith(t, "", cfg))); code != 0 || !strings.Contains(out, "Go step: the plan was made for another Landlock ABI") || !strings.Contains(out, "Seccomp_filters:\t1") {
		t.Errorf("another ABI: exit %d %q, want the Go step", code, out)
	}
	if code, out := run(otherABI(encodeWith(t, "require", cfg))); code != 126 || !strings.Contains(out, "required") {
		t.Errorf("another ABI, C required: exit %d %q, want 126", code, out)
	}
	truncated := encodeWith(t, "", cfg)
	truncated = truncated[:len(truncated)-3]
	if code, out := run(truncated); code != 126 {
		t.Errorf("a truncated config: exit %d %q, want 126", code, out)
	}
}
