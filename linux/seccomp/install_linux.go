//go:build linux

package seccomp

import (
	"errors"
	"fmt"

	"github.com/opencontainers/runc/libcontainer/configs"
	lcseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Enabled reports whether this binary can install seccomp filters (built
// with cgo and -tags seccomp, against libseccomp).
const Enabled = lcseccomp.Enabled

// FromSpec converts the OCI spec's profile (nil when it has none). A
// profile that hands syscalls to a seccomp agent (listenerPath or
// SCMP_ACT_NOTIFY) is refused: mxc installs the profile itself in the
// agent's last step, where no notify fd can be passed out.
func FromSpec(s *specs.LinuxSeccomp) (*configs.Seccomp, error) {
	if s == nil {
		return nil, nil
	}
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("linux.seccomp.listenerPath %q: a seccomp notify agent cannot be combined with an agent policy (mxc installs the profile right before the agent's exec, where no listener fd can be handed out)", s.ListenerPath)
	}
	if s.DefaultAction == specs.ActNotify {
		return nil, errors.New("linux.seccomp.defaultAction SCMP_ACT_NOTIFY cannot be combined with an agent policy")
	}
	for i, sc := range s.Syscalls {
		if sc.Action == specs.ActNotify {
			return nil, fmt.Errorf("linux.seccomp.syscalls[%d]: SCMP_ACT_NOTIFY cannot be combined with an agent policy", i)
		}
	}
	c, err := specconv.SetupSeccomp(s)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	return c, nil
}

// Install loads each profile as its own filter on the calling thread, in
// order. The caller holds the thread (runtime.LockOSThread) until it execs;
// no_new_privs must be set (or the thread hold CAP_SYS_ADMIN).
func Install(profiles ...*configs.Seccomp) error {
	for i, p := range profiles {
		if p == nil {
			continue
		}
		if !Enabled {
			return errors.New("seccomp: this mxc-runtime was built without seccomp support (build with -tags seccomp)")
		}
		fd, err := lcseccomp.InitSeccomp(p)
		if err != nil {
			return fmt.Errorf("seccomp filter %d: %w", i, err)
		}
		if fd >= 0 {
			return fmt.Errorf("seccomp filter %d: unexpected notify fd", i)
		}
	}
	return nil
}
