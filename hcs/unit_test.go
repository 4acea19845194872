package hcs

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"mxc.dev/mxc/spec"
)

func TestNormalizeWinPath(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: `C:\work`, want: `C:\work`},
		{in: `c:/work/repo/`, want: `C:\work\repo`},
		{in: `\\?\D:\x\.\y\..\z`, want: `D:\x\z`},
		{in: `/workspace`, want: `C:\workspace`},
		{in: `\tmp\\x`, want: `C:\tmp\x`},
		{in: `C:\`, want: `C:\`},
		{in: `C:`, want: `C:\`},
		{in: `\\.\pipe\docker_engine`, want: `\\.\pipe\docker_engine`},
		{in: `//./pipe/x`, want: `\\.\pipe\x`},
		{in: `work`, err: "not absolute"},
		{in: `C:work`, err: "relative to a drive"},
		{in: `\\server\share`, err: "UNC"},
		{in: `C:\..\x`, err: "escapes"},
		{in: `\\.\pipe\`, err: "no pipe name"},
		{in: ``, err: "empty"},
	} {
		got, err := normalizeWinPath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("normalizeWinPath(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("normalizeWinPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		p, base string
		want    bool
	}{
		{`C:\work\repo`, `C:\work`, true},
		{`c:\WORK`, `C:\work`, true},
		{`C:\workspace`, `C:\work`, false},
		{`C:\work`, `C:\work\repo`, false},
		{`C:\x`, `C:\`, true},
		{`D:\x`, `C:\`, false},
	} {
		p, _ := normalizeWinPath(tc.p)
		b, _ := normalizeWinPath(tc.base)
		if got := p.within(b); got != tc.want {
			t.Errorf("%s within %s = %v, want %v", tc.p, tc.base, got, tc.want)
		}
	}
}

func TestSubtractPrefixes(t *testing.T) {
	for _, tc := range []struct {
		p      string
		except []string
		want   []string
	}{
		{"10.0.0.0/8", nil, []string{"10.0.0.0/8"}},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}, nil},
		{"10.0.0.0/8", []string{"0.0.0.0/0"}, nil},
		{"10.0.0.0/8", []string{"11.0.0.0/8", "2001:db8::/32"}, []string{"10.0.0.0/8"}},
		{"192.0.2.0/30", []string{"192.0.2.1/32"}, []string{"192.0.2.0/32", "192.0.2.2/31"}},
		{"2001:db8::/126", []string{"2001:db8::3/128"}, []string{"2001:db8::/127", "2001:db8::2/128"}},
	} {
		var ex []netip.Prefix
		for _, e := range tc.except {
			ex = append(ex, netip.MustParsePrefix(e))
		}
		var got []string
		for _, q := range subtractPrefixes(netip.MustParsePrefix(tc.p), ex) {
			got = append(got, q.String())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s minus %v = %v, want %v", tc.p, tc.except, got, tc.want)
		}
	}
}

// checkSubtraction verifies, address by address, that the result covers
// exactly p minus the exceptions and that its prefixes do not overlap.
func checkSubtraction(t *testing.T, p netip.Prefix, ex []netip.Prefix) {
	t.Helper()
	got := subtractPrefixes(p, ex)
	for i := range got {
		for j := i + 1; j < len(got); j++ {
			if got[i].Overlaps(got[j]) {
				t.Fatalf("%v minus %v: %v and %v overlap", p, ex, got[i], got[j])
			}
		}
	}
	for a := p.Addr(); p.Contains(a); a = a.Next() {
		excepted := false
		for _, e := range ex {
			if e.Contains(a) {
				excepted = true
			}
		}
		covered := false
		for _, q := range got {
			if q.Contains(a) {
				covered = true
			}
		}
		if covered == excepted {
			t.Fatalf("%v minus %v = %v: address %v covered=%v excepted=%v", p, ex, got, a, covered, excepted)
		}
		if !a.Next().IsValid() {
			break
		}
	}
}

func TestSubtractPrefixesExhaustive(t *testing.T) {
	p := netip.MustParsePrefix("198.51.100.0/26")
	for bits := 26; bits <= 32; bits++ {
		for a := p.Addr(); p.Contains(a); a = a.Next() {
			e := netip.PrefixFrom(a, bits).Masked()
			checkSubtraction(t, p, []netip.Prefix{e, netip.MustParsePrefix("198.51.100.17/32")})
		}
	}
}

func FuzzSubtractPrefixes(f *testing.F) {
	f.Add("192.0.2.0/24", "192.0.2.7/32", "192.0.2.128/25")
	f.Add("2001:db8::/120", "2001:db8::80/121", "::/0")
	f.Add("10.0.0.0/22", "10.0.1.0/24", "11.0.0.0/8")
	f.Fuzz(func(t *testing.T, ps, e1, e2 string) {
		p, err := netip.ParsePrefix(ps)
		if err != nil {
			return
		}
		p = p.Masked()
		// Keep the exhaustive check small: at most 4096 addresses.
		if p.Addr().BitLen()-p.Bits() > 12 {
			return
		}
		var ex []netip.Prefix
		for _, s := range []string{e1, e2} {
			if e, err := netip.ParsePrefix(s); err == nil && e.Addr().Is4() == p.Addr().Is4() && !e.Addr().Is4In6() {
				ex = append(ex, e.Masked())
			}
		}
		if p.Addr().Is4In6() {
			return
		}
		checkSubtraction(t, p, ex)
	})
}

func TestComposeCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cmd.exe", "/c", "echo hi"}, `cmd.exe /c "echo hi"`},
		{[]string{`C:\dir\`, `a b\`}, `C:\dir\ "a b\\"`},
		{[]string{`say "x"`}, `"say \"x\""`},
		{[]string{`a\"b`}, `a\\\"b`},
		{[]string{""}, `""`},
	} {
		if got := ComposeCommandLine(tc.args); got != tc.want {
			t.Errorf("ComposeCommandLine(%q) = %s, want %s", tc.args, got, tc.want)
		}
		if got := splitCommandLine(ComposeCommandLine(tc.args)); !reflect.DeepEqual(got, tc.args) {
			t.Errorf("round trip of %q = %q", tc.args, got)
		}
	}
}

func FuzzComposeCommandLine(f *testing.F) {
	f.Add("agent.exe", `fix "the" build`, `C:\work\`)
	f.Add(`\\`, `"`, "")
	f.Add("a\tb", `\"\\"`, `x\`)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		args := []string{a, b, c}
		for _, s := range args {
			if strings.ContainsRune(s, 0) {
				return // a command line cannot carry NUL
			}
		}
		if got := splitCommandLine(ComposeCommandLine(args)); !reflect.DeepEqual(got, args) {
			t.Fatalf("round trip of %q through %s = %q", args, ComposeCommandLine(args), got)
		}
	})
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]Signal{
		"": SignalTerm, "KILL": SignalKill, "SIGKILL": SignalKill, "9": SignalKill, "sigkill": SignalKill,
		"TERM": SignalTerm, "SIGTERM": SignalTerm, "15": SignalTerm, "INT": SignalTerm, "2": SignalTerm,
	} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"HUP", "SIGUSR1", "10", "-1", "SIGSTOP"} {
		if _, err := ParseSignal(in); err == nil {
			t.Errorf("ParseSignal(%q): want an error", in)
		}
	}
}

func TestSameACLSet(t *testing.T) {
	a := ACL{Action: ActionAllow, Direction: DirectionOut, RemoteAddresses: "192.0.2.0/24", Priority: 2100}
	b := ACL{Action: ActionBlock, Direction: DirectionOut, Priority: 4100}
	if !SameACLSet([]ACL{a, b}, []ACL{b, a}) {
		t.Error("order must not matter")
	}
	if SameACLSet([]ACL{a, a}, []ACL{a, b}) || SameACLSet([]ACL{a}, []ACL{a, b}) {
		t.Error("different sets compare equal")
	}
}

func TestRuleACLsRefusesHostsInDenyRules(t *testing.T) {
	pol := &spec.AgentPolicy{APIVersion: spec.APIVersion, Kind: spec.Kind, Network: &spec.Network{Egress: &spec.Egress{
		Default: spec.Allow,
		Deny:    []spec.Rule{{To: []spec.Peer{{Host: "pastebin.com"}}}},
	}}}
	eff, err := spec.NewEffective(pol, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Translate(baseSpec(), eff, Options{ID: "x", HostCPUs: 2})
	if err == nil || !strings.Contains(err.Error(), `network.egress.deny[0].to[0].host "pastebin.com"`) {
		t.Fatalf("deny rule by host name: err = %v, want a refusal naming the rule", err)
	}
}

// FuzzFilesystem checks the filesystem mapping's promises for any mount
// and policy: nothing unlisted is mapped, nothing denied is exposed, and a
// read-only grant is never mapped writable.
func FuzzFilesystem(f *testing.F) {
	f.Add(`C:\work\repo`, false, `C:\work`, `C:\tools`, `C:\work\repo\.env`)
	f.Add(`C:\tools\bin`, false, `C:\work`, `C:\tools`, `C:\secrets`)
	f.Add(`c:/work`, true, `C:\work`, `C:\work\ro`, `D:\x`)
	f.Add(`\\.\pipe\x`, false, `C:\`, `C:\x`, `C:\y`)
	f.Fuzz(func(t *testing.T, dest string, ro bool, rw, rdo, denied string) {
		s := baseSpec()
		m := specs.Mount{Source: `D:\src`, Destination: dest}
		if ro {
			m.Options = []string{"ro"}
		}
		s.Mounts = []specs.Mount{m}
		pol := &spec.AgentPolicy{APIVersion: spec.APIVersion, Kind: spec.Kind, Filesystem: &spec.Filesystem{
			ReadwritePaths: []string{rw}, ReadonlyPaths: []string{rdo}, DeniedPaths: []string{denied},
		}}
		eff, err := spec.NewEffective(pol, nil, nil, nil)
		if err != nil {
			return // not a valid policy: spec refuses it before hcs sees it
		}
		res, err := Translate(s, eff, Options{ID: "fuzz", HostCPUs: 4})
		if err != nil {
			return
		}
		d, _ := normalizeWinPath(denied)
		w, _ := normalizeWinPath(rw)
		r, _ := normalizeWinPath(rdo)
		for _, md := range res.Config.MappedDirectories {
			cp, err := normalizeWinPath(md.ContainerPath)
			if err != nil {
				t.Fatalf("mapped %q: %v", md.ContainerPath, err)
			}
			if cp.within(d) || d.within(cp) {
				t.Fatalf("mapping %s exposes denied %s", cp, d)
			}
			inRW, inRO := cp.within(w), cp.within(r)
			if !inRW && !inRO {
				t.Fatalf("mapping %s is not covered by %s or %s", cp, w, r)
			}
			roDecides := inRO && (!inRW || len(r) >= len(w))
			if roDecides && !md.ReadOnly {
				t.Fatalf("mapping %s under read-only %s is writable", cp, r)
			}
			if !md.ReadOnly && r.within(cp) {
				t.Fatalf("read-only %s inside writable mapping %s", r, cp)
			}
		}
		for _, mp := range res.Config.MappedPipes {
			t.Fatalf("pipe %s mapped under a filesystem policy that cannot list pipes", mp.ContainerPipeName)
		}
	})
}

// FuzzTranslateSpec feeds arbitrary config.json documents through the
// translation, with and without a policy: it must return a result or an
// error, never panic, and never modify the spec.
func FuzzTranslateSpec(f *testing.F) {
	for _, tc := range cases() {
		s := baseSpec()
		if tc.spec != nil {
			tc.spec(s)
		}
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	pol := &spec.AgentPolicy{APIVersion: spec.APIVersion, Kind: spec.Kind, Filesystem: workFS(),
		Resources: &spec.Resources{CPUs: 1.5, Memory: 1 << 30},
		Network:   &spec.Network{Egress: &spec.Egress{Allow: []spec.Rule{cidrRule("192.0.2.0/24", []string{"192.0.2.9/32"}, spec.Port{Protocol: spec.ProtoTCP, Port: 443})}}}}
	eff, err := spec.NewEffective(pol, nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.Spec
		if json.Unmarshal(data, &s) != nil {
			return
		}
		before, _ := json.Marshal(&s)
		for _, e := range []*spec.Effective{nil, eff} {
			for _, hv := range []string{"", uvmImage} {
				res, err := Translate(&s, e, Options{ID: "fuzz", HostCPUs: 3, UtilityVMPath: hv})
				if (res == nil) == (err == nil) {
					t.Fatalf("result %v with error %v", res, err)
				}
			}
		}
		if after, _ := json.Marshal(&s); !bytes.Equal(before, after) {
			t.Fatal("Translate modified the spec")
		}
	})
}
