package spec

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseNetworkAllow(t *testing.T) {
	tests := []struct {
		in   string
		want []Rule
		err  string
	}{
		{in: "api.openai.com:443", want: []Rule{{To: []Peer{{Host: "api.openai.com"}}, Ports: []Port{{Protocol: ProtoTCP, Port: 443}}}}},
		{in: " *.example.com:443 , example.org ", want: []Rule{
			{To: []Peer{{Host: "*.example.com"}}, Ports: []Port{{Protocol: ProtoTCP, Port: 443}}},
			{To: []Peer{{Host: "example.org"}}}}},
		{in: "10.0.0.0/8:5432-5433/tcp", want: []Rule{{To: []Peer{{CIDR: "10.0.0.0/8"}}, Ports: []Port{{Protocol: ProtoTCP, Port: 5432, EndPort: 5433}}}}},
		{in: "192.0.2.0/24:53/udp", want: []Rule{{To: []Peer{{CIDR: "192.0.2.0/24"}}, Ports: []Port{{Protocol: ProtoUDP, Port: 53}}}}},
		{in: "[2001:db8::/32]:443", want: []Rule{{To: []Peer{{CIDR: "2001:db8::/32"}}, Ports: []Port{{Protocol: ProtoTCP, Port: 443}}}}},
		{in: "2001:db8::/32", want: []Rule{{To: []Peer{{CIDR: "2001:db8::/32"}}}}},
		{in: "a.com,", err: "[1]: empty destination"},
		{in: "a.com:", err: "empty port"},
		{in: "a.com:0", err: "not from 1 to 65535"},
		{in: "a.com:70000", err: "port 70000 is not from 1 to 65535"},
		{in: "a.com:80-70", err: `[0]: "a.com:80-70": ports[0].endPort: 70 is below port 80`},
		{in: "a.com:80/sctp", err: `protocol "sctp"`},
		{in: "a.com:http", err: "not a number"},
		{in: "[2001:db8::/32", err: "missing ']'"},
		{in: "[2001:db8::/32]443", err: "expected ':' after ']'"},
		{in: "*.github.io:443", err: "public suffix"},
		{in: "192.0.2.1:80", err: "is an address"},
		{in: "10.0.0.1/8", err: "bits set"},
	}
	for _, tt := range tests {
		got, err := parseNetworkAllow(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q = %s, %v; want %s", tt.in, compactJSON(got), err, compactJSON(tt.want))
		}
	}
}

func TestParseUI(t *testing.T) {
	tr, fa := true, false
	tests := []struct {
		in   string
		want *UI
		err  string
	}{
		{in: "disable", want: &UI{Disable: true}},
		{in: "enable", want: &UI{}},
		{in: "enable,clipboard=read,injection=false", want: &UI{Clipboard: "read", Injection: &fa}},
		{in: "disable=false, injection=true", want: &UI{Injection: &tr}},
		{in: "disable,clipboard=none", want: &UI{Disable: true, Clipboard: "none"}},
		{in: "clipboard=read", err: "say disable or enable"},
		{in: "disable,enable", err: "disable given twice"},
		{in: "disable,clipboard=all", err: "contradicts"},
		{in: "enable,clipboard=most", err: `clipboard="most"`},
		{in: "enable,injection=yes", err: `injection="yes"`},
		{in: "off", err: `"off"`},
		{in: "enable,color=blue", err: `"color=blue"`},
	}
	for _, tt := range tests {
		got, err := parseUI(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q = %s, %v; want %s", tt.in, compactJSON(got), err, compactJSON(tt.want))
		}
	}
}

func TestDecodeAnnotations(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		err  []string
		// check is run on success
		check func(*testing.T, *annotationSet)
	}{
		{name: "none", ann: map[string]string{"io.kubernetes.cri.sandbox-id": "x", "org.opencontainers.image.ref.name": "y"},
			check: func(t *testing.T, s *annotationSet) {
				if !s.empty() {
					t.Error("not empty")
				}
			}},
		{name: "all short keys", ann: map[string]string{
			AnnotationIsolation: "session", AnnotationNetworkAllow: "a.example.com:443", AnnotationFSReadonly: "/usr,/lib",
			AnnotationFSReadwrite: "/w", AnnotationFSDeny: "/w/.env", AnnotationUI: "disable", AnnotationIdentity: "agent 7", AnnotationMode: "audit",
		}, check: func(t *testing.T, s *annotationSet) {
			if s.isolation != TierSession || len(s.netAllow) != 1 || len(s.fsReadonly) != 2 || s.fsReadwrite[0] != "/w" ||
				s.fsDeny[0] != "/w/.env" || !s.ui.Disable || s.identity != "agent 7" || s.mode != ModeAudit || len(s.shortKeys()) != 8 {
				t.Errorf("%+v", s)
			}
		}},
		{name: "policy and ref conflict", ann: map[string]string{AnnotationPolicy: `{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy"}`, AnnotationPolicyRef: "x"},
			err: []string{"annotations io.mxc.policy and io.mxc.policy.ref conflict"}},
		{name: "fs keys conflict", ann: map[string]string{AnnotationFSReadonly: "/a,/b", AnnotationFSReadwrite: "/b", AnnotationFSDeny: "/a"},
			err: []string{
				"annotations io.mxc.fs.readonly and io.mxc.fs.readwrite conflict: both list /b",
				"annotations io.mxc.fs.readonly and io.mxc.fs.deny conflict: both list /a",
			}},
		{name: "unknown key", ann: map[string]string{"io.mxc.netwrok.allow": "a.com"}, err: []string{"annotation io.mxc.netwrok.allow: unknown mxc annotation"}},
		{name: "bad values, all reported", ann: map[string]string{
			AnnotationIsolation: "vm", AnnotationMode: "log", AnnotationPolicyRef: "../etc/passwd", AnnotationFSReadonly: "usr",
			AnnotationIdentity: "a\nb", AnnotationUI: "maybe", AnnotationNetworkAllow: "",
		}, err: []string{
			`annotation io.mxc.isolation: "vm" is not a tier`,
			`annotation io.mxc.mode: "log" is not a mode`,
			`annotation io.mxc.policy.ref: "../etc/passwd" is not a policy name`,
			`annotation io.mxc.fs.readonly: [0]: "usr" is not absolute`,
			`annotation io.mxc.identity: contains a control character`,
			`annotation io.mxc.ui: "maybe"`,
			`annotation io.mxc.network.allow: empty value`,
		}},
		{name: "bad policy document", ann: map[string]string{AnnotationPolicy: `{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy","mode":"x","isolation":"y"}`},
			err: []string{`annotation io.mxc.policy: isolation: "y" is not a tier`, `annotation io.mxc.policy: mode: "x" is not a mode`}},
		{name: "MXC document", ann: map[string]string{AnnotationPolicy: `{"version":"1.0.0","containment":"lxc","process":{"commandLine":"x"}}`},
			check: func(t *testing.T, s *annotationSet) {
				if s.policy.Isolation != TierSession || len(s.policyNotes) != 1 {
					t.Errorf("%+v %v", s.policy, s.policyNotes)
				}
			}},
		{name: "too large", ann: map[string]string{AnnotationIdentity: strings.Repeat("a", MaxAnnotationSize+1)}, err: []string{"above 262144"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := decodeAnnotations(tt.ann)
			if len(tt.err) > 0 {
				got := errStrings(err)
				if len(got) != len(tt.err) {
					t.Errorf("got %d errors, want %d:\n%s", len(got), len(tt.err), strings.Join(got, "\n"))
				}
				for _, w := range tt.err {
					if !strings.Contains(strings.Join(got, "\n"), w) {
						t.Errorf("missing %q in:\n%s", w, strings.Join(got, "\n"))
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestAnnotationsRoundTrip(t *testing.T) {
	p, _, err := ParsePolicy([]byte(minimal + `
metadata: {name: rt}
network: {egress: {allow: [{to: [{host: "*.example.com"}], ports: [{protocol: tcp, port: 443}]}]}}
resources: {memory: 1Gi}
`))
	if err != nil {
		t.Fatal(err)
	}
	ann, err := Annotations(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(ann) != 1 || !strings.HasPrefix(ann[AnnotationPolicy], `{"apiVersion":"mxc.dev/v1alpha1"`) {
		t.Fatalf("annotations: %v", ann)
	}
	eff, err := Resolve(ann, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := NewEffective(p, nil, []string{"annotation io.mxc.policy"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if eff.Digest != direct.Digest {
		t.Errorf("digest through annotations %s != direct %s", eff.Digest, direct.Digest)
	}
	if _, err := Annotations(&AgentPolicy{Kind: Kind}); err == nil {
		t.Error("invalid policy annotated")
	}
}
