//go:build linux

package seccomp

import (
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func rules(p *configs.Seccomp) map[string]*configs.Syscall {
	m := map[string]*configs.Syscall{}
	for _, s := range p.Syscalls {
		m[s.Name] = s
	}
	return m
}

func TestAgentProfile(t *testing.T) {
	p := AgentProfile(Options{})
	if p.DefaultAction != configs.Allow {
		t.Fatalf("default action %v, want allow (a deny list)", p.DefaultAction)
	}
	r := rules(p)
	for _, group := range Denied {
		for _, name := range group {
			s := r[name]
			if s == nil || s.Action != configs.Errno || *s.ErrnoRet != uint(unix.EPERM) || len(s.Args) != 0 {
				t.Errorf("%s: %+v, want EPERM unconditionally", name, s)
			}
		}
	}
	for _, name := range Ptrace {
		if r[name] == nil {
			t.Errorf("%s allowed without AllowPtrace", name)
		}
	}
	for _, name := range []string{"unshare", "clone"} {
		s := r[name]
		if s == nil || len(s.Args) != 1 || s.Args[0].Op != configs.MaskEqualTo || s.Args[0].Value != unix.CLONE_NEWUSER {
			t.Errorf("%s: %+v, want EPERM only with CLONE_NEWUSER", name, s)
		}
	}
	if s := r["clone3"]; s == nil || *s.ErrnoRet != uint(unix.ENOSYS) {
		t.Errorf("clone3: %+v, want ENOSYS", s)
	}
	if len(p.Architectures) == 0 {
		t.Error("no architectures: 32-bit syscalls would bypass the filter")
	}

	pt := rules(AgentProfile(Options{AllowPtrace: true}))
	for _, name := range Ptrace {
		if pt[name] != nil {
			t.Errorf("%s denied with AllowPtrace", name)
		}
	}
	for name, s := range rules(AgentProfile(Options{AuditOnly: true})) {
		if s.Action != configs.Log {
			t.Errorf("audit mode: %s action %v, want log", name, s.Action)
		}
	}
}

func TestFromSpec(t *testing.T) {
	if c, err := FromSpec(nil); c != nil || err != nil {
		t.Errorf("nil profile: %v %v", c, err)
	}
	for name, s := range map[string]*specs.LinuxSeccomp{
		"listenerPath":   {DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock"},
		"notify default": {DefaultAction: specs.ActNotify},
		"notify rule":    {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}},
	} {
		if _, err := FromSpec(s); err == nil || !strings.Contains(err.Error(), "agent policy") {
			t.Errorf("%s: %v, want a refusal naming the agent policy", name, err)
		}
	}
	c, err := FromSpec(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}})
	if err != nil || c == nil || len(c.Syscalls) != 1 {
		t.Errorf("plain profile: %+v %v", c, err)
	}
}
