//go:build linux

package agentexec

import (
	"fmt"
	"os"
	"strconv"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/seccomp"
)

// Config is what the last step applies, in this order: Landlock, then the
// seccomp filters (so that a spec profile denying the landlock syscalls,
// as docker 20.10's default does, cannot stop the ruleset), then execve.
type Config struct {
	Landlock *landlock.Ruleset `json:"landlock,omitempty"`
	// MinLandlockABI fails the step if the kernel offers less (the check
	// at create passed on this kernel; this guards a kernel swap under a
	// long-lived container).
	MinLandlockABI int `json:"minLandlockABI,omitempty"`
	// AgentSeccomp is the agent profile's options (nil: none); it is
	// installed first, precompiled where possible.
	AgentSeccomp *seccomp.Options `json:"agentSeccomp,omitempty"`
	// Seccomp are further filters (the OCI spec's profile), installed after
	// it: the kernel applies the most restrictive verdict of all filters.
	Seccomp []*configs.Seccomp `json:"seccomp,omitempty"`
	// SpecBPF are the non-nil Seccomp profiles compiled for the C last
	// step (Precompile), in order; not passed to the Go step.
	SpecBPF []Program `json:"specBPF,omitempty"`
}

const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

func sealedMemfd(name string, data []byte, mode uint32) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if len(data) > 0 {
		if _, err := f.Write(data); err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Chmod(os.FileMode(mode)); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	return f, nil
}

// Wrap rewrites p so that the container execs the last step first, which
// applies cfg and then execs p's original program. The two memfds are
// appended to p.ExtraFiles; the caller closes nothing (they are
// close-on-exec in the runtime and die with it).
func Wrap(p *libcontainer.Process, cfg *Config) error {
	if len(p.Args) == 0 {
		return fmt.Errorf("agent-exec: the process has no args")
	}
	data, err := EncodeConfig(cfg)
	if err != nil {
		return err
	}
	// Mode 0: should the fixup not happen, libcontainer's LookPath fails
	// with "permission denied" instead of exec'ing an empty file.
	exe, err := sealedMemfd(ExeMemfdName, nil, 0)
	if err != nil {
		return err
	}
	conf, err := sealedMemfd(ConfigMemfdName, data, 0o400)
	if err != nil {
		exe.Close()
		return err
	}
	e := 3 + len(p.ExtraFiles)
	c := e + 1
	p.ExtraFiles = append(p.ExtraFiles, exe, conf)
	args := []string{"/proc/self/fd/" + strconv.Itoa(e), Verb, "--config-fd", strconv.Itoa(c), "--"}
	p.Args = append(args, p.Args...)
	return nil
}
