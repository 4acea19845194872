//go:build linux

package enforce_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/linux/sandbox"
	"mxc.dev/mxc/spec"
)

// The C last step and the C sandbox (package fastexec) against their Go
// references: the same container or command, once through each, must hold
// the same (status, capabilities, filters byte for byte, fds) and be
// refused and allowed the same things. MXC_AGENT_EXEC=require makes the
// runtime fail rather than let the Go step run; =go makes it take the Go
// step. MXC_SANDBOX_FAST=require / 0 do the same for `sandbox`.

// runEnv is Runtime.Run with extra environment for mxc-runtime.
func runEnv(t *testing.T, r *harness.Runtime, env []string, args ...string) harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()
	cmd := r.Command(ctx, args...)
	cmd.Env = append(cmd.Env, env...)
	outF, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.CreateTemp(t.TempDir(), "err")
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, outF, errF
	err = cmd.Run()
	out, _ := os.ReadFile(outF.Name())
	serr, _ := os.ReadFile(errF.Name())
	res := harness.Result{Stdout: string(out), Stderr: string(serr), Err: err}
	if ee, ok := err.(interface{ ExitCode() int }); ok && err != nil {
		res.Code = ee.ExitCode()
	}
	return res
}

// seccompFilters reads the filters a process holds through ptrace
// (newest first, each with its flags).
func seccompFilters(t *testing.T, pid int) []string {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		t.Fatalf("ptrace seize %d: %v", pid, err)
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
			t.Fatalf("PTRACE_SECCOMP_GET_FILTER: %v", e)
		}
		prog := make([]byte, 8*n)
		if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), uintptr(i), uintptr(unsafe.Pointer(&prog[0])), 0, 0); e != 0 {
			t.Fatalf("PTRACE_SECCOMP_GET_FILTER: %v", e)
		}
		md := struct{ FilterOff, Flags uint64 }{FilterOff: uint64(i)}
		if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_METADATA, uintptr(pid), unsafe.Sizeof(md), uintptr(unsafe.Pointer(&md)), 0, 0); e != 0 {
			t.Fatalf("PTRACE_SECCOMP_GET_METADATA: %v", e)
		}
		out = append(out, fmt.Sprintf("flags=%#x %x", md.Flags, prog))
	}
	return out
}

// procView is what /proc says a process holds (what the last step may
// change or must leave alone).
func procView(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		// (Uid and Gid are libcontainer's; a session container's are its
		// own id range's, different for each container.)
		for _, k := range []string{"NoNewPrivs:", "Seccomp:", "Seccomp_filters:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "SigBlk:", "SigIgn:", "SigCgt:"} {
			if strings.HasPrefix(l, k) {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var fds []string
	for _, e := range ents {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		switch {
		case strings.HasPrefix(link, "pipe:") || strings.HasPrefix(link, "socket:"):
			link = link[:strings.IndexByte(link, ':')]
		case strings.HasPrefix(link, "/") && link != os.DevNull:
			link = "file" // each container's log files
		}
		fds = append(fds, e.Name()+"->"+link)
	}
	out = append(out, "fds "+strings.Join(fds, " "))
	lim, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	out = append(out, string(lim))
	return strings.Join(out, "\n")
}

// stackedProfile is a spec profile the last step stacks on the agent's:
// default allow, more than 32 rules (libcontainer's binary tree), an
// argument rule, and a filter flag (loaded with seccomp(2), not prctl).
func stackedProfile() *specs.LinuxSeccomp {
	eperm := uint(1)
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x0008, Op: specs.OpEqualTo}}},
		},
	}
	for _, n := range strings.Fields("acct add_key bpf clock_adjtime clock_settime create_module delete_module finit_module get_kernel_syms get_mempolicy init_module ioperm iopl kcmp kexec_file_load kexec_load keyctl lookup_dcookie mbind move_pages name_to_handle_at nfsservctl open_by_handle_at perf_event_open pivot_root process_vm_readv process_vm_writev quotactl reboot request_key set_mempolicy setns settimeofday stime swapoff swapon sysfs umount umount2 unshare uselib userfaultfd ustat vm86 vm86old") {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActErrno, ErrnoRet: &eperm})
	}
	return p
}

func TestLastStepCMatchesGo(t *testing.T) {
	harness.RequireRoot(t)
	probes := [][]string{
		{"escape", "status"},
		{"escape", "write", "/opt/unlisted/x"},
		{"escape", "write", "/workspace/x"},
		{"escape", "write", "/etc/pwned"},
		{"escape", "read", "/workspace/secret"},
		{"escape", "read", "/etc/secret-dir/token"},
		{"escape", "read", "/proc/self/root/workspace/secret"},
		{"escape", "read", "/opt/unlisted/notes.txt"},
		{"escape", "read", "/workspace/public"},
		{"escape", "mkdir", "/tmp/d"},
		{"escape", "mount", "/tmp/m"},
		{"escape", "userns"},
		{"escape", "keyctl"},
		{"escape", "bpf"},
		{"escape", "io-uring"},
		{"escape", "raw-socket"},
		{"sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; echo; env | sort"},
		{"nosuchcommand"},
		{"/workspace/public"},
	}
	for _, tier := range []spec.Tier{spec.TierProcess, spec.TierSession} {
		t.Run(string(tier), func(t *testing.T) {
			r := harness.NewRuntime(t)
			type side struct {
				view    string
				filters []string
				out     []string
			}
			var sides [2]side
			for i, mode := range []string{"require", "go"} {
				env := []string{"MXC_AGENT_EXEC=" + mode, "MXC_EXEC_FAST=0"}
				b := agentBundle(t, basePolicy(tier), "sleep", "600")
				b.Spec.Linux.Seccomp = stackedProfile()
				b.Spec.Process.Env = append(b.Spec.Process.Env, "DUP=1", "KEEP=me")
				b.Save(t)
				id := newID("cstep-" + mode)
				t.Cleanup(func() { r.Run("delete", "--force", id) })
				if res := runEnv(t, r, env, "run", "--detach", "--bundle", b.Dir, id); res.Err != nil {
					t.Fatalf("run --detach (%s): %v %s", mode, res.Err, res.Stderr)
				}
				st, err := r.State(id)
				if err != nil {
					t.Fatal(err)
				}
				pid := int(st["pid"].(float64))
				// The init went through the step; it sleeps now.
				if !waitFor(5*time.Second, func() bool {
					b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
					return strings.TrimSpace(string(b)) == "sleep"
				}) {
					t.Fatalf("%s: the init did not reach sleep", mode)
				}
				sides[i].view = procView(t, pid)
				sides[i].filters = seccompFilters(t, pid)
				for _, p := range probes {
					res := runEnv(t, r, env, append([]string{"exec", id}, p...)...)
					sides[i].out = append(sides[i].out, fmt.Sprintf("%q: exit %d: %s", p, res.Code, strings.TrimSpace(res.Stdout+res.Stderr)))
				}
				// And `run` in the foreground (the init's stdio are pipes here).
				rb := agentBundle(t, basePolicy(tier), "sh", "-c", scriptFor(probes[:4]))
				rb.Spec.Linux.Seccomp = stackedProfile()
				rb.Save(t)
				res := runEnv(t, r, env, "run", "--bundle", rb.Dir, newID("cstep-run-"+mode))
				sides[i].out = append(sides[i].out, fmt.Sprintf("run: exit %d: %s", res.Code, res.Stdout))
			}
			c, g := sides[0], sides[1]
			if c.view != g.view {
				t.Errorf("the init's view differs:\nC step:\n%s\nGo step:\n%s", c.view, g.view)
			}
			if len(c.filters) != 2 || strings.Join(c.filters, "|") != strings.Join(g.filters, "|") {
				t.Errorf("the init's seccomp filters differ: C %d, Go %d", len(c.filters), len(g.filters))
			}
			for k := range c.out {
				if c.out[k] != g.out[k] {
					t.Errorf("differ:\n C  %s\n Go %s", c.out[k], g.out[k])
				}
			}
			for _, want := range []string{"NoNewPrivs: 1", "Seccomp: 2", "Seccomp_filters: 2"} {
				if !strings.Contains(c.view, want) {
					t.Errorf("the init's status lacks %q:\n%s", want, c.view)
				}
			}
			if !strings.Contains(c.out[0], "fds=0,1,2 ") && !strings.HasSuffix(strings.Split(c.out[0], "\n")[0], "fds=0,1,2") {
				t.Errorf("status through the C step: %s", c.out[0])
			}
			t.Logf("C step, exec:\n%s", strings.Join(c.out, "\n"))
		})
	}
}

// sandboxRunEnv runs the sandbox with extra environment.
func (e *sandboxEnv) runWith(t *testing.T, env []string, args ...string) result {
	t.Helper()
	saved := e.env
	e.env = append(append([]string{}, e.env...), env...)
	defer func() { e.env = saved }()
	return e.run(t, args...)
}

// planPath is where the sandbox caches the plan of e's policy.
func (e *sandboxEnv) planPath(t *testing.T) string {
	t.Helper()
	pol, err := os.ReadFile(e.policy)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sandbox.IdentityOf(harness.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	k := sandbox.PlanKeyWith(pol, nil, id)
	return filepath.Join(sandbox.PlanDir, hex.EncodeToString(k[:]))
}

func TestSandboxCPathMatchesGo(t *testing.T) {
	e := newSandboxEnv(t, "")
	host := hostSleeper(t)
	pid := strconv.Itoa(host.Process.Pid)
	// The first sandbox of a policy runs in Go and caches its plan.
	if r := e.runWith(t, []string{"MXC_SANDBOX_FAST_DEBUG=1"}, "true"); r.Code != 0 || !strings.Contains(r.Out, "Go path") {
		t.Fatalf("first sandbox: %s", r)
	}
	if fi, err := os.Stat(e.planPath(t)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("plan not cached root-only: %v %v", fi, err)
	}
	if r := e.runWith(t, []string{"MXC_SANDBOX_FAST_DEBUG=1"}, "true"); r.Code != 0 || !strings.Contains(r.Out, "C path") {
		t.Fatalf("second sandbox: %s", r)
	}
	probes := [][]string{
		{e.probe, "status"},
		{e.probe, "write", filepath.Join(e.ws, "out")},
		{e.probe, "write", filepath.Join(e.outside, "x")},
		{e.probe, "write", "/etc/mxc-sandbox-pwned"},
		{e.probe, "read", filepath.Join(e.ws, ".env")},
		{e.probe, "read", filepath.Join(e.ws, "secrets", "token")},
		{e.probe, "symlink-read", filepath.Join(e.ws, ".env"), filepath.Join(e.ws, "lnk")},
		{e.probe, "read", filepath.Join(e.dir, "unlisted", "notes")},
		{e.probe, "read", filepath.Join(e.ws, "public")},
		{e.probe, "mount", filepath.Join(e.ws, "m")},
		{e.probe, "unshare-user"},
		{e.probe, "kill", pid},
		{e.probe, "ptrace", pid},
		{e.probe, "abstract-connect", "x"},
		{e.probe, "keyctl"},
		{e.probe, "bpf"},
		{e.probe, "io-uring"},
		{e.probe, "raw-socket"},
		{e.probe, "udp-socket"},
		{"sh", "-c", "grep -E '^(Uid|Gid|Groups|NoNewPrivs|Seccomp|Seccomp_filters|Cap[A-Za-z]+|SigBlk|SigIgn):' /proc/self/status; ls /proc/self/fd | tr '\\n' ' '; echo; pwd; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; env | sort | grep -v '^MXC_SANDBOX_FAST'"},
		{"sh", "-c", "exit 42"},
		{"/bin/mxc-does-not-exist"},
		{filepath.Join(e.ws, "public")},
	}
	for _, p := range probes {
		for _, f := range []string{filepath.Join(e.ws, "out"), filepath.Join(e.ws, "lnk")} {
			os.Remove(f)
		}
		c := e.runWith(t, []string{"MXC_SANDBOX_FAST=require"}, p...)
		for _, f := range []string{filepath.Join(e.ws, "out"), filepath.Join(e.ws, "lnk")} {
			os.Remove(f)
		}
		g := e.runWith(t, []string{"MXC_SANDBOX_FAST=0"}, p...)
		if c != g {
			t.Errorf("%q:\n C  path: %s\n Go path: %s", p[1:], c, g)
		}
	}
	if !alive(host) {
		t.Error("the host process was signalled")
	}
	os.Remove("/etc/mxc-sandbox-pwned")
}

// TestSandboxCPathPassThrough: exit status, signals, stdio and the
// terminal through the C path.
func TestSandboxCPathPassThrough(t *testing.T) {
	e := newSandboxEnv(t, "")
	if r := e.run(t, "true"); r.Code != 0 {
		t.Fatalf("warm-up: %s", r)
	}
	e.env = []string{"MXC_SANDBOX_FAST=require"}
	sandboxPassThrough(t, e)
}

// TestSandboxPlanCache: the cache holds only what root wrote for exactly
// this policy and binary, and an edited policy is compiled again.
func TestSandboxPlanCache(t *testing.T) {
	e := newSandboxEnv(t, "")
	debug := []string{"MXC_SANDBOX_FAST_DEBUG=1"}
	path := func(r result) string {
		switch {
		case strings.Contains(r.Out, "C path"):
			return "C"
		case strings.Contains(r.Out, "Go path"):
			return "Go"
		}
		return "?"
	}
	if r := e.runWith(t, debug, "true"); path(r) != "Go" {
		t.Fatalf("first run: %s", r)
	}
	if r := e.runWith(t, debug, "true"); path(r) != "C" {
		t.Fatalf("second run: %s", r)
	}
	plan := e.planPath(t)

	t.Run("edited policy", func(t *testing.T) {
		// Make the outside directory writable in the policy: a new key, a
		// new compilation, and the new rule in force on both paths.
		extra := filepath.Join(e.dir, "extra")
		if err := os.Mkdir(extra, 0o755); err != nil {
			t.Fatal(err)
		}
		pol, _ := os.ReadFile(e.policy)
		edited := strings.Replace(string(pol), "readwritePaths: ["+e.ws+"]", "readwritePaths: ["+e.ws+", "+extra+"]", 1)
		if edited == string(pol) {
			t.Fatal("could not edit the policy")
		}
		if err := os.WriteFile(e.policy, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		p2 := e.planPath(t)
		t.Cleanup(func() { os.Remove(p2) })
		target := filepath.Join(extra, "x")
		r := e.runWith(t, debug, e.probe, "write", target)
		if path(r) != "Go" || !strings.Contains(r.Out, "OK") {
			t.Errorf("first run after the edit: %s", r)
		}
		os.Remove(target)
		if r := e.runWith(t, debug, e.probe, "write", target); path(r) != "C" || !strings.Contains(r.Out, "OK") {
			t.Errorf("second run after the edit: %s", r)
		}
		os.Remove(target)
		if err := os.WriteFile(e.policy, pol, 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e.runWith(t, debug, e.probe, "write", target); path(r) != "C" || !r.Denied() && !strings.Contains(r.Out, "DENIED") {
			t.Errorf("back to the first policy: %s", r)
		}
	})

	t.Run("plan writable by others", func(t *testing.T) {
		if err := os.Chmod(plan, 0o666); err != nil {
			t.Fatal(err)
		}
		if r := e.runWith(t, debug, "true"); path(r) != "Go" || !strings.Contains(r.Out, "not trusted") {
			t.Errorf("a world-writable plan: %s", r)
		}
		// The Go path replaced it with a root-only one.
		if fi, err := os.Stat(plan); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("plan after the Go path: %v %v", fi, err)
		}
		if r := e.runWith(t, debug, "true"); path(r) != "C" {
			t.Errorf("after the rewrite: %s", r)
		}
	})

	t.Run("plan owned by another user", func(t *testing.T) {
		if err := os.Chown(plan, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if r := e.runWith(t, debug, "true"); path(r) != "Go" || !strings.Contains(r.Out, "not trusted") {
			t.Errorf("a plan of another user: %s", r)
		}
		if r := e.runWith(t, debug, "true"); path(r) != "C" {
			t.Errorf("after the rewrite: %s", r)
		}
	})

	t.Run("plan of another policy", func(t *testing.T) {
		// A valid plan, root's, under this policy's name but written for
		// another key: refused; with the C path required, nothing runs.
		other := newSandboxEnv(t, "")
		if r := other.run(t, "true"); r.Code != 0 {
			t.Fatal(r)
		}
		data, err := os.ReadFile(other.planPath(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(plan, data, 0o600); err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(e.ws, "ran")
		r := e.runWith(t, []string{"MXC_SANDBOX_FAST=require"}, "touch", marker)
		if r.Code != 125 || !strings.Contains(r.Out, "another key") {
			t.Errorf("a plan of another key, C path required: %s", r)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Error("the command ran")
		}
		if r := e.runWith(t, debug, "true"); path(r) != "Go" {
			t.Errorf("a plan of another key: %s", r)
		}
		if r := e.runWith(t, debug, "true"); path(r) != "C" {
			t.Errorf("after the rewrite: %s", r)
		}
	})

	t.Run("plan is a symlink", func(t *testing.T) {
		data, err := os.ReadFile(plan)
		if err != nil {
			t.Fatal(err)
		}
		real := filepath.Join(sandbox.PlanDir, "elsewhere-"+strconv.Itoa(os.Getpid()))
		t.Cleanup(func() { os.Remove(real) })
		if err := os.WriteFile(real, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(plan)
		if err := os.Symlink(real, plan); err != nil {
			t.Fatal(err)
		}
		if r := e.runWith(t, debug, "true"); path(r) != "Go" {
			t.Errorf("a symlinked plan: %s", r)
		}
		if r := e.runWith(t, debug, "true"); path(r) != "C" {
			t.Errorf("after the rewrite: %s", r)
		}
	})

	t.Run("cache directory writable by others", func(t *testing.T) {
		fi, err := os.Stat(sandbox.PlanDir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(sandbox.PlanDir, fi.Mode().Perm()) })
		if err := os.Chmod(sandbox.PlanDir, 0o777); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if r := e.runWith(t, debug, "true"); path(r) != "Go" || !strings.Contains(r.Out, "no trusted plan directory") {
				t.Errorf("run %d with a world-writable cache: %s", i, r)
			}
		}
		os.Chmod(sandbox.PlanDir, fi.Mode().Perm())
		if r := e.runWith(t, debug, "true"); path(r) != "C" {
			t.Errorf("after restoring the cache: %s", r)
		}
	})

	t.Run("disabled", func(t *testing.T) {
		if r := e.runWith(t, append(debug, "MXC_SANDBOX_FAST=0"), "true"); r.Code != 0 || path(r) != "?" {
			t.Errorf("MXC_SANDBOX_FAST=0: %s", r)
		}
	})
}
