//go:build linux

package execsrv

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/landlock"
)

func TestParseMode(t *testing.T) {
	for v, want := range map[string]Mode{
		"": ModeAuto, "auto": ModeAuto, "weird": ModeAuto,
		"0": ModeOff, "off": ModeOff, "FALSE": ModeOff, "no": ModeOff,
		"1": ModeAlways, "on": ModeAlways, "always": ModeAlways, "true": ModeAlways,
		"require": ModeRequire,
	} {
		if got := ParseMode(v); got != want {
			t.Errorf("ParseMode(%q) = %v, want %v", v, got, want)
		}
	}
	for _, c := range []struct {
		m      Mode
		policy bool
		want   bool
	}{
		{ModeOff, true, false}, {ModeAuto, false, false}, {ModeAuto, true, true},
		{ModeAlways, false, true}, {ModeRequire, false, true},
	} {
		if got := c.m.StartsFor(c.policy); got != c.want {
			t.Errorf("%v.StartsFor(%v) = %v", c.m, c.policy, got)
		}
	}
}

func TestInfoRoundTrip(t *testing.T) {
	in := &Info{
		ServerPid: 12, ServerStart: 34, InitPid: 56, InitStart: 78,
		FreezeFile: "/sys/fs/cgroup/freezer/x y/freezer.state", Bundle: "/b u/n",
		Config:   FileID{Dev: 1, Ino: 2, Size: 3, MtimeSec: 4, MtimeNsec: 5},
		StdioUID: 101000, HostRootGID: 100000, Audit: true, UID: 1000,
		Agent: "agent \"x\"\n<y>",
	}
	b, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(b, []byte("\n")) != 10 {
		t.Errorf("one line per key expected:\n%s", b)
	}
	got, err := ParseInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *in {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
	}
	// The client pastes the agent line into the audit event as JSON.
	if !strings.Contains(string(b), "agent \"agent \\\"x\\\"\\n\\u003cy\\u003e\"\n") {
		t.Errorf("agent is not a JSON literal:\n%s", b)
	}
	if _, err := (&Info{Bundle: "a\nb"}).Encode(); err == nil {
		t.Error("a newline in a path was accepted")
	}
	if _, err := ParseInfo([]byte("v 2\n")); err == nil {
		t.Error("an unknown version was accepted")
	}
	noAgent, _ := (&Info{}).Encode()
	if strings.Contains(string(noAgent), "agent") {
		t.Error("an empty agent is written (the audit event omits it)")
	}
}

func TestServerConfigEncode(t *testing.T) {
	b, err := (&ServerConfig{Cwd: "/w", Env: []string{"A=1", "B=x y"}, Scrub: []string{"DISPLAY"}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := "V1\x00W/w\x00EA=1\x00EB=x y\x00SDISPLAY\x00"
	if string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
	if _, err := (&ServerConfig{Cwd: "rel"}).Encode(); err == nil {
		t.Error("a relative cwd was accepted")
	}
	if _, err := (&ServerConfig{Cwd: "/", Env: []string{"A=\x00"}}).Encode(); err == nil {
		t.Error("a NUL byte was accepted")
	}
}

func TestPlanFor(t *testing.T) {
	abi := landlock.Effective()
	if abi < 1 {
		t.Skip("no Landlock on this kernel")
	}
	if p, err := PlanFor(nil); p != nil || err != nil {
		t.Errorf("nil ruleset: %+v %v", p, err)
	}
	rules := []landlock.PathRule{{Path: "/bin", Access: landlock.ReadOnly}, {Path: "/tmp x", Access: landlock.ReadWrite}}
	p, err := PlanFor(&landlock.Ruleset{HandleFS: true, Paths: rules, Scoped: landlock.ScopeSignal, LogNewExec: true})
	if err != nil || p == nil {
		t.Fatalf("%+v %v", p, err)
	}
	if p.HandledFS != landlock.FSRights(abi) || p.Scoped != landlock.ScopeSignal&landlock.Scopes(abi) || !slices.Equal(p.Rules, rules) {
		t.Errorf("plan %+v", p)
	}
	if (abi >= 7) != (p.Flags == restrictSelfLogNewExecOn) {
		t.Errorf("flags %d on ABI %d", p.Flags, abi)
	}
	wantSize := 24
	if abi < 6 {
		wantSize = 16
	}
	if abi < 4 {
		wantSize = 8
	}
	if p.AttrSize != wantSize {
		t.Errorf("attr size %d on ABI %d", p.AttrSize, abi)
	}
	b, err := p.Encode()
	if err != nil || !bytes.Contains(b, []byte("r"+strconv.FormatUint(landlock.ReadWrite, 10)+" /tmp x\x00")) {
		t.Errorf("encode: %q %v", b, err)
	}
	// Rules without HandleFS are not applied (only the scopes are).
	p, _ = PlanFor(&landlock.Ruleset{Paths: rules, Scoped: landlock.ScopeSignal})
	if abi >= 6 && (p == nil || len(p.Rules) != 0 || p.HandledFS != 0) {
		t.Errorf("scopes only: %+v", p)
	}
}

func TestStripProbes(t *testing.T) {
	probes := ScrubProbe([]string{"DISPLAY", "XAUTHORITY"})
	env := []string{"PATH=/bin", "DISPLAY=:0"}
	got, scrub, err := StripProbes(append(slices.Clone(env), probes...), probes)
	if err != nil || scrub || !slices.Equal(got, env) {
		t.Errorf("not scrubbed: %q %v %v", got, scrub, err)
	}
	got, scrub, err = StripProbes([]string{"PATH=/bin"}, probes)
	if err != nil || !scrub || !slices.Equal(got, []string{"PATH=/bin"}) {
		t.Errorf("scrubbed: %q %v %v", got, scrub, err)
	}
	if _, _, err := StripProbes([]string{"PATH=/bin", probes[1]}, probes); err == nil {
		t.Error("a partial scrub was accepted")
	}
}

func TestListenAndStop(t *testing.T) {
	state := t.TempDir()
	if err := os.MkdirAll(Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := Listen(SocketPath(state))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := os.Stat(SocketPath(state))
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %v %v", fi.Mode(), err)
	}
	if typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_SEQPACKET {
		t.Errorf("socket type %d %v", typ, err)
	}
	// Stop with no running server removes the files and kills nothing;
	// a recorded pid that is not a server (ours) is left alone.
	in := &Info{ServerPid: os.Getpid(), ServerStart: 1}
	if err := WriteInfo(state, in); err != nil {
		t.Fatal(err)
	}
	if in.ServerAlive() {
		t.Error("the test process was taken for a server")
	}
	if err := Stop(state); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{infoName, sockName} {
		if _, err := os.Stat(filepath.Join(Dir(state), n)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", n, err)
		}
	}
	if _, no := Unavailable(state); no {
		t.Error("unavailable before it was marked")
	}
	_ = MarkUnavailable(state, "because")
	if r, no := Unavailable(state); !no || r != "because" {
		t.Errorf("unavailable %q %v", r, no)
	}
	if CountStart(state) != 1 || CountStart(state) != 2 {
		t.Error("start counter")
	}
}
