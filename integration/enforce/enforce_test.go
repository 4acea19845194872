//go:build linux

package enforce_test

import (
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// forTiersAndVias runs fn for each tier, through run and through exec:
// cmds are run in the container and their results handed to check.
func forTiersAndVias(t *testing.T, pol func(spec.Tier) *spec.AgentPolicy, edit func(*specs.Spec), cmds [][]string, check func(t *testing.T, res []result)) {
	harness.RequireRoot(t)
	for _, tier := range []spec.Tier{spec.TierProcess, spec.TierSession} {
		for _, via := range []string{"run", "exec"} {
			t.Run(string(tier)+"/"+via, func(t *testing.T) {
				r := harness.NewRuntime(t)
				args := []string{"sleep", "600"}
				if via == "run" {
					args = []string{"sh", "-c", scriptFor(cmds)}
				}
				b := agentBundle(t, pol(tier), args...)
				if edit != nil {
					edit(b.Spec)
					b.Save(t)
				}
				id := newID("enf")
				var res []result
				if via == "run" {
					out := runOut(t, r, b, id)
					var err error
					if res, err = parseScript(out.Stdout, len(cmds)); err != nil {
						t.Fatalf("%v\nstderr: %s", err, out.Stderr)
					}
				} else {
					startDetached(t, r, b, id)
					for _, c := range cmds {
						out := r.Run(append([]string{"exec", id}, c...)...)
						res = append(res, result{Out: strings.TrimSpace(out.Stdout + out.Stderr), Code: out.Code})
					}
				}
				check(t, res)
			})
		}
	}
}

// TestAgentProcessConfined: the agent's program (init and exec) runs with
// no_new_privs, the seccomp filter, Landlock in force and no fd of the
// runtime left open.
func TestAgentProcessConfined(t *testing.T) {
	forTiersAndVias(t, basePolicy, nil, [][]string{
		{"escape", "status"},
		{"escape", "write", "/opt/unlisted/x"},
		{"escape", "write", "/workspace/x"},
	}, func(t *testing.T, res []result) {
		st := res[0].Out
		for _, want := range []string{"NoNewPrivs:1", "Seccomp:2", "Seccomp_filters:1", "fds=0,1,2 "} {
			if !strings.Contains(st+" ", want) {
				t.Errorf("status %q lacks %q", st, want)
			}
		}
		if !res[1].Denied() || !strings.Contains(res[1].Out, "permission denied") {
			t.Errorf("Landlock not in force: write to an unlisted path: %s", res[1])
		}
		if !res[2].OK() {
			t.Errorf("write to the workspace: %s", res[2])
		}
	})
}

// TestSpecSeccompProfileStacked: the spec's own profile is installed too
// (the stricter wins), even one that denies the landlock syscalls, as
// docker 20.10's default does.
func TestSpecSeccompProfileStacked(t *testing.T) {
	eperm := uint(1)
	profile := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"}, Action: specs.ActErrno, ErrnoRet: &eperm},
		},
	}
	forTiersAndVias(t, basePolicy, func(s *specs.Spec) { s.Linux.Seccomp = profile }, [][]string{
		{"escape", "status"},
		{"escape", "mkdir", "/tmp/d"},
		{"escape", "write", "/opt/unlisted/x"},
		{"escape", "mount", "/tmp/m"},
		{"escape", "write", "/tmp/ok"},
	}, func(t *testing.T, res []result) {
		if !strings.Contains(res[0].Out, "Seccomp_filters:2") {
			t.Errorf("expected the agent's and the spec's filters: %s", res[0])
		}
		if !res[1].Denied() {
			t.Errorf("the spec profile's mkdir rule: %s", res[1])
		}
		if !res[2].Denied() {
			t.Errorf("Landlock must hold although the spec profile denies landlock_*: %s", res[2])
		}
		if !res[3].Denied() {
			t.Errorf("the agent profile's mount rule: %s", res[3])
		}
		if !res[4].OK() {
			t.Errorf("allowed write: %s", res[4])
		}
	})
}

// createFails runs create and expects a refusal mentioning each of want,
// with nothing left under the root.
func createFails(t *testing.T, r *harness.Runtime, b *harness.Bundle, want ...string) {
	t.Helper()
	id := newID("refused")
	res := r.Run("create", "--bundle", b.Dir, id)
	if res.Err == nil {
		t.Fatalf("create succeeded; want a refusal")
	}
	for _, w := range want {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("error %q does not mention %q", res.Stderr, w)
		}
	}
	if _, err := os.Stat(filepath.Join(r.Root, id)); err == nil {
		t.Errorf("state dir of the refused container is left behind")
	}
	assertNoHostState(t, r.Root)
}

// assertNoHostState checks that no id-mapped rootfs and no session slot
// of root is left.
func assertNoHostState(t *testing.T, root string) {
	t.Helper()
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), filepath.Join(root, ".mxc-idmap")) {
		t.Errorf("an id-mapped rootfs mount under %s is left", root)
	}
	ents, _ := os.ReadDir("/run/mxc-session-slots")
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join("/run/mxc-session-slots", e.Name()))
		if strings.Contains(string(b), root+"/") {
			t.Errorf("session slot %s of %s is left: %s", e.Name(), root, b)
		}
	}
}

func TestMicroVMRefused(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	b := agentBundle(t, basePolicy(spec.TierMicroVM), "true")
	createFails(t, r, b, "microvm", "virtual-machine backend")
}

// TestDynamicRuntimeRefused: a dynamically linked mxc-runtime cannot run
// the agent's last step inside a container (its interpreter resolves in the
// container's rootfs), so a policy is refused at create with the reason and
// nothing is left, rather than every process failing with ENOENT.
func TestDynamicRuntimeRefused(t *testing.T) {
	// Made before the runtime: cleanups run last-in first-out, so the
	// runtime's teardown (delete --force with this binary) runs while the
	// binary still exists.
	dyn := filepath.Join(t.TempDir(), "mxc-runtime")
	r := harness.NewRuntime(t)
	escapeBinary(t)
	// The Makefile's flags but its static linking, so that only the link
	// is new to the build cache.
	cmd := osexec.Command("go", "build", "-trimpath", "-tags", "seccomp netgo osusergo urfave_cli_no_docs", "-o", dyn, "./cmd/mxc-runtime")
	cmd.Dir = harness.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build a dynamically linked mxc-runtime: %v\n%s", err, out)
	}
	r.Bin = dyn
	b := agentBundle(t, basePolicy(spec.TierProcess), "true")
	createFails(t, r, b, "dynamically linked", "make build")
	// Without a policy the same binary runs the container as runc would.
	plain := harness.NewBundle(t, "true")
	if res := r.Run("run", "--bundle", plain.Dir, newID("dynamic-plain")); res.Err != nil {
		t.Errorf("run without a policy: %v\n%s", res.Err, res.Stderr)
	}
}

func TestSeccompListenerRefused(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	b := agentBundle(t, basePolicy(spec.TierProcess), "true")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/seccomp-agent.sock",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	b.Save(t)
	createFails(t, r, b, "listenerPath", "agent policy")
}

func TestUIDevicesRefused(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	b := agentBundle(t, basePolicy(spec.TierProcess), "true")
	mode := os.FileMode(0o620)
	zero := uint32(0)
	b.Spec.Linux.Devices = append(b.Spec.Linux.Devices, specs.LinuxDevice{Path: "/dev/tty3", Type: "c", Major: 4, Minor: 3, FileMode: &mode, UID: &zero, GID: &zero})
	b.Save(t)
	createFails(t, r, b, "/dev/tty3", "host terminal")
}

// TestSessionRefusedRollsBack: a session container that fails after its
// id range and id-mapped rootfs were set up leaves neither behind, whether
// it fails before libcontainer made the container (its config validation)
// or after (its init).
func TestSessionRefusedRollsBack(t *testing.T) {
	for name, edit := range map[string]func(*specs.Spec){
		// libcontainer's validator refuses a sysctl outside the container's
		// namespaces before it creates anything.
		"before libcontainer create": func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "10"} },
		// The init fails on a bind whose source does not exist.
		"in the init": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/nonexistent-mxc", Options: []string{"bind"}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := harness.NewRuntime(t)
			escapeBinary(t)
			b := agentBundle(t, basePolicy(spec.TierSession), "true")
			edit(b.Spec)
			b.Save(t)
			id := newID("rollback")
			res := r.Run("run", "--bundle", b.Dir, id)
			if res.Err == nil {
				t.Fatal("run succeeded")
			}
			t.Logf("refused: %s", res.Stderr)
			if _, err := os.Stat(filepath.Join(r.Root, id)); err == nil {
				t.Error("state dir left behind")
			}
			assertNoHostState(t, r.Root)
		})
	}
}

// TestExecCapabilitiesBounded: exec --cap beyond the policy is refused;
// one within it is granted.
func TestExecCapabilitiesBounded(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	b := agentBundle(t, basePolicy(spec.TierProcess), "sleep", "600")
	id := newID("caps")
	startDetached(t, r, b, id)
	res := r.Run("exec", "--cap", "CAP_SYS_ADMIN", id, "true")
	if res.Code != 255 || !strings.Contains(res.Stderr, "CAP_SYS_ADMIN") {
		t.Errorf("exec --cap CAP_SYS_ADMIN: want refusal naming it, got %d %q", res.Code, res.Stderr)
	}
	res = r.Run("exec", "--cap", "CAP_CHOWN", id, "escape", "status")
	if res.Err != nil || !strings.Contains(res.Stdout, "CapBnd:") {
		t.Fatalf("exec --cap CAP_CHOWN: %v %s %s", res.Err, res.Stdout, res.Stderr)
	}
	if !strings.Contains(res.Stdout, "NoNewPrivs:1") {
		t.Errorf("exec'd process without no_new_privs: %s", res.Stdout)
	}
	// --no-new-privs=false cannot lift it either.
	res = r.Run("exec", "--no-new-privs=false", id, "escape", "status")
	if !strings.Contains(res.Stdout, "NoNewPrivs:1") {
		t.Errorf("exec --no-new-privs=false: %s %s", res.Stdout, res.Stderr)
	}
}

// TestSessionStaleIDMapMount: a create killed after it mounted the
// id-mapped rootfs and before libcontainer made the state dir leaves a
// mount keyed by the id and nothing else. delete --force of the id removes
// it, and a later create of the same id replaces it rather than stacking
// another on top. (A tmpfs stands in for the leftover mount.)
func TestSessionStaleIDMapMount(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	b := agentBundle(t, basePolicy(spec.TierSession), "true")
	id := newID("stale")
	leftover := filepath.Join(r.Root, ".mxc-idmap", id)
	plant := func() {
		t.Helper()
		if err := os.MkdirAll(leftover, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", leftover, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(leftover, unix.MNT_DETACH) })
	}
	mountsAt := func() int {
		n := 0
		for _, m := range harness.MountsUnder(leftover) {
			if m == leftover {
				n++
			}
		}
		return n
	}

	plant()
	if res := r.Run("delete", "--force", id); res.Err != nil {
		t.Fatalf("delete --force of the interrupted create: %v %s", res.Err, res.Stderr)
	}
	if n := mountsAt(); n != 0 {
		t.Fatalf("%d mounts left at %s after delete --force", n, leftover)
	}

	plant()
	r.MustRun("create", "--bundle", b.Dir, id)
	if n := mountsAt(); n != 1 {
		t.Errorf("%d mounts at %s after create over a stale one, want the container's own", n, leftover)
	}
	r.MustRun("start", id)
	if err := r.WaitStatus(id, "stopped", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r.MustRun("delete", id)
	if n := mountsAt(); n != 0 {
		t.Errorf("%d mounts left at %s after delete", n, leftover)
	}
	assertNoHostState(t, r.Root)
}

// TestSessionConcurrentRuns: session-tier containers created and removed
// at once share the state root's .mxc-idmap directory; none of them may
// find it pulled from under its mkdir (the density benchmark did).
func TestSessionConcurrentRuns(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	const workers, rounds = 8, 4
	errs := make(chan string, workers*rounds)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		// A bundle each: a bundle names its cgroup.
		b := agentBundle(t, basePolicy(spec.TierSession), "true")
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				id := newID(fmt.Sprintf("conc%d", w))
				if res := r.Run("run", "--bundle", b.Dir, id); res.Err != nil {
					errs <- fmt.Sprintf("%s: %v %s", id, res.Err, res.Stderr)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	assertNoHostState(t, r.Root)
}

// TestSessionIdentity: a session agent runs in a user namespace mapped to
// a host id range of its own, owning no host uid below it; the range is
// recorded and freed at delete.
func TestSessionIdentity(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	b := agentBundle(t, basePolicy(spec.TierSession), "sleep", "600")
	id := newID("session")
	startDetached(t, r, b, id)
	var rec struct {
		Enforcement struct {
			UserNS  bool   `json:"userns"`
			IDRange string `json:"idRange"`
		} `json:"enforcement"`
	}
	raw, err := os.ReadFile(filepath.Join(r.Root, id, "mxc.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if !rec.Enforcement.UserNS || rec.Enforcement.IDRange == "" {
		t.Fatalf("record: %s", raw)
	}
	first, _, _ := strings.Cut(rec.Enforcement.IDRange, "-")
	base, _ := strconv.ParseUint(first, 10, 32)
	if base < 1<<20 {
		t.Errorf("id range %s starts too low", rec.Enforcement.IDRange)
	}
	st, err := r.State(id)
	if err != nil {
		t.Fatal(err)
	}
	pid := int(st["pid"].(float64))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") {
			for _, f := range strings.Fields(l)[1:] {
				v, _ := strconv.ParseUint(f, 10, 32)
				if v < base {
					t.Errorf("agent holds host id %d below its range (%s): %s", v, rec.Enforcement.IDRange, l)
				}
			}
		}
	}
	res := r.Run("exec", id, "cat", "/proc/self/uid_map")
	if f := strings.Fields(res.Stdout); len(f) != 3 || f[1] != first {
		t.Errorf("uid_map %q, want host base %s", res.Stdout, first)
	}
	if res := r.Run("delete", "--force", id); res.Err != nil {
		t.Fatal(res.Stderr)
	}
	assertNoHostState(t, r.Root)
}

// TestEscapeTimeoutKill: process.timeout kills the container when it runs
// out (its init and exec'd processes), with a timeout audit event; a
// process that ends in time is untouched.
func TestEscapeTimeoutKill(t *testing.T) {
	harness.RequireRoot(t)
	escapeBinary(t)
	pol := func(tier spec.Tier, ms uint64) *spec.AgentPolicy {
		p := basePolicy(tier)
		p.Process = &spec.Process{Timeout: ms}
		return p
	}
	for _, tier := range []spec.Tier{spec.TierProcess, spec.TierSession} {
		t.Run(string(tier)+"/run", func(t *testing.T) {
			r := harness.NewRuntime(t)
			b := agentBundle(t, pol(tier, 1500), "sleep", "60")
			id := newID("timeout")
			start := time.Now()
			res := r.Run("run", "--keep", "--bundle", b.Dir, id)
			t.Cleanup(func() { r.Run("delete", "--force", id) })
			if res.Code != 137 || time.Since(start) > 50*time.Second {
				t.Fatalf("run: exit %d after %s, want 137 (SIGKILL) at the timeout: %s", res.Code, time.Since(start), res.Stderr)
			}
			if !hasEvent(auditEvents(t, r, id), "timeout") {
				t.Error("no timeout audit event")
			}
			// Twin: a process that ends in time.
			b2 := agentBundle(t, pol(tier, 5000), "true")
			if res := r.Run("run", "--bundle", b2.Dir, newID("intime")); res.Err != nil {
				t.Errorf("process within its timeout: %v %s", res.Err, res.Stderr)
			}
		})
		t.Run(string(tier)+"/exec", func(t *testing.T) {
			r := harness.NewRuntime(t)
			b := agentBundle(t, pol(tier, 2500), "sleep", "600")
			id := newID("timeout")
			startDetached(t, r, b, id)
			if res := r.Run("exec", id, "true"); res.Err != nil {
				t.Fatalf("exec within the timeout: %v %s", res.Err, res.Stderr)
			}
			res := r.Run("exec", id, "sleep", "60")
			if res.Code == 0 {
				t.Fatalf("exec'd sleep survived the timeout")
			}
			if err := r.WaitStatus(id, "stopped", 10*time.Second); err != nil {
				t.Error(err)
			}
			if !hasEvent(auditEvents(t, r, id), "timeout") {
				t.Error("no timeout audit event")
			}
		})
	}
}

// TestOOMAuditEvent: a memory bomb is killed inside the cgroup and the
// monitor reports it.
func TestOOMAuditEvent(t *testing.T) {
	r := harness.NewRuntime(t)
	escapeBinary(t)
	b := agentBundle(t, basePolicy(spec.TierProcess), "sleep", "600")
	id := newID("oom")
	startDetached(t, r, b, id)
	res := r.Run("exec", id, "escape", "mem", "512")
	if res.Code != 137 {
		t.Fatalf("memory bomb: exit %d %s", res.Code, res.Stdout)
	}
	if !waitFor(5*time.Second, func() bool { return hasEvent(auditEvents(t, r, id), "oom") }) {
		t.Error("no oom audit event")
	}
	if res := r.Run("exec", id, "escape", "noop"); !strings.HasPrefix(res.Stdout, "OK") {
		t.Errorf("the container is unusable after the OOM kill: %s %s", res.Stdout, res.Stderr)
	}
}

// TestPolicyAppliedEvent: the policy.applied audit event names the
// Landlock ABI in force, and says why when the agent runs without a
// Landlock domain (no filesystem rule) instead of reporting ABI 0.
func TestPolicyAppliedEvent(t *testing.T) {
	r := harness.NewRuntime(t)
	noFiles := basePolicy(spec.TierProcess)
	noFiles.Filesystem = nil
	for _, tc := range []struct {
		name string
		pol  *spec.AgentPolicy
		want func(map[string]string) bool
	}{
		{"filesystem rules", basePolicy(spec.TierProcess), func(d map[string]string) bool {
			abi, err := strconv.Atoi(d["landlockABI"])
			return err == nil && abi > 0 && d["landlock"] == ""
		}},
		{"no filesystem rule", noFiles, func(d map[string]string) bool {
			_, has := d["landlockABI"]
			return !has && strings.HasPrefix(d["landlock"], "none needed")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := agentBundle(t, tc.pol, "true")
			id := newID("applied")
			t.Cleanup(func() { r.Run("delete", "--force", id) })
			r.MustRun("create", "--bundle", b.Dir, id)
			var found bool
			for _, ev := range auditEvents(t, r, id) {
				if ev.Kind == audit.KindPolicy {
					found = true
					if !tc.want(ev.Detail) {
						t.Errorf("policy.applied detail %v", ev.Detail)
					}
				}
			}
			if !found {
				t.Error("no policy.applied event")
			}
		})
	}
}
