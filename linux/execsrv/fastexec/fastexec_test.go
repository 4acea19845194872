//go:build linux && cgo

package fastexec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/moby/sys/user"
	"github.com/urfave/cli/v2"

	"mxc.dev/mxc/linux/landlock"
)

// The C half must reproduce pieces of Go, urfave/cli, libcontainer and
// moby/sys/user exactly; each test here compares it with the real thing
// (or, where that is unexported, a copy of it), on tables and fuzz input.

func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "<a>&", "\x00\x01\b\f\n\r\t\x1f\x7f", "héllo ✓ 𝄞",
		"\u2028\u2029", "bad \xff\xfe utf8", "\xed\xa0\x80 surrogate", "\xc0\xaf overlong", "\xf4\x90\x80\x80 too big", "trunc \xe2\x82"} {
		checkJSON(t, s)
	}
}

func checkJSON(t *testing.T, s string) {
	t.Helper()
	want, _ := json.Marshal(s)
	if got := jsonString(s); got != string(want) {
		t.Errorf("%q: C %s, Go %s", s, got, want)
	}
}

func FuzzJSONString(f *testing.F) {
	f.Add("a<b>\"c\\\n\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) { checkJSON(t, s) })
}

func TestTrimSpace(t *testing.T) {
	for _, s := range []string{"", " ", " a ", "\t\n\v\f\r a=b \u0085", "\u00a0x\u3000", "\u2000\u200a", "x\xff ", " \xe2\x80", "\u200b"} {
		if got, want := trimSpace(s), strings.TrimSpace(s); got != want {
			t.Errorf("%q: C %q, Go %q", s, got, want)
		}
	}
}

func FuzzTrimSpace(f *testing.F) {
	f.Add(" \u3000a b\u2029 ")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		if got, want := trimSpace(s), strings.TrimSpace(s); got != want {
			t.Errorf("%q: C %q, Go %q", s, got, want)
		}
	})
}

func TestCleanPath(t *testing.T) {
	for _, s := range []string{"", "/", "//", "a/b/../c", "/../x", "../../a", "a/..", "./", "/a/./b//c/", "a/../../b", "/.."} {
		if got, want := cleanPath(s), filepath.Clean(s); got != want {
			t.Errorf("%q: C %q, Go %q", s, got, want)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	f.Add("/a/../b/./c//")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		if got, want := cleanPath(s), filepath.Clean(s); got != want {
			t.Errorf("%q: C %q, Go %q", s, got, want)
		}
	})
}

func TestRequestRoundTrip(t *testing.T) {
	for _, c := range []request{
		{Argv: []string{"/bin/true"}, Env: []string{}},
		{Cwd: "/tmp", Argv: []string{"sh", "-c", "echo $A", ""}, Env: []string{"A=1", "B="}},
	} {
		b, ok := encodeRequest(c.Cwd, c.Argv, c.Env)
		if !ok {
			t.Fatalf("encode %+v failed", c)
		}
		got, ok := decodeRequest(b)
		if !ok || got.Cwd != c.Cwd || !slices.Equal(got.Argv, c.Argv) || !slices.Equal(got.Env, c.Env) {
			t.Errorf("round trip %+v: %+v %v", c, got, ok)
		}
		// Any truncation or trailing byte is refused.
		for n := 0; n < len(b); n++ {
			if _, ok := decodeRequest(b[:n]); ok {
				t.Errorf("%+v: prefix of %d bytes accepted", c, n)
			}
		}
		if _, ok := decodeRequest(append(b, 'x')); ok {
			t.Errorf("%+v: trailing byte accepted", c)
		}
	}
	if _, ok := encodeRequest("", nil, nil); ok {
		t.Error("a request without argv was encoded")
	}
	if _, ok := encodeRequest("", []string{strings.Repeat("x", 200<<10)}, nil); ok {
		t.Error("an oversized request was encoded")
	}
}

func FuzzDecodeRequest(f *testing.F) {
	b, _ := encodeRequest("/w", []string{"sh", "-c", "x"}, []string{"A=1"})
	f.Add(b)
	f.Add([]byte("MXC1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ok := decodeRequest(data)
		if !ok {
			return
		}
		if len(r.Argv) == 0 {
			t.Fatal("decoded a request without argv")
		}
		again, ok := encodeRequest(r.Cwd, r.Argv, r.Env)
		if !ok || !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v does not re-encode to the input", r)
		}
	})
}

// prepareEnv is libcontainer v1.5.3's prepareEnv (env.go) without the
// passwd lookup: it is unexported, so the test carries a copy.
func prepareEnv(env []string) ([]string, bool, error) {
	homeIsSet := false
	out := make([]string, 0, len(env))
	saw := make(map[string]bool, len(env))
	for n := len(env); n > 0; n-- {
		kv := env[n-1]
		i := strings.IndexByte(kv, '=')
		if i == -1 {
			return nil, false, errors.New("invalid environment variable: missing '='")
		}
		if i == 0 {
			return nil, false, errors.New("invalid environment variable: name cannot be empty")
		}
		key, val := kv[:i], kv[i+1:]
		if saw[key] {
			continue
		}
		saw[key] = true
		if key == "HOME" {
			if val != "" {
				homeIsSet = true
			} else {
				continue
			}
		}
		out = append(out, kv)
	}
	slices.Reverse(out)
	return out, homeIsSet, nil
}

func checkDedup(t *testing.T, env []string) {
	t.Helper()
	got, home, errMsg := dedupEnv(env)
	want, wantHome, err := prepareEnv(env)
	if err != nil {
		if errMsg != err.Error() {
			t.Errorf("%q: C error %q, Go %v", env, errMsg, err)
		}
		return
	}
	if errMsg != "" || !slices.Equal(got, want) || home != wantHome {
		t.Errorf("%q: C %q home=%v err=%q, Go %q home=%v", env, got, home, errMsg, want, wantHome)
	}
}

func TestDedupEnv(t *testing.T) {
	for _, env := range [][]string{
		{},
		{"PATH=/bin", "TERM=xterm", "A=1", "PATH=/usr/bin"},
		{"HOME=/root", "HOME="},
		{"HOME=", "HOME=/x"},
		{"A=1", "noequals"},
		{"=x"},
		{"A==b", "A=c=d", "B"},
	} {
		checkDedup(t, env)
	}
}

func FuzzDedupEnv(f *testing.F) {
	f.Add("A=1\nHOME=\nA=2\nB=x")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return
		}
		checkDedup(t, strings.Split(s, "\n"))
	})
}

// lookupHome is runc's getUserHome over moby/sys/user's parser.
func lookupHome(data string, uid int) string {
	users, err := user.ParsePasswdFilter(strings.NewReader(data), func(u user.User) bool { return u.Uid == uid })
	if err != nil || len(users) == 0 {
		return "/"
	}
	return users[0].Home
}

func checkHome(t *testing.T, data string, uid int) {
	t.Helper()
	if got, want := passwdHome(data, int64(uid), false), lookupHome(data, uid); got != want {
		t.Errorf("uid %d in %q: C %q, Go %q", uid, data, got, want)
	}
}

func TestPasswdHome(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\n  agent:x:1000:1000::/home/agent:/bin/sh \r\n# comment\nshort:x:7\nnohome:x:8:8\n"
	for _, uid := range []int{0, 1000, 7, 8, 4242, -1} {
		checkHome(t, passwd, uid)
	}
	checkHome(t, "x:x:abc:0::/weird:\n", 0)     // a malformed uid parses as 0
	checkHome(t, "#:\nroot:x:0:0::/root:\n", 0) // so does a comment line
	checkHome(t, "", 0)                         // no entries
	checkHome(t, strings.Repeat("y", 70000)+"\nroot:x:0:0::/r:\n", 0)
	checkHome(t, "root:x:0:0::/r:\n"+strings.Repeat("y", 70000), 0)
	checkHome(t, "a:x:+12:0::/plus:\n", 12)
	checkHome(t, "a:x:99999999999999999999:0::/big:\n", 0)
	checkHome(t, "a:x:9223372036854775807:0::/max:\n", 9223372036854775807)
	checkHome(t, "a:x:99999999999999999999x:0::/big:\n", 9223372036854775807)
	checkHome(t, "a:x:9999999999999999999x:0::/big:\n", 0)
	checkHome(t, "a:x:-9223372036854775809:0::/min:\n", -9223372036854775808)
	checkHome(t, "a:x:-:0::/dash:\n", 0)
	if got := passwdHome("root:x:0:0::/root:", 0, true); got != "/" {
		t.Errorf("unreadable passwd: %q, want /", got)
	}
}

func FuzzPasswdHome(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000::/home/agent:", 1000)
	f.Fuzz(func(t *testing.T, data string, uid int) {
		if strings.IndexByte(data, 0) >= 0 || len(data) > 1<<17 {
			return
		}
		checkHome(t, data, uid)
	})
}

func TestFileRightsMatchLandlock(t *testing.T) {
	want := landlock.AccessFSExecute | landlock.AccessFSWriteFile | landlock.AccessFSReadFile | landlock.AccessFSTruncate | landlock.AccessFSIoctlDev
	if fileRights != want {
		t.Errorf("C file rights %#x, linux/landlock %#x", fileRights, want)
	}
}

// urfaveParse parses args with an app carrying mxc-runtime's global flags
// and exec's flags (cmd/mxc-runtime/main.go and exec_linux.go), as the Go
// CLI would.
func urfaveParse(args []string) (*cmdline, error) {
	var got *cmdline
	app := &cli.App{
		Name: "mxc-runtime",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug"},
			&cli.StringFlag{Name: "log"},
			&cli.StringFlag{Name: "log-format", Value: "text"},
			&cli.StringFlag{Name: "root", Value: "/run/mxc"},
			&cli.BoolFlag{Name: "systemd-cgroup"},
			&cli.StringFlag{Name: "rootless", Value: "auto"},
			&cli.StringFlag{Name: "config", Value: "/etc/mxc/config.yaml"},
		},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
		Writer:               &bytes.Buffer{},
		ErrWriter:            &bytes.Buffer{},
		Commands: []*cli.Command{{
			Name:            "exec",
			HideHelpCommand: true, // as cmd/mxc-runtime's noHelpArgument
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "console-socket"},
				&cli.StringFlag{Name: "pidfd-socket"},
				&cli.StringFlag{Name: "cwd"},
				&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}},
				&cli.StringFlag{Name: "user", Aliases: []string{"u"}},
				&cli.Int64SliceFlag{Name: "additional-gids", Aliases: []string{"g"}},
				&cli.StringFlag{Name: "process", Aliases: []string{"p"}},
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}},
				&cli.StringFlag{Name: "pid-file"},
				&cli.StringFlag{Name: "process-label"},
				&cli.StringFlag{Name: "apparmor"},
				&cli.BoolFlag{Name: "no-new-privs"},
				&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}},
				&cli.IntFlag{Name: "preserve-fds"},
				&cli.StringSliceFlag{Name: "cgroup"},
				&cli.BoolFlag{Name: "ignore-paused"},
			},
			Action: func(c *cli.Context) error {
				root, err := filepath.Abs(c.String("root"))
				if err != nil {
					return err
				}
				got = &cmdline{Root: root, Log: c.String("log"), Cwd: c.String("cwd"), Env: c.StringSlice("env")}
				if got.Env == nil {
					got.Env = []string{}
				}
				a := c.Args().Slice()
				if len(a) > 0 {
					got.ID, got.Argv = a[0], a[1:]
				}
				return nil
			},
		}},
	}
	err := app.Run(args)
	if err == nil && got == nil {
		err = errors.New("no command ran")
	}
	return got, err
}

func checkCommandLine(t *testing.T, args []string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	got, ok := parseCommandLine(args, wd)
	if !ok {
		return // the Go CLI handles it: nothing to compare
	}
	want, err := urfaveParse(args)
	if err != nil {
		t.Fatalf("%q: the fast path took a command line the CLI refuses: %v", args, err)
	}
	if want.Cwd == "" {
		want.Cwd = got.Cwd // "--cwd=" is no cwd for both
	}
	if got.Root != want.Root || got.Log != want.Log || got.Cwd != want.Cwd || got.ID != want.ID ||
		!slices.Equal(got.Env, want.Env) || !slices.Equal(got.Argv, want.Argv) {
		t.Errorf("%q:\n C   %+v\n CLI %+v", args, got, want)
	}
}

func TestCommandLine(t *testing.T) {
	eligible := [][]string{
		{"mxc-runtime", "exec", "c1", "/bin/true"},
		{"mxc-runtime", "--root", "/run/x", "--log=/tmp/l", "-log-format", "json", "--config", "", "exec", "c1", "sh", "-c", "echo hi"},
		{"mxc-runtime", "--root=rel", "exec", "-e", "A=1, B=2", "-e=C=3", "--e", "D=4", "--cwd", "/tmp", "c1", "env", "-e", "X"},
		{"mxc-runtime", "exec", "--env", "A=1", "-env=B=2", "c1", "env"},
		{"mxc-runtime", "exec", "--", "c1", "--", "x"},
		{"mxc-runtime", "exec", "--cwd=", "c1", "x"},
		{"mxc-runtime", "exec", "c1", "-"},
		{"mxc-runtime", "exec", "h", "x"},
		{"mxc-runtime", "exec", "help", "x"},
	}
	for _, a := range eligible {
		if _, ok := parseCommandLine(a, "/work"); !ok {
			t.Errorf("%q: not taken by the fast path", a)
		}
		checkCommandLine(t, a)
	}
	for _, a := range [][]string{
		{"mxc-runtime", "exec", "c1"},
		{"mxc-runtime", "exec", "-t", "c1", "sh"},
		{"mxc-runtime", "exec", "--user", "1000", "c1", "id"},
		{"mxc-runtime", "exec", "--detach", "--pid-file", "p", "c1", "sleep"},
		{"mxc-runtime", "exec", "--process", "p.json", "c1"},
		{"mxc-runtime", "exec", "--cap", "CAP_SYS_ADMIN", "c1", "x"},
		{"mxc-runtime", "exec", "--preserve-fds", "1", "c1", "x"},
		{"mxc-runtime", "exec", "--cgroup", "sub", "c1", "x"},
		{"mxc-runtime", "exec", "--ignore-paused", "c1", "x"},
		{"mxc-runtime", "exec", "-e", "NOEQUALS", "c1", "x"},
		{"mxc-runtime", "exec", "-e", "A=1", "--env", "B=2", "c1", "x"},
		{"mxc-runtime", "exec", "--cwd", "relative", "c1", "x"},
		{"mxc-runtime", "exec", "../c1", "x"},
		{"mxc-runtime", "--debug", "exec", "c1", "x"},
		{"mxc-runtime", "--systemd-cgroup", "exec", "c1", "x"},
		{"mxc-runtime", "--root", "/", "exec", "c1", "x"},
		{"mxc-runtime", "--log-format", "xml", "exec", "c1", "x"},
		{"mxc-runtime", "exec", "c1", "x", "--generate-bash-completion"},
		{"mxc-runtime", "exec", "-h", "c1", "x"},
		{"mxc-runtime", "exec", "---e", "A=1", "c1", "x"},
		{"mxc-runtime", "exec", "-e"},
		{"mxc-runtime", "run", "exec", "x"},
		{"mxc-runtime", "--", "exec", "c1", "x"},
	} {
		if cl, ok := parseCommandLine(a, "/work"); ok {
			t.Errorf("%q: taken by the fast path: %+v", a, cl)
		}
	}
}

func FuzzCommandLine(f *testing.F) {
	f.Add("exec\x00-e\x00A=1,B\x00c1\x00true")
	f.Add("--root\x00/r\x00exec\x00--cwd=/w\x00c\x00sh\x00-c\x00x")
	f.Add("exec\x00--env= A=1 \x00--\x00c\x00x")
	f.Fuzz(func(t *testing.T, s string) {
		args := append([]string{"mxc-runtime"}, strings.Split(s, "\x00")...)
		for _, a := range args {
			if !utf8.ValidString(a) {
				return // urfave/cli and the kernel agree on bytes; keep the oracle simple
			}
		}
		checkCommandLine(t, args)
	})
}
