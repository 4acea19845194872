//go:build linux

package enforce_test

import (
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"

	"mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/spec"
)

// TestCgroupV1ViewUnderPolicies: with a process-tier policy the init holds
// agentexec's fds and, when the policy needs the monitor or the egress
// filter, the init hello's socket besides linux/initmount's. The cgroup v1
// view, /dev's submounts, /sys and the device nodes (in the session tier's
// user namespace, bind mounts) are still mxc's and the same, in the same
// order, as libcontainer's, and the hello never lands on
// initmount's socket: a policy without monitor and network rules has no
// hello socket, so the fd where the hello would be is initmount's then.
func TestCgroupV1ViewUnderPolicies(t *testing.T) {
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("cgroup v2 host: no v1 view to mount")
	}
	filesOnly := basePolicy(spec.TierProcess)
	filesOnly.Resources = nil
	hostNetworkPolicy(filesOnly)
	withMonitor := basePolicy(spec.TierProcess)
	hostNetworkPolicy(withMonitor)
	cases := []struct {
		name string
		pol  *spec.AgentPolicy
		node string
	}{
		{"files only, no hello", filesOnly, hostNetNode},
		{"monitor, hello", withMonitor, hostNetNode},
		{"egress filter, hello", basePolicy(spec.TierProcess), ""},
		// User and cgroup namespaces: one cgroup mount per hierarchy.
		{"session tier", basePolicy(spec.TierSession), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := harness.NewRuntime(t)
			if tc.node != "" {
				r.Config = writeNodeConfig(t, tc.node)
			}
			b := agentBundle(t, tc.pol, "sh", "-c", "grep -E ' /sys/fs/cgroup| /sys | /dev/(pts|shm|mqueue|null|zero|full|tty|random|urandom) ' /proc/self/mountinfo | cut -d' ' -f4-")
			views := map[string]string{}
			for _, mode := range []string{"", "0"} {
				r.Env = []string{"MXC_INIT_MOUNTS=" + mode}
				res := r.Run("--debug", "run", "--bundle", b.Dir, newID("cgview"))
				if res.Err != nil {
					t.Fatalf("MXC_INIT_MOUNTS=%q: %v\n%s", mode, res.Err, res.Stderr)
				}
				if taken := strings.Contains(res.Stderr, "the cgroup v1 view at"); taken != (mode == "") {
					t.Errorf("MXC_INIT_MOUNTS=%q: cgroup view mounted by mxc's init: %v", mode, taken)
				}
				if made := strings.Contains(res.Stderr, "initmount: the init made the device nodes /dev/null,"); made != (mode == "") {
					t.Errorf("MXC_INIT_MOUNTS=%q: device nodes made by mxc's init: %v", mode, made)
				}
				views[mode] = res.Stdout
			}
			if views[""] != views["0"] || !strings.Contains(views[""], "/sys/fs/cgroup/memory ") {
				t.Fatalf("cgroup view\n--- mxc:\n%s\n--- libcontainer:\n%s", views[""], views["0"])
			}
		})
	}
}
