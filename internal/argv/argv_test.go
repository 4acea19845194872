package argv

import "testing"

func TestVerb(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mxc-runtime", "run", "--bundle", "b", "id"}, "run"},
		{[]string{"mxc-runtime", "--root", "/run/x", "--log", "f", "create", "id"}, "create"},
		{[]string{"mxc-runtime", "--root=/run/x", "--debug", "run", "id"}, "run"},
		{[]string{"mxc-runtime", "--root", "run", "state", "id"}, "state"}, // "run" is --root's value
		{[]string{"mxc-runtime", "-log-format", "json", "exec", "id", "true"}, "exec"},
		{[]string{"mxc-runtime", "start", "run"}, "start"},
		{[]string{"mxc-runtime", "--version"}, ""},
		{[]string{"mxc-runtime"}, ""},
		{[]string{"mxc-runtime", "--", "run"}, ""},
		{[]string{"mxc-runtime", "--root"}, ""},
	} {
		if got := Verb(tc.args); got != tc.want {
			t.Errorf("Verb(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
