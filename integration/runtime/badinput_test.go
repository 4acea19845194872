//go:build linux

package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	h "mxc.dev/mxc/integration/harness"
)

// Each bad input must fail with an error naming what is wrong, exit
// non-zero, and leave no state dir, cgroup or process behind.
func TestBadInputs(t *testing.T) {
	rt := h.NewRuntime(t)
	good := h.NewBundle(t, "sleep", "1000")

	type tc struct {
		name    string
		prepare func(t *testing.T) []string // returns the command line
		want    string                      // substring of stderr
	}
	writeConfig := func(t *testing.T, content string) string {
		b := h.NewBundle(t)
		if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return b.Dir
	}
	cases := []tc{
		{"missing config.json", func(t *testing.T) []string {
			return []string{"create", "--bundle", t.TempDir(), "bad1"}
		}, "config.json not found"},
		{"invalid JSON", func(t *testing.T) []string {
			return []string{"create", "--bundle", writeConfig(t, "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\n"), "bad2"}
		}, "line"},
		{"wrong type names the JSON path", func(t *testing.T) []string {
			return []string{"create", "--bundle", writeConfig(t, `{"ociVersion":"1.0.0","process":{"args":"sh","cwd":"/"},"root":{"path":"rootfs"}}`), "bad3"}
		}, "process.args"},
		{"relative cwd", func(t *testing.T) []string {
			b := h.NewBundle(t)
			b.Spec.Process.Cwd = "tmp"
			b.Save(t)
			return []string{"create", "--bundle", b.Dir, "bad4"}
		}, "process.cwd"},
		{"missing rootfs", func(t *testing.T) []string {
			b := h.NewBundle(t)
			os.RemoveAll(filepath.Join(b.Dir, "rootfs"))
			return []string{"create", "--bundle", b.Dir, "bad5"}
		}, "root.path"},
		{"id with a slash", func(t *testing.T) []string {
			return []string{"create", "--bundle", good.Dir, "a/b"}
		}, "invalid container id"},
		{"id with dot-dot", func(t *testing.T) []string {
			return []string{"create", "--bundle", good.Dir, ".."}
		}, "invalid container id"},
		{"id with embedded dot-dot", func(t *testing.T) []string {
			return []string{"create", "--bundle", good.Dir, "x..y"}
		}, "invalid container id"},
		{"terminal without console socket", func(t *testing.T) []string {
			b := h.NewBundle(t)
			b.Spec.Process.Terminal = true
			b.Save(t)
			return []string{"create", "--bundle", b.Dir, "bad6"}
		}, "console-socket"},
		{"unknown rlimit", func(t *testing.T) []string {
			b := h.NewBundle(t)
			b.Spec.Process.Rlimits[0].Type = "RLIMIT_BOGUS"
			b.Save(t)
			return []string{"create", "--bundle", b.Dir, "bad7"}
		}, "RLIMIT_BOGUS"},
		{"missing argument", func(t *testing.T) []string { return []string{"create", "--bundle", good.Dir} }, "requires exactly 1 argument"},
		// A foreground run failing after its init started (here at the pid
		// file, as at the policy's set-up): the init holds the stdio pipes
		// the runtime copies, and the runtime once waited for those copies
		// before destroying the init, forever.
		{"foreground run failing after the init started", func(t *testing.T) []string {
			return []string{"run", "--bundle", good.Dir, "--pid-file", filepath.Join(t.TempDir(), "no", "such", "dir", "pid"), "bad8"}
		}, "pid file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.prepare(t)
			res := rt.Run(args...)
			if res.Code == 0 {
				t.Fatalf("%v succeeded", args)
			}
			if !strings.Contains(res.Stderr, c.want) {
				t.Fatalf("stderr %q does not mention %q", res.Stderr, c.want)
			}
			assertRootEmpty(t, rt)
		})
	}
}

func TestDuplicateIDLeavesTheFirstIntact(t *testing.T) {
	rt := h.NewRuntime(t)
	rt.MustRun("create", "--bundle", h.NewBundle(t, "sleep", "1000").Dir, "dup")
	res := rt.Run("create", "--bundle", h.NewBundle(t, "sleep", "1000").Dir, "dup")
	if res.Code == 0 || !strings.Contains(res.Stderr, "already exists") {
		t.Fatalf("duplicate create: code %d stderr %q", res.Code, res.Stderr)
	}
	if st := rt.Status("dup"); st != "created" {
		t.Fatalf("first container damaged by the duplicate: status %q", st)
	}
}

func TestVerbsOnMissingContainerAndRoot(t *testing.T) {
	rt := h.NewRuntime(t)
	for _, args := range [][]string{
		{"state", "nope"}, {"start", "nope"}, {"kill", "nope"}, {"delete", "nope"},
		{"pause", "nope"}, {"resume", "nope"}, {"ps", "nope"}, {"exec", "nope", "true"},
		{"events", "--stats", "nope"}, {"update", "--memory", "1m", "nope"},
	} {
		if res := rt.Run(args...); res.Code == 0 || !strings.Contains(res.Stderr, "does not exist") {
			t.Errorf("%v: code %d stderr %q", args, res.Code, res.Stderr)
		}
	}
	// delete --force of a missing container is not an error (runc does the same).
	rt.MustRun("delete", "--force", "nope")
	// A --root that does not exist: a clear error, nothing created.
	missing := filepath.Join(t.TempDir(), "no", "such", "root")
	res := runWithRoot(t, rt, missing, "state", "x")
	if res.Code == 0 || !strings.Contains(res.Stderr, "does not exist") || !strings.Contains(res.Stderr, missing) {
		t.Fatalf("state under a missing root: code %d stderr %q", res.Code, res.Stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("state created the missing root %s", missing)
	}
	if out := runWithRoot(t, rt, missing, "list", "-q"); out.Code != 0 || out.Stdout != "" {
		t.Fatalf("list under a missing root: %+v", out)
	}
}

func runWithRoot(t *testing.T, rt *h.Runtime, root string, args ...string) h.Result {
	t.Helper()
	saved := rt.Root
	rt.Root = root
	defer func() { rt.Root = saved }()
	return rt.Run(args...)
}

func assertRootEmpty(t *testing.T, rt *h.Runtime) {
	t.Helper()
	ents, _ := os.ReadDir(rt.Root)
	for _, e := range ents {
		if e.Name() != ".locks" && e.Name() != ".owner" {
			t.Errorf("state left behind under %s: %s", rt.Root, e.Name())
		}
	}
	locks, _ := os.ReadDir(filepath.Join(rt.Root, ".locks"))
	_ = locks // lock files of failed creates are harmless and reused
}
