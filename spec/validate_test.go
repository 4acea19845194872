package spec

import (
	"strings"
	"testing"
)

func TestCheckHost(t *testing.T) {
	tests := []struct {
		host    string
		allowPS bool
		allow   bool
		want    string // "" = valid; else a substring of the problem
	}{
		{"api.openai.com", false, true, ""},
		{"API.OpenAI.com.", false, true, ""},
		{"localhost", false, true, ""},
		{"*.example.com", false, true, ""},
		{"*.githubusercontent.com", false, true, "public suffix"},
		{"*.githubusercontent.com", true, true, ""},
		{"*.github.io", false, true, "public suffix"},
		{"*.github.io", false, false, ""}, // denying a public suffix is fine
		{"*.co.uk", false, true, "public suffix"},
		{"*.example.co.uk", false, true, ""},
		{"*.com", true, true, "at least two labels"},
		{"*", false, true, "whole first label"},
		{"a.*.com", false, true, "whole first label"},
		{"*foo.com", false, true, "whole first label"},
		{"192.0.2.1", false, true, "is an address; use cidr: 192.0.2.1/32"},
		{"2001:db8::1", false, true, "is an address"},
		{"-bad.com", false, true, "label"},
		{"bad-.com", false, true, "label"},
		{"a..com", false, true, "label"},
		{strings.Repeat("a", 64) + ".com", false, true, "label"},
		{strings.Repeat("a.", 127) + "com", false, true, "not a valid host name"},
		{"ex ample.com", false, true, "label"},
	}
	for _, tt := range tests {
		got := checkHost(tt.host, tt.allowPS, tt.allow)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("checkHost(%q, %v, %v) = %q, want %q", tt.host, tt.allowPS, tt.allow, got, tt.want)
		}
	}
}

func TestCheckFSPath(t *testing.T) {
	tests := []struct {
		path string
		fam  pathFamily
		want string
	}{
		{"/", famPOSIX, ""},
		{"/workspace", famPOSIX, ""},
		{"/a b/c", famPOSIX, ""},
		{"workspace", 0, "not absolute"},
		{"/a/", 0, "not clean (write /a)"},
		{"/a/../b", 0, "not clean"},
		{"/a/./b", 0, "not clean"},
		{"//a", 0, "not clean"},
		{"/a\x00b", 0, "NUL"},
		{`C:\`, famWindows, ""},
		{`C:\Users\agent`, famWindows, ""},
		{`C:\Users\..\x`, 0, "not clean"},
		{`C:\Users\`, 0, "trailing"},
		{`C:\Users/x`, 0, "mixes"},
		{`C:\a|b`, 0, "forbids"},
		{`C:relative`, 0, "not absolute"},
	}
	for _, tt := range tests {
		fam, msg := checkFSPath(tt.path)
		if (tt.want == "") != (msg == "") || !strings.Contains(msg, tt.want) || (tt.want == "" && fam != tt.fam) {
			t.Errorf("checkFSPath(%q) = %v, %q; want %v, %q", tt.path, fam, msg, tt.fam, tt.want)
		}
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		child, parent string
		want          bool
	}{
		{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/a", "/", true},
		{"/", "/a", false}, {`C:\a\b`, `C:\a`, true}, {`c:\A\b`, `C:\a`, true}, {`C:\ab`, `C:\a`, false},
		{`C:\a`, `C:\`, true},
	}
	for _, tt := range tests {
		if got := within(tt.child, tt.parent); got != tt.want {
			t.Errorf("within(%q, %q) = %v", tt.child, tt.parent, got)
		}
	}
}

func TestValidateFamiliesAndExcept(t *testing.T) {
	p := &AgentPolicy{APIVersion: APIVersion, Kind: Kind,
		Filesystem: &Filesystem{ReadonlyPaths: []string{"/usr"}, ReadwritePaths: []string{`C:\work`}},
		Network: &Network{Egress: &Egress{Allow: []Rule{{To: []Peer{
			{CIDR: "10.0.0.0/8", Except: []string{"10.0.0.0/8"}},
			{CIDR: "10.0.0.0/8", Except: []string{"2001:db8::/32"}},
			{Host: "a.example.com", Except: []string{"10.0.0.0/8"}},
			{CIDR: "10.0.0.0/8", AllowPublicSuffix: true},
			{Host: "a.example.com", AllowPublicSuffix: true},
			{CIDR: "10.0.0.1"},
		}}}}},
		Process: &Process{Capabilities: []string{"CAP_CHOWN"}, NoCapabilities: true},
	}
	want := []string{
		`filesystem.readwritePaths[0]: "C:\\work" is a Windows path but the policy's earlier paths are Linux paths`,
		"network.egress.allow[0].to[0].except[0]: 10.0.0.0/8 removes all of 10.0.0.0/8",
		"network.egress.allow[0].to[1].except[0]: 2001:db8::/32 is not the same address family as 10.0.0.0/8",
		"network.egress.allow[0].to[2].except: only a cidr destination can have except",
		"network.egress.allow[0].to[3].allowPublicSuffix: only meaningful on a wildcard host (*.example.com)",
		"network.egress.allow[0].to[4].allowPublicSuffix: only meaningful on a wildcard host (*.example.com)",
		`network.egress.allow[0].to[5].cidr: "10.0.0.1" is an address, not a CIDR (write 10.0.0.1/32)`,
		"process.noCapabilities: contradicts process.capabilities",
	}
	got := errStrings(p.Validate())
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
