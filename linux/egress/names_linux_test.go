package egress

import (
	"strings"
	"testing"
	"time"
)

func TestParseHost(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "api.openai.com", want: "api.openai.com"},
		{in: "API.OpenAI.com.", want: "api.openai.com"},
		{in: "*.githubusercontent.com", want: "*.githubusercontent.com"},
		{in: "_acme-challenge.example.com", want: "_acme-challenge.example.com"},
		{in: "localhost", want: "localhost"},
		{in: "*.com", err: "at least two labels"},
		{in: "*", err: "'*' is only allowed"},
		{in: "", err: "empty host"},
		{in: "a*.example.com", err: "'*' is only allowed"},
		{in: "*.*.example.com", err: "'*' is only allowed"},
		{in: "foo..example.com", err: "empty label"},
		{in: "-foo.example.com", err: "starts or ends with '-'"},
		{in: "foo bar.com", err: "invalid character"},
		{in: strings.Repeat("a", 64) + ".com", err: "longer than 63"},
		{in: strings.Repeat("abcdefgh.", 32) + "com", err: "longer than 253"},
	} {
		p, err := parseHost(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseHost(%q) = %v, %v; want error containing %q", tc.in, p, err, tc.err)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("parseHost(%q) = %v, %v; want %q", tc.in, p, err, tc.want)
		}
	}
}

func TestHostMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"api.openai.com", "api.openai.com", true},
		{"api.openai.com", "API.OPENAI.COM.", true},
		{"api.openai.com", "x.api.openai.com", false},
		{"api.openai.com", "openai.com", false},
		{"api.openai.com", "api.openai.com.evil", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "badexample.com", false},
		{"*.example.com", "a.example.com.evil.net", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", `evil\.x.example.com`, true}, // an escaped dot is one label below example.com
	} {
		p, err := parseHost(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.match(canonicalName(tc.name)); got != tc.want {
			t.Errorf("%s matches %q = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestTTLClamp(t *testing.T) {
	minT, maxT, err := ttlBounds(0, 0)
	if err != nil || minT != DefaultMinTTL || maxT != DefaultMaxTTL {
		t.Fatalf("defaults = %d, %d, %v", minT, maxT, err)
	}
	if _, _, err := ttlBounds(10, 5); err == nil {
		t.Error("min > max accepted")
	}
	for _, tc := range []struct {
		ttl, min, max uint32
		elem          time.Duration
		client        uint32
	}{
		{0, 5, 3600, 5 * time.Second, 0},
		{1, 5, 3600, 5 * time.Second, 1},
		{300, 5, 3600, 300 * time.Second, 300},
		{86400, 5, 3600, 3600 * time.Second, 3600},
		{60, 1, 5, 5 * time.Second, 5},
	} {
		if got := clampTTL(tc.ttl, tc.min, tc.max); got != tc.elem {
			t.Errorf("clampTTL(%d, %d, %d) = %v, want %v", tc.ttl, tc.min, tc.max, got, tc.elem)
		}
		if got := clientTTL(tc.ttl, tc.max); got != tc.client {
			t.Errorf("clientTTL(%d, %d) = %d, want %d", tc.ttl, tc.max, got, tc.client)
		}
		// The invariant that matters: no client caches an address longer
		// than its element lives.
		if time.Duration(clientTTL(tc.ttl, tc.max))*time.Second > clampTTL(tc.ttl, tc.min, tc.max) {
			t.Errorf("ttl %d: client caches longer than the element lives", tc.ttl)
		}
	}
}

func TestUpstreams(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.53":        "192.0.2.53:53",
		"192.0.2.53:5353":   "192.0.2.53:5353",
		"2001:db8::53":      "[2001:db8::53]:53",
		"[2001:db8::53]:54": "[2001:db8::53]:54",
	} {
		if got, err := normalizeUpstream(in); err != nil || got != want {
			t.Errorf("normalizeUpstream(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"dns.google", "192.0.2.53:0", "192.0.2.53:x", ""} {
		if _, err := normalizeUpstream(bad); err == nil {
			t.Errorf("normalizeUpstream(%q) accepted", bad)
		}
	}
	got := parseResolvConf([]byte("# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver  2001:db8::1 \nnameserver bogus\noptions edns0\n"))
	if strings.Join(got, ",") != "127.0.0.53:53,[2001:db8::1]:53" {
		t.Errorf("parseResolvConf = %v", got)
	}
}
