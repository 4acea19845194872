package egress

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

func TestCheck(t *testing.T) {
	deny := &spec.Effective{Policy: spec.AgentPolicy{Network: &spec.Network{Egress: &spec.Egress{Default: spec.Deny}}}}
	open := &spec.Effective{Policy: spec.AgentPolicy{Network: &spec.Network{
		Egress:  &spec.Egress{Default: spec.Allow},
		Ingress: &spec.Ingress{Default: spec.Allow, HostLoopback: spec.Allow},
	}}}
	withNS := func(caps ...string) *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps}},
			Linux:   &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/var/run/netns/pod"}}},
		}
	}
	hostNet := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}}
	for _, tc := range []struct {
		name string
		s    *specs.Spec
		eff  *spec.Effective
		err  string
	}{
		{"no policy", hostNet, nil, ""},
		{"nothing to enforce on the host network", hostNet, open, ""},
		{"rules on the host network", hostNet, deny, "host's network namespace"},
		{"no linux section", &specs.Spec{}, deny, "host's network namespace"},
		{"own namespace", withNS("CAP_CHOWN", "CAP_NET_BIND_SERVICE"), deny, ""},
		{"keeps NET_RAW", withNS("CAP_CHOWN", "CAP_NET_RAW"), deny, "process.capabilities.bounding keeps CAP_NET_RAW"},
		{"keeps NET_ADMIN", withNS("cap_net_admin"), deny, "CAP_NET_ADMIN"},
		{"bad policy", withNS(), &spec.Effective{Policy: spec.AgentPolicy{Network: &spec.Network{Egress: &spec.Egress{Default: "maybe"}}}}, "network.egress.default"},
	} {
		err := Check(tc.s, tc.eff)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: Check = %v, want %q", tc.name, err, tc.err)
		}
	}
}
