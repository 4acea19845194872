//go:build linux

package enforce_test

import (
	"context"
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

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// Secrets the denied paths hold; an attempt that prints one has escaped.
const (
	secretFile = "TOPSECRET-file-7f3a"
	secretDir  = "TOPSECRET-dir-91c2"
	publicText = "PUBLIC-3b1e"
)

var (
	escapeOnce sync.Once
	escapeBin  string
	escapeErr  error
	buildDir   string
)

// escapeBinary builds the static probe once per test process.
func escapeBinary(t testing.TB) string {
	t.Helper()
	escapeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mxc-escape-")
		if err != nil {
			escapeErr = err
			return
		}
		buildDir = dir
		out := filepath.Join(dir, "escape")
		cmd := osexec.Command("go", "build", "-trimpath", "-o", out, "./testdata/escape")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			escapeErr = fmt.Errorf("build escape probe: %v\n%s", err, b)
			return
		}
		escapeBin = out
	})
	if escapeErr != nil {
		t.Fatal(escapeErr)
	}
	return escapeBin
}

func cleanupBuilds() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// basePolicy is the battery's agent policy: the rootfs's programs
// read-only, a workspace and /tmp read-write, a secret file and a secret
// directory denied inside allowed trees, small pids and memory limits.
func basePolicy(tier spec.Tier) *spec.AgentPolicy {
	return harness.BatteryPolicy("escape-battery", tier)
}

// agentBundle makes a busybox bundle with the probe at /bin/escape, the
// secrets in place, a writable root (the policy, not the spec, decides
// what is writable) and pol in io.mxc.policy.
func agentBundle(t *testing.T, pol *spec.AgentPolicy, args ...string) *harness.Bundle {
	t.Helper()
	b := harness.NewBundle(t, args...)
	rootfs := filepath.Join(b.Dir, "rootfs")
	data, err := os.ReadFile(escapeBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"bin/escape":             string(data),
		"workspace/secret":       secretFile + "\n",
		"workspace/public":       publicText + "\n",
		"etc/secret-dir/token":   secretDir + "\n",
		"workspace/sub/.keep":    "",
		"etc/public-dir/readme":  publicText + "\n",
		"opt/unlisted/notes.txt": "unlisted\n",
	}
	harness.WriteTree(t, rootfs, files, "workspace", 1000, 1000)
	b.Spec.Root.Readonly = false
	// The agent runs as the image's unprivileged user, owner of /workspace.
	b.Spec.Process.User = specs.User{UID: 1000, GID: 1000}
	if pol != nil {
		setPolicy(t, b, pol)
	}
	b.Save(t)
	return b
}

func setPolicy(t *testing.T, b *harness.Bundle, pol *spec.AgentPolicy) {
	t.Helper()
	raw, err := json.Marshal(pol)
	if err != nil {
		t.Fatal(err)
	}
	if b.Spec.Annotations == nil {
		b.Spec.Annotations = map[string]string{}
	}
	b.Spec.Annotations[spec.AnnotationPolicy] = string(raw)
}

// shareHostNamespaces drops the pid and network namespaces from the spec:
// a process-tier container in the host's namespaces, where Landlock's
// scoping (not the namespaces) keeps it from host processes and sockets.
func shareHostNamespaces(s *specs.Spec) {
	var keep []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.PIDNamespace && ns.Type != specs.NetworkNamespace {
			keep = append(keep, ns)
		}
	}
	s.Linux.Namespaces = keep
}

// hostNetworkPolicy lets a container share the host's network namespace:
// no network rule the egress filter would need its own namespace for.
func hostNetworkPolicy(p *spec.AgentPolicy) {
	p.Network = &spec.Network{
		Egress:  &spec.Egress{Default: spec.Allow},
		Ingress: &spec.Ingress{Default: spec.Allow, HostLoopback: spec.Allow},
	}
}

var idSeq struct {
	sync.Mutex
	n int
}

func newID(prefix string) string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), idSeq.n)
}

// runOut runs `run` in the foreground and returns its result.
func runOut(t *testing.T, r *harness.Runtime, b *harness.Bundle, id string, extra ...string) harness.Result {
	t.Helper()
	args := append([]string{"run", "--bundle", b.Dir}, extra...)
	return r.Run(append(args, id)...)
}

// startDetached runs the bundle's process detached (stdio on /dev/null,
// so that nothing waits for the container to close a pipe) and registers
// its deletion.
func startDetached(t *testing.T, r *harness.Runtime, b *harness.Bundle, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	defer cancel()
	cmd := r.Command(ctx, "run", "--detach", "--bundle", b.Dir, id)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	errf, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, errf
	t.Cleanup(func() { r.Run("delete", "--force", id) })
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(errf.Name())
		t.Fatalf("run --detach %s: %v\n%s", id, err, b)
	}
}

// result is one probe's answer.
type result struct {
	Out  string
	Code int
}

func (r result) OK() bool     { return strings.HasPrefix(r.Out, "OK") && r.Code == 0 }
func (r result) Denied() bool { return strings.HasPrefix(r.Out, "DENIED") && r.Code == 1 }
func (r result) String() string {
	return fmt.Sprintf("exit %d: %q", r.Code, r.Out)
}

// script runs each command in a shell inside the container (through run)
// and returns one result per command.
func scriptFor(cmds [][]string) string {
	var sb strings.Builder
	for _, c := range cmds {
		q := make([]string, len(c))
		for i, a := range c {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		sb.WriteString(strings.Join(q, " "))
		sb.WriteString(" 2>&1; echo \"#rc=$?\"\n")
	}
	return sb.String()
}

func parseScript(out string, n int) ([]result, error) {
	var res []result
	var cur []string
	for _, l := range strings.Split(out, "\n") {
		if rc, ok := strings.CutPrefix(l, "#rc="); ok {
			code, _ := strconv.Atoi(strings.TrimSpace(rc))
			res = append(res, result{Out: strings.TrimSpace(strings.Join(cur, "\n")), Code: code})
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	if len(res) != n {
		return nil, fmt.Errorf("expected %d results, got %d in %q", n, len(res), out)
	}
	return res, nil
}

// auditEvents reads the container's audit log through the CLI.
func auditEvents(t *testing.T, r *harness.Runtime, id string) []audit.Event {
	t.Helper()
	res := r.Run("events", "--audit", "--no-follow", id)
	if res.Err != nil {
		t.Fatalf("events --audit %s: %v %s", id, res.Err, res.Stderr)
	}
	var evs []audit.Event
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var ev audit.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func hasEvent(evs []audit.Event, kind string) bool {
	for _, e := range evs {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// hostSleeper starts a host process the container must not touch.
func hostSleeper(t *testing.T) *osexec.Cmd {
	t.Helper()
	cmd := osexec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func alive(cmd *osexec.Cmd) bool {
	return cmd.Process.Signal(syscallZero) == nil && cmd.ProcessState == nil
}

// waitGone polls until cond is true or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// exec runs a host command (the host still works after an attempt).
func exec(name string, args ...string) error {
	return osexec.Command(name, args...).Run()
}

// hostNetNode lets policies share the host's network namespace (no egress
// or ingress rule to enforce there).
const hostNetNode = "ceiling:\n  allowEgressDefaultAllow: true\n  allowIngress: true\n"

func writeNodeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
