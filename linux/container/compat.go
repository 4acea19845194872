//go:build linux

package container

import (
	"fmt"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// normalizeSpec smooths over the places where libcontainer 1.5 is stricter
// than the runtime-spec and than runc 1.1 (what clients were written
// against), without changing what the container gets.
func normalizeSpec(s *specs.Spec) {
	if s.Linux != nil {
		// A FIFO has no major:minor (the kernel stores 0:0 whatever mknod
		// is given); runtime-spec requires them only for c/b/u devices.
		for i := range s.Linux.Devices {
			if d := &s.Linux.Devices[i]; d.Type == "p" {
				d.Major, d.Minor = 0, 0
			}
		}
	}
	// Filesystem data options (mode=, size=) on a bind mount have no effect
	// (the kernel ignores them for MS_BIND); libcontainer refuses them.
	for i := range s.Mounts {
		m := &s.Mounts[i]
		if !isBind(m) {
			continue
		}
		kept := m.Options[:0:0]
		for _, o := range m.Options {
			if isDataOption(o) {
				logrus.Debugf("mount %s: dropping %q (no effect on a bind mount)", m.Destination, o)
				continue
			}
			kept = append(kept, o)
		}
		m.Options = kept
	}
}

func isBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// isDataOption reports whether o is a filesystem data option (key=value)
// rather than a mount flag or propagation option: flags never carry a value.
func isDataOption(o string) bool { return strings.Contains(o, "=") }

// takeLateRlimits removes the rlimits that must be applied only after the
// container's init has done its own work. RLIMIT_AS: libcontainer sets
// rlimits on the init before it loads seccomp, and a static Go+libseccomp
// init already maps more than a typical 1 GiB address-space limit, so
// libseccomp's allocations would fail. Applied once the init is past that
// point (Start/Run returned), it binds the container's program as asked.
func takeLateRlimits(p *libcontainer.Process) []configs.Rlimit {
	var late, kept []configs.Rlimit
	for _, rl := range p.Rlimits {
		if rl.Type == unix.RLIMIT_AS {
			late = append(late, rl)
		} else {
			kept = append(kept, rl)
		}
	}
	p.Rlimits = kept
	return late
}

func applyLateRlimits(p *libcontainer.Process, late []configs.Rlimit) error {
	if len(late) == 0 {
		return nil
	}
	pid, err := p.Pid()
	if err != nil {
		return err
	}
	for _, rl := range late {
		lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		if err := unix.Prlimit(pid, rl.Type, &lim, nil); err != nil {
			return fmt.Errorf("set rlimit %d on %d: %w", rl.Type, pid, err)
		}
	}
	return nil
}
