package spec

import (
	"regexp"
	"strings"
	"testing"
)

// The patterns the matchers in match.go implement.
var matchers = []struct {
	name string
	re   *regexp.Regexp
	fn   func(string) bool
}{
	{"isName", regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$`), isName},
	{"isLabel", regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`), isLabel},
	{"hasDrivePrefix", regexp.MustCompile(`^[A-Za-z]:\\`), hasDrivePrefix},
	{"isSizeNumber", regexp.MustCompile(`^[0-9]{1,30}(\.[0-9]{1,30})?$`), isSizeNumber},
	{"isRuntimeDir", regexp.MustCompile(`^/run/user/[0-9]+$`), isRuntimeDir},
	{"isSessionBus", regexp.MustCompile(`^/run/user/[0-9]+/bus$`), isSessionBus},
	{"isSSHAgent", regexp.MustCompile(`^/tmp/ssh-[^/]+/agent\.[0-9]+$`), isSSHAgent},
}

func matchInputs() []string {
	in := []string{
		"", "a", "A", "0", "_", "-", ".", "a-", "-a", "a.b", "a..b", "a_b", "_a_", "a-b", "ab-", "a b", "é",
		"my-agent", "My-Agent", "agent.v1", "x.", ".x", "a\n", "\na",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 253), strings.Repeat("a", 254),
		"a" + strings.Repeat("-", 61) + "a", "a" + strings.Repeat("-", 62) + "a",
		`C:\`, `c:\work`, `C:`, `C:/x`, `1:\`, `CC:\`, `:\`,
		"1", "1.5", "1.", ".5", "1.5.5", "01", strings.Repeat("9", 30), strings.Repeat("9", 31),
		strings.Repeat("9", 30) + "." + strings.Repeat("9", 30), "1." + strings.Repeat("9", 31), "1e3", "-1", "+1",
		"/run/user/1000", "/run/user/", "/run/user/x", "/run/user/1000/", "/run/user/1000/bus", "/run/user//bus",
		"/run/user/1000/bus/", "/run/user/10a/bus", "/run/users/1000",
		"/tmp/ssh-abc/agent.123", "/tmp/ssh-/agent.1", "/tmp/ssh-abc/agent.", "/tmp/ssh-a/b/agent.1",
		"/tmp/ssh-abc/agent.12x", "/tmp/ssh-XYZ123/agent.9", "/tmp/ssh-abc/agent.1/", "/tmp/ssh-abc/agent1",
	}
	return in
}

// Each matcher says what its regular expression says.
func TestMatchersAgreeWithRegexp(t *testing.T) {
	for _, m := range matchers {
		for _, s := range matchInputs() {
			if got, want := m.fn(s), m.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, the regexp says %v", m.name, s, got, want)
			}
		}
	}
}

func FuzzMatchersAgreeWithRegexp(f *testing.F) {
	for _, s := range matchInputs() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range matchers {
			if got, want := m.fn(s), m.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, the regexp says %v", m.name, s, got, want)
			}
		}
	})
}
