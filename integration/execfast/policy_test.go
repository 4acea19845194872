//go:build linux

package execfast_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// agentPolicy is the escape battery's policy (integration/enforce): the
// rootfs's programs read-only, a workspace and /tmp read-write, a secret
// file and directory denied, small pids and memory limits.
func agentPolicy(tier spec.Tier) *spec.AgentPolicy {
	return harness.BatteryPolicy("execfast <agent>", tier)
}

// agentContainer runs a busybox container with the probe at /bin/escape
// and pol, as the battery's containers, as uid 1000; its exec server is
// started by the first (normal-path) exec, as in production.
func agentContainer(t *testing.T, pol *spec.AgentPolicy) (*harness.Runtime, string, serverStatus) {
	t.Helper()
	r := harness.NewRuntime(t)
	b := harness.NewBundle(t, "sleep", "600")
	rootfs := filepath.Join(b.Dir, "rootfs")
	probe, err := os.ReadFile(escapeBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	harness.WriteTree(t, rootfs, map[string]string{
		"bin/escape":             string(probe),
		"workspace/secret":       "TOPSECRET-file\n",
		"workspace/public":       "PUBLIC\n",
		"workspace/sub/.keep":    "",
		"etc/secret-dir/token":   "TOPSECRET-dir\n",
		"etc/public-dir/readme":  "PUBLIC\n",
		"opt/unlisted/notes.txt": "unlisted\n",
	}, "workspace", 1000, 1000)
	b.Spec.Process.User = specs.User{UID: 1000, GID: 1000}
	b.Spec.Process.Env = append(b.Spec.Process.Env, "DISPLAY=:0", "KEEP=me")
	raw, err := json.Marshal(pol)
	if err != nil {
		t.Fatal(err)
	}
	if b.Spec.Annotations == nil {
		b.Spec.Annotations = map[string]string{}
	}
	b.Spec.Annotations[spec.AnnotationPolicy] = string(raw)
	b.Save(t)
	id := newID("agent")
	startDetached(t, r, b, id)
	// The first exec takes the normal path and starts the server.
	if res := run(t, r, "", "", nil, "exec", id, "true"); res.Code != 0 {
		t.Fatalf("first exec: %s", res)
	}
	return r, id, waitServer(t, r, id)
}

func TestAgentContainerExecIsExact(t *testing.T) {
	harness.RequireRoot(t)
	for _, tier := range []spec.Tier{spec.TierProcess, spec.TierSession} {
		t.Run(string(tier), func(t *testing.T) {
			r, id, _ := agentContainer(t, agentPolicy(tier))
			res := same(t, r, "", "exec", id, "sh", "-c", whatItHolds)
			for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "Seccomp_filters:\t1", "Uid:\t1000", "KEEP=me"} {
				if !strings.Contains(res.Stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, res.Stdout)
				}
			}
			if strings.Contains(res.Stdout, "DISPLAY") {
				t.Errorf("DISPLAY was not scrubbed:\n%s", res.Stdout)
			}
			// --env is scrubbed the same way.
			same(t, r, "", "exec", "-e", "DISPLAY=:9", "-e", "XAUTHORITY=/x", "-e", "OK=1", id, "env")
			// The probe's own view (fds, filters), and accesses Landlock,
			// the masks and the mounts refuse or allow: identical.
			for _, c := range [][]string{
				{"escape", "status"},
				{"escape", "write", "/opt/unlisted/x"},
				{"escape", "write", "/etc/pwned"},
				{"escape", "read", "/workspace/secret"},
				{"escape", "read", "/opt/unlisted/notes.txt"},
				{"escape", "read", "/etc/secret-dir/token"},
				{"escape", "read", "/proc/self/root/workspace/secret"},
				{"escape", "read", "/workspace/public"},
				{"escape", "write", "/workspace/ok"},
				{"escape", "mkdir", "/tmp/d"},
				{"escape", "mount", "/tmp/m"},
				{"escape", "userns"},
				{"escape", "keyctl"},
			} {
				same(t, r, "", append([]string{"exec", id}, c...)...)
			}
			// Paths created after the server started are covered as on
			// the normal path (the ruleset is built at each exec).
			same(t, r, "", "exec", id, "sh", "-c", "mkdir -p /workspace/new && echo hi > /workspace/new/f && cat /workspace/new/f")
			// A missing command is the last step's 127, as always.
			if res := sameVia(t, r, "", "", "exec", id, "nosuchcommand"); res.Code != 127 {
				t.Errorf("missing command: %s", res)
			}
		})
	}
}

func TestAgentContainerAuditEvent(t *testing.T) {
	r, id, _ := agentContainer(t, agentPolicy(spec.TierProcess))
	path := filepath.Join(r.Root, id, audit.FileName)
	before, _ := audit.ReadAll(path)
	if res := run(t, r, fast, "", nil, "exec", id, "sh", "-c", "true", "<a> & \"b\"\t\u2028\xff"); res.Code != 0 {
		t.Fatalf("fast exec: %s", res)
	}
	if res := run(t, r, normal, "", nil, "exec", id, "sh", "-c", "true", "<a> & \"b\"\t\u2028\xff"); res.Code != 0 {
		t.Fatalf("normal exec: %s", res)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	evs, _ := audit.ReadAll(path)
	if len(evs) != len(before)+2 || len(lines) != len(evs) {
		t.Fatalf("want two more events, have %d then %d:\n%s", len(before), len(evs), raw)
	}
	f, n := evs[len(evs)-2], evs[len(evs)-1]
	if f.Kind != audit.KindExec || f.Container != id || f.Agent != "execfast <agent>" || f.Time.IsZero() {
		t.Errorf("fast path event %+v", f)
	}
	f.Time = n.Time
	fj, _ := json.Marshal(f)
	nj, _ := json.Marshal(n)
	if string(fj) != string(nj) {
		t.Errorf("events differ:\n fast   %s\n normal %s", fj, nj)
	}
	// Byte for byte as encoding/json writes it (the time aside).
	fl, nl := lines[len(lines)-2], lines[len(lines)-1]
	if fl[strings.Index(fl, `"container"`):] != nl[strings.Index(nl, `"container"`):] {
		t.Errorf("lines differ:\n fast   %s\n normal %s", fl, nl)
	}
}

// TestBatteryThroughFastPath runs the escape battery's key attempts (see
// integration/enforce/battery_test.go) through the fast path only: each
// attempt must be refused and its allowed twin must work.
func TestBatteryThroughFastPath(t *testing.T) {
	harness.RequireRoot(t)
	probes := []struct{ try, twin []string }{
		{[]string{"escape", "write", "/etc/pwned"}, []string{"escape", "write", "/workspace/ok"}},
		{[]string{"escape", "write", "/opt/unlisted/pwned"}, []string{"escape", "write", "/tmp/ok"}},
		{[]string{"escape", "truncate", "/opt/unlisted/notes.txt"}, []string{"escape", "truncate", "/workspace/public"}},
		{[]string{"escape", "read", "/workspace/secret"}, []string{"escape", "read", "/workspace/public"}},
		{[]string{"escape", "read", "/etc/secret-dir/token"}, []string{"escape", "read", "/etc/public-dir/readme"}},
		{[]string{"escape", "read", "/opt/unlisted/notes.txt"}, []string{"escape", "read", "/etc/public-dir/readme"}},
		{[]string{"escape", "symlink-read", "/workspace/secret", "/tmp/link"}, []string{"escape", "symlink-read", "/workspace/public", "/tmp/link2"}},
		{[]string{"escape", "hardlink-read", "/workspace/secret", "/workspace/hl"}, []string{"escape", "hardlink-read", "/workspace/public", "/workspace/hl2"}},
		{[]string{"escape", "read", "/proc/self/root/workspace/secret"}, []string{"escape", "read", "/proc/self/root/workspace/public"}},
		{[]string{"escape", "cwd-read", "/workspace", "secret"}, []string{"escape", "cwd-read", "/workspace", "public"}},
		{[]string{"escape", "bind-read", "/workspace/secret", "/tmp/bound"}, []string{"escape", "read", "/workspace/public"}},
		{[]string{"escape", "mount", "/tmp/m"}, []string{"escape", "mkdir", "/tmp/m2"}},
		{[]string{"escape", "fsopen"}, []string{"escape", "mkdir", "/tmp/m3"}},
		{[]string{"escape", "pivot-root"}, []string{"escape", "chdir", "/tmp"}},
		{[]string{"escape", "userns"}, []string{"escape", "child"}},
		{[]string{"escape", "unshare-user"}, []string{"escape", "child"}},
		{[]string{"escape", "ptrace-child"}, []string{"escape", "child"}},
		{[]string{"escape", "keyctl"}, []string{"escape", "noop"}},
		{[]string{"escape", "add-key"}, []string{"escape", "noop"}},
		{[]string{"escape", "bpf"}, []string{"escape", "noop"}},
		{[]string{"escape", "perf"}, []string{"escape", "noop"}},
		{[]string{"escape", "io-uring"}, []string{"escape", "read", "/workspace/public"}},
		{[]string{"escape", "raw-socket"}, []string{"escape", "udp-socket"}},
		{[]string{"escape", "packet-socket"}, []string{"escape", "udp-socket"}},
	}
	for _, tier := range []spec.Tier{spec.TierProcess, spec.TierSession} {
		t.Run(string(tier), func(t *testing.T) {
			r, id, _ := agentContainer(t, agentPolicy(tier))
			for _, p := range probes {
				try := run(t, r, fast, "", nil, append([]string{"exec", id}, p.try...)...)
				twin := run(t, r, fast, "", nil, append([]string{"exec", id}, p.twin...)...)
				if !strings.HasPrefix(try.Stdout, "DENIED") || try.Code != 1 || strings.Contains(try.Stdout, "TOPSECRET") {
					t.Errorf("attempt %v was not refused: %s", p.try, try)
				}
				if !strings.HasPrefix(twin.Stdout, "OK") || twin.Code != 0 {
					t.Errorf("allowed twin %v failed: %s", p.twin, twin)
				}
			}
			// The exec server itself is out of reach of the agent's
			// processes: not dumpable, in no Landlock domain of theirs.
			s := status(t, r, id)
			pid := nsPid(t, s.Pid)
			for _, c := range [][]string{
				{"escape", "ptrace", strconv.Itoa(pid)},
				{"escape", "read", "/proc/" + strconv.Itoa(pid) + "/environ"},
			} {
				res := run(t, r, fast, "", nil, append([]string{"exec", id}, c...)...)
				if !strings.HasPrefix(res.Stdout, "DENIED") {
					t.Errorf("%v reached the exec server: %s", c, res)
				}
			}
			res := run(t, r, fast, "", nil, "exec", id, "ls", "/proc/"+strconv.Itoa(pid)+"/fd/")
			if res.Code == 0 {
				t.Errorf("the exec server's fds are listable: %s", res)
			}
		})
	}
}
