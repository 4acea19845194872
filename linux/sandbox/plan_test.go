//go:build linux

package sandbox

import (
	"strings"
	"testing"

	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/seccomp"
	"mxc.dev/mxc/spec"
)

func eff(t *testing.T, yaml string) *spec.Effective {
	t.Helper()
	p, notes, err := spec.ParsePolicy([]byte("apiVersion: mxc.dev/v1alpha1\nkind: AgentPolicy\n" + yaml))
	if err != nil {
		t.Fatal(err)
	}
	nc := &spec.NodeConfig{Ceiling: &spec.Ceiling{AllowEgressDefaultAllow: true, AllowIngress: true, AllowAudit: true,
		EgressAllow: []spec.Rule{{To: []spec.Peer{{Host: "*.example.com"}, {Host: "example.com"}}}}}}
	e, err := spec.NewEffective(p, nc, nil, notes)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCompile(t *testing.T) {
	if landlock.Effective() < 6 {
		t.Skip("needs Landlock ABI 6")
	}
	// Without -tags seccomp the profile cannot be installed: accept that gap.
	degraded := !seccomp.Enabled
	pl, err := Compile(eff(t, "filesystem:\n  readonlyPaths: [/usr]\n  readwritePaths: [/work]\n  deniedPaths: [/work/.env]\n"), degraded)
	if err != nil {
		t.Fatal(err)
	}
	if pl.HostNet || strings.Join(pl.ReadWrite, ",") != "/work" || strings.Join(pl.Denied, ",") != "/work/.env" {
		t.Errorf("plan %+v", pl)
	}
	if pl.Agent.Landlock == nil || !pl.Agent.Landlock.HandleFS || pl.Agent.Landlock.Scoped&landlock.ScopeSignal == 0 {
		t.Errorf("landlock %+v", pl.Agent.Landlock)
	}
	if pl.Agent.Landlock.Scoped&landlock.ScopeAbstractUnixSocket != 0 {
		t.Error("abstract-socket scope with a network namespace of its own")
	}
	open, err := Compile(eff(t, "network:\n  egress: {default: allow}\n  ingress: {default: allow, hostLoopback: allow}\n"), degraded)
	if err != nil {
		t.Fatal(err)
	}
	if !open.HostNet || open.Agent.Landlock.HandleFS || open.Agent.Landlock.Scoped&landlock.ScopeAbstractUnixSocket == 0 {
		t.Errorf("egress default allow: %+v %+v", open, open.Agent.Landlock)
	}
	// Egress allow rules: the networked sandbox (slirp4netns, table, gate).
	net, err := Compile(eff(t, "network:\n  egress:\n    allow: [{to: [{host: example.com}]}]\n"), degraded)
	if err != nil {
		t.Fatal(err)
	}
	if !net.Egress || net.HostNet || net.Net.Policy == nil {
		t.Errorf("egress allow: %+v", net)
	}
	for _, c := range net.Caps {
		if c == "CAP_NET_RAW" || c == "CAP_NET_ADMIN" {
			t.Errorf("networked sandbox keeps %s", c)
		}
	}
	// Default deny without allow rules: the bare loopback-only namespace.
	if lo, err := Compile(eff(t, "network:\n  egress: {default: deny}\n"), degraded); err != nil || lo.Egress || lo.HostNet {
		t.Errorf("default deny: %+v, %v", lo, err)
	}
	for name, c := range map[string]string{
		"isolation": "isolation: session\n",
		"mode":      "mode: audit\n",
		"resources": "resources: {memory: 1Gi}\n",
		"timeout":   "process: {timeout: 1000}\n",
	} {
		if _, err := Compile(eff(t, c), degraded); err == nil || !strings.Contains(err.Error(), strings.Split(name, ".")[0]) {
			t.Errorf("%s: %v, want a refusal naming it", name, err)
		}
	}
}

// TestCompileNetCaps: a networked sandbox refuses CAP_NET_RAW/NET_ADMIN,
// which would let the command bypass the filter.
func TestCompileNetCaps(t *testing.T) {
	if landlock.Effective() < 6 {
		t.Skip("needs Landlock ABI 6")
	}
	p, notes, err := spec.ParsePolicy([]byte("apiVersion: mxc.dev/v1alpha1\nkind: AgentPolicy\n" +
		"network:\n  egress:\n    allow: [{to: [{host: example.com}]}]\nprocess: {capabilities: [CAP_NET_RAW]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	nc := &spec.NodeConfig{Ceiling: &spec.Ceiling{Capabilities: []string{"CAP_NET_RAW"},
		EgressAllow: []spec.Rule{{To: []spec.Peer{{Host: "example.com"}}}}}}
	e, err := spec.NewEffective(p, nc, nil, notes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(e, !seccomp.Enabled); err == nil || !strings.Contains(err.Error(), "CAP_NET_RAW") {
		t.Errorf("CAP_NET_RAW with egress rules: %v, want a refusal naming it", err)
	}
}
