//go:build linux

package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxc.dev/mxc/audit"
	"mxc.dev/mxc/spec"
)

// WriteTree writes files (path relative to rootfs -> content, mode 0755)
// into rootfs, making the directories on the way. Everything under
// ownedDir (relative to rootfs; "" for none) is chowned to uid:gid, up to
// but not including ownedDir itself: an agent's own files, where what keeps
// it from a secret among them is the policy, not file ownership.
func WriteTree(t testing.TB, rootfs string, files map[string]string, ownedDir string, uid, gid int) {
	t.Helper()
	owned := ""
	if ownedDir != "" {
		owned = filepath.Join(rootfs, ownedDir)
	}
	for name, content := range files {
		p := filepath.Join(rootfs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		if owned == "" || !strings.HasPrefix(p, owned+string(filepath.Separator)) {
			continue
		}
		for d := p; d != owned; d = filepath.Dir(d) {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// AuditEvents returns the events of kind in the audit log at path.
func AuditEvents(t testing.TB, path, kind string) []audit.Event {
	t.Helper()
	evs, err := audit.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// WaitAuditEvent polls the audit log at path (for up to 10 s) for an event
// of kind that match accepts, and fails the test with the whole log if
// none comes.
func WaitAuditEvent(t testing.TB, path, kind string, match func(audit.Event) bool) audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range AuditEvents(t, path, kind) {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			evs, _ := audit.ReadAll(path)
			t.Fatalf("no matching %s event in %s; log: %+v", kind, path, evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BatteryPolicy is the escape battery's agent policy (integration/enforce,
// and the exec fast path's tests run the same): the rootfs's programs
// read-only, a workspace and /tmp read-write, a secret file and a secret
// directory denied inside allowed trees, small pids and memory limits.
func BatteryPolicy(agent string, tier spec.Tier) *spec.AgentPolicy {
	return &spec.AgentPolicy{
		APIVersion: spec.APIVersion,
		Kind:       spec.Kind,
		Identity:   &spec.Identity{Agent: agent},
		Isolation:  tier,
		Filesystem: &spec.Filesystem{
			ReadonlyPaths:  []string{"/bin", "/usr", "/etc"},
			ReadwritePaths: []string{"/workspace", "/tmp"},
			DeniedPaths:    []string{"/workspace/secret", "/etc/secret-dir"},
		},
		Resources: &spec.Resources{Pids: 64, Memory: 96 << 20},
	}
}
