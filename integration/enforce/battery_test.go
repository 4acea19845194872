//go:build linux

package enforce_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// The escape battery: one test per attempt. Each runs in the process and
// session tiers, through `run` (the container's first process) and through
// `exec` (a process started in a running container), and asserts that the
// attempt fails AND that its allowed twin succeeds, so a failure cannot
// come from a broken probe or environment.

var syscallZero = syscall.Signal(0)

type probe struct {
	Try, Twin []string
	// Failed judges the attempt (default: the kernel refused it).
	Failed func(result) bool
	// Succeeded judges the twin (default: it worked).
	Succeeded func(result) bool
	Policy    func(*spec.AgentPolicy)
	Spec      func(*specs.Spec)
	// TwinFirst runs the twin before the attempt (a fork bomb exhausts
	// what the twin needs).
	TwinFirst bool
	// HostNS adds a process-tier variant in the host's pid and network
	// namespaces, where Landlock's scoping holds the line.
	HostNS bool
	// After checks the host once the attempt ran.
	After func(t *testing.T)
	// Node is the node config (YAML) the runtime runs with.
	Node string
}

type variant struct {
	name   string
	tier   spec.Tier
	hostNS bool
	via    string
}

func battery(t *testing.T, p probe) {
	harness.RequireRoot(t)
	escapeBinary(t)
	var vs []variant
	for _, tier := range []spec.Tier{spec.TierProcess, spec.TierSession} {
		for _, via := range []string{"run", "exec"} {
			vs = append(vs, variant{name: string(tier) + "/" + via, tier: tier, via: via})
		}
	}
	if p.HostNS {
		for _, via := range []string{"run", "exec"} {
			vs = append(vs, variant{name: "process-hostns/" + via, tier: spec.TierProcess, hostNS: true, via: via})
		}
	}
	for _, v := range vs {
		// Not parallel: the harness writes busybox into each rootfs and
		// execs it, and a fork elsewhere in the process while the file is
		// open for writing makes that exec fail with ETXTBSY.
		t.Run(v.name, func(t *testing.T) {
			runProbe(t, p, v)
		})
	}
}

func runProbe(t *testing.T, p probe, v variant) {
	r := harness.NewRuntime(t)
	if p.Node != "" {
		r.Config = writeNodeConfig(t, p.Node)
	}
	pol := basePolicy(v.tier)
	if v.hostNS {
		hostNetworkPolicy(pol)
	}
	if p.Policy != nil {
		p.Policy(pol)
	}
	cmds := [][]string{p.Try, p.Twin}
	if p.TwinFirst {
		cmds = [][]string{p.Twin, p.Try}
	}
	var args []string
	if v.via == "run" {
		args = []string{"sh", "-c", scriptFor(cmds)}
	} else {
		args = []string{"sleep", "600"}
	}
	b := agentBundle(t, nil, args...)
	if v.hostNS {
		shareHostNamespaces(b.Spec)
	}
	if p.Spec != nil {
		p.Spec(b.Spec)
	}
	setPolicy(t, b, pol)
	b.Save(t)
	id := newID(strings.ReplaceAll(t.Name(), "/", "-")[:min(20, len(t.Name()))])

	var res []result
	if v.via == "run" {
		out := runOut(t, r, b, id)
		if out.Err != nil && out.Code < 0 {
			t.Fatalf("run: %v\n%s", out.Err, out.Stderr)
		}
		var err error
		if res, err = parseScript(out.Stdout, len(cmds)); err != nil {
			t.Fatalf("%v\nstderr: %s", err, out.Stderr)
		}
	} else {
		startDetached(t, r, b, id)
		for _, c := range cmds {
			out := r.Run(append([]string{"exec", id}, c...)...)
			if out.Code == 255 || out.Code < 0 {
				t.Fatalf("exec %v: %v\n%s%s", c, out.Err, out.Stdout, out.Stderr)
			}
			res = append(res, result{Out: strings.TrimSpace(out.Stdout + out.Stderr), Code: out.Code})
		}
	}
	try, twin := res[0], res[1]
	if p.TwinFirst {
		try, twin = res[1], res[0]
	}
	failed := p.Failed
	if failed == nil {
		failed = result.Denied
	}
	succeeded := p.Succeeded
	if succeeded == nil {
		succeeded = result.OK
	}
	t.Logf("attempt %v: %s", p.Try, try)
	t.Logf("twin %v: %s", p.Twin, twin)
	if !failed(try) {
		t.Errorf("attempt %v was not refused: %s", p.Try, try)
	}
	if !succeeded(twin) {
		t.Errorf("allowed twin %v did not succeed: %s", p.Twin, twin)
	}
	if p.After != nil {
		p.After(t)
	}
}

// noSecret: the attempt did not get the content of a denied path.
func noSecret(r result) bool {
	return !strings.Contains(r.Out, "TOPSECRET")
}

// refusedNoSecret: the kernel refused the attempt (a masked file cannot
// be opened; a masked directory is empty) and no secret leaked.
func refusedNoSecret(r result) bool { return r.Denied() && noSecret(r) }

func readsPublic(r result) bool { return r.OK() && strings.Contains(r.Out, publicText) }

func TestEscapeWriteOutsideReadwritePaths(t *testing.T) {
	t.Run("read-only path", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "write", "/etc/pwned"}, Twin: []string{"escape", "write", "/workspace/ok"}})
	})
	t.Run("unlisted path", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "write", "/opt/unlisted/pwned"}, Twin: []string{"escape", "write", "/tmp/ok"}})
	})
	t.Run("truncate", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "truncate", "/opt/unlisted/notes.txt"}, Twin: []string{"escape", "truncate", "/workspace/public"}})
	})
}

func TestEscapeReadDeniedPath(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "read", "/workspace/secret"}, Twin: []string{"escape", "read", "/workspace/public"},
			Failed: refusedNoSecret, Succeeded: readsPublic})
	})
	t.Run("directory", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "read", "/etc/secret-dir/token"}, Twin: []string{"escape", "read", "/etc/public-dir/readme"},
			Failed: func(r result) bool { return r.Denied() && noSecret(r) }, Succeeded: readsPublic})
	})
	t.Run("unlisted", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "read", "/opt/unlisted/notes.txt"}, Twin: []string{"escape", "read", "/etc/public-dir/readme"},
			Succeeded: readsPublic})
	})
}

func TestEscapeDeniedViaSymlink(t *testing.T) {
	battery(t, probe{
		Try:    []string{"escape", "symlink-read", "/workspace/secret", "/tmp/link"},
		Twin:   []string{"escape", "symlink-read", "/workspace/public", "/tmp/link2"},
		Failed: refusedNoSecret, Succeeded: readsPublic,
	})
}

func TestEscapeDeniedViaHardlink(t *testing.T) {
	battery(t, probe{
		Try:    []string{"escape", "hardlink-read", "/workspace/secret", "/workspace/hl"},
		Twin:   []string{"escape", "hardlink-read", "/workspace/public", "/workspace/hl2"},
		Failed: refusedNoSecret, Succeeded: readsPublic,
	})
}

func TestEscapeDeniedViaDotDot(t *testing.T) {
	battery(t, probe{
		Try:    []string{"escape", "read", "/workspace/sub/../secret"},
		Twin:   []string{"escape", "read", "/workspace/sub/../public"},
		Failed: refusedNoSecret, Succeeded: readsPublic,
	})
}

func TestEscapeDeniedViaProcSelfRoot(t *testing.T) {
	battery(t, probe{
		Try:    []string{"escape", "read", "/proc/self/root/workspace/secret"},
		Twin:   []string{"escape", "read", "/proc/self/root/workspace/public"},
		Failed: refusedNoSecret, Succeeded: readsPublic,
	})
}

func TestEscapeDeniedViaProcPidCwd(t *testing.T) {
	battery(t, probe{
		Try:    []string{"escape", "cwd-read", "/workspace", "secret"},
		Twin:   []string{"escape", "cwd-read", "/workspace", "public"},
		Failed: refusedNoSecret, Succeeded: readsPublic,
	})
}

func TestEscapeDeniedViaBindMount(t *testing.T) {
	battery(t, probe{
		Try:       []string{"escape", "bind-read", "/workspace/secret", "/tmp/bound"},
		Twin:      []string{"escape", "read", "/workspace/public"},
		Failed:    func(r result) bool { return r.Denied() && noSecret(r) },
		Succeeded: readsPublic,
	})
}

func TestEscapeDeniedViaOverlay(t *testing.T) {
	battery(t, probe{
		Try:       []string{"escape", "overlay-read", "/etc/secret-dir", "/tmp/ovl", "token"},
		Twin:      []string{"escape", "read", "/etc/public-dir/readme"},
		Failed:    func(r result) bool { return r.Denied() && noSecret(r) },
		Succeeded: readsPublic,
	})
}

func TestEscapeMount(t *testing.T) {
	t.Run("mount", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "mount", "/tmp/m"}, Twin: []string{"escape", "mkdir", "/tmp/m2"}})
	})
	t.Run("new mount API", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "fsopen"}, Twin: []string{"escape", "mkdir", "/tmp/m3"}})
	})
}

func TestEscapePivotRoot(t *testing.T) {
	battery(t, probe{Try: []string{"escape", "pivot-root"}, Twin: []string{"escape", "chdir", "/tmp"}})
}

func TestEscapeUserNamespace(t *testing.T) {
	t.Run("clone", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "userns"}, Twin: []string{"escape", "child"}})
	})
	t.Run("unshare", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "unshare-user"}, Twin: []string{"escape", "child"}})
	})
}

func TestEscapePtraceOutside(t *testing.T) {
	host := hostSleeper(t)
	battery(t, probe{
		Try:    []string{"escape", "ptrace", strconv.Itoa(host.Process.Pid)},
		Twin:   []string{"escape", "ptrace-child"},
		Policy: func(p *spec.AgentPolicy) { p.Process = &spec.Process{AllowPtrace: true} },
		Node:   "ceiling:\n  allowPtrace: true\n  allowEgressDefaultAllow: true\n  allowIngress: true\n",
		HostNS: true,
		After: func(t *testing.T) {
			if !alive(host) {
				t.Error("the host process died")
			}
		},
	})
	t.Run("without allowPtrace", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "ptrace-child"}, Twin: []string{"escape", "child"}})
	})
}

func TestEscapeKeyctl(t *testing.T) {
	t.Run("keyctl", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "keyctl"}, Twin: []string{"escape", "noop"}})
	})
	t.Run("add_key", func(t *testing.T) {
		battery(t, probe{Try: []string{"escape", "add-key"}, Twin: []string{"escape", "noop"}})
	})
}

func TestEscapeBPF(t *testing.T) {
	battery(t, probe{Try: []string{"escape", "bpf"}, Twin: []string{"escape", "noop"}})
}

func TestEscapePerfEvent(t *testing.T) {
	battery(t, probe{Try: []string{"escape", "perf"}, Twin: []string{"escape", "noop"}})
}

func TestEscapeIOUring(t *testing.T) {
	battery(t, probe{Try: []string{"escape", "io-uring"}, Twin: []string{"escape", "read", "/workspace/public"}, Succeeded: readsPublic})
}

func TestEscapeRawSocket(t *testing.T) {
	battery(t, probe{Try: []string{"escape", "raw-socket"}, Twin: []string{"escape", "udp-socket"}})
}

func TestEscapePacketSocket(t *testing.T) {
	battery(t, probe{Try: []string{"escape", "packet-socket"}, Twin: []string{"escape", "udp-socket"}})
}

// TestEscapeHostAbstractSocket: an X11-like listener on the host's
// abstract socket namespace must stay out of reach.
func TestEscapeHostAbstractSocket(t *testing.T) {
	harness.RequireRoot(t)
	name := fmt.Sprintf("/tmp/.X11-unix/X%d", 40000+rand.IntN(20000))
	l, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("X11-HOST"))
			c.Close()
		}
	}()
	battery(t, probe{
		Try:    []string{"escape", "abstract-connect", name},
		Twin:   []string{"escape", "abstract-self", "mxc-own-" + strconv.Itoa(rand.IntN(1<<20))},
		Failed: func(r result) bool { return r.Denied() && !strings.Contains(r.Out, "X11-HOST") },
		HostNS: true,
		Node:   hostNetNode,
	})
}

func TestEscapeSignalHostProcess(t *testing.T) {
	host := hostSleeper(t)
	battery(t, probe{
		Try:    []string{"escape", "kill", strconv.Itoa(host.Process.Pid)},
		Twin:   []string{"escape", "kill-child"},
		HostNS: true,
		Node:   hostNetNode,
		After: func(t *testing.T) {
			if !alive(host) {
				t.Error("the host process was signalled")
			}
		},
	})
}

func TestEscapeForkBomb(t *testing.T) {
	battery(t, probe{
		Try:       []string{"escape", "forkbomb", "500"},
		Twin:      []string{"escape", "forkbomb", "5"},
		TwinFirst: true,
		Failed: func(r result) bool {
			return r.Denied() && strings.Contains(r.Out, "resource temporarily unavailable")
		},
		After: func(t *testing.T) {
			if err := exec("true"); err != nil {
				t.Errorf("host cannot fork after the bomb: %v", err)
			}
		},
	})
}

func TestEscapeMemoryBomb(t *testing.T) {
	battery(t, probe{
		Try:  []string{"escape", "mem", "512"},
		Twin: []string{"escape", "mem", "8"},
		// The cgroup's OOM killer ends the probe (SIGKILL): no OK line.
		Failed: func(r result) bool { return !strings.Contains(r.Out, "OK") && r.Code == 137 },
		After: func(t *testing.T) {
			if err := exec("true"); err != nil {
				t.Errorf("host unaffected? %v", err)
			}
		},
	})
}
