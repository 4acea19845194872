//go:build linux

package agentexec

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"syscall"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/execsrv"
	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/seccomp"
)

// AsServer turns a process that Wrap prepared for `exec` into the start of
// the container's exec server (see package execsrv): the last step then
// installs the seccomp filters exactly as for an agent process but, in
// place of Landlock and the agent's program, execs the server (serverArgs,
// after the binary), handing it the Landlock plan to apply in each process
// it starts. Everything else the normal exec path gives the process
// (namespaces, cgroups, user, capabilities, no_new_privs) stays as Wrap's
// caller prepared it.
func AsServer(p *libcontainer.Process, serverArgs []string) error {
	i := slices.Index(p.Args, "--")
	if len(p.Args) < 5 || p.Args[1] != Verb || i < 0 {
		return errors.New("agent-exec: the process was not wrapped")
	}
	args := append([]string{}, p.Args[:i]...)
	args = append(args, "--server", "--")
	p.Args = append(args, serverArgs...)
	return nil
}

// WrapExe makes a process of a container without an agent policy exec
// mxc-runtime itself with args: through the same sealed, close-on-exec fd
// of the runtime's binary as Wrap (FixupInitFDs swaps the placeholder), so
// the container never sees a path to the host's binary.
func WrapExe(p *libcontainer.Process, args []string) error {
	exe, err := sealedMemfd(ExeMemfdName, nil, 0)
	if err != nil {
		return err
	}
	e := 3 + len(p.ExtraFiles)
	p.ExtraFiles = append(p.ExtraFiles, exe)
	p.Args = append([]string{"/proc/self/fd/" + strconv.Itoa(e)}, args...)
	return nil
}

// Serve is the last step of the exec server's start (agent-exec --server):
// the server must hold what every agent process holds, except the Landlock
// domain, which each process it starts gets for itself. So it installs the
// agent's seccomp filters as Exec does, checks that those filters let the
// server's children apply Landlock, and execs the server with the Landlock
// plan on an extra fd. Failures are reported on the server's --ready-fd
// too, for the runtime waiting for it. It only returns on failure.
func Serve(cfg *Config, argv, env []string) (int, error) {
	ready := -1
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == "--ready-fd" {
			ready, _ = strconv.Atoi(argv[i+1])
		}
	}
	code, err := serve(cfg, argv, env)
	if ready >= 3 {
		_, _ = unix.Write(ready, []byte("E"+err.Error()))
	}
	return code, err
}

func serve(cfg *Config, argv, env []string) (int, error) {
	runtime.LockOSThread()
	var plan *execsrv.LandlockPlan
	if cfg.Landlock != nil && !cfg.Landlock.Empty() {
		if abi := landlock.ABI(); abi < cfg.MinLandlockABI {
			return exitCannotRun, fmt.Errorf("landlock: the kernel offers ABI %d, the policy was accepted for ABI %d", abi, cfg.MinLandlockABI)
		}
		var err error
		if plan, err = execsrv.PlanFor(cfg.Landlock); err != nil {
			return exitCannotRun, err
		}
	}
	if cfg.AgentSeccomp != nil {
		if err := seccomp.InstallAgent(*cfg.AgentSeccomp); err != nil {
			return exitCannotRun, err
		}
	}
	if err := seccomp.Install(cfg.Seccomp...); err != nil {
		return exitCannotRun, err
	}
	args := append([]string{"mxc-runtime"}, argv...)
	if plan != nil {
		// The children apply Landlock under the filters just installed.
		if err := landlockAllowed(); err != nil {
			return exitCannotRun, err
		}
		data, err := plan.Encode()
		if err != nil {
			return exitCannotRun, err
		}
		f, err := execsrv.Memfd("mxc-exec-landlock", data)
		if err != nil {
			return exitCannotRun, err
		}
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
			return exitCannotRun, err
		}
		args = append(args, "--landlock-fd", strconv.Itoa(int(f.Fd())))
	}
	// /proc/self/exe is the sealed clone of mxc-runtime this step runs
	// from (see FixupInitFDs); no Landlock domain yet, so it may be exec'd.
	err := syscall.Exec("/proc/self/exe", args, env)
	return exitCannotRun, fmt.Errorf("exec the exec server: %w", err)
}

// landlockAllowed checks that the seccomp filters on this thread let the
// Landlock syscalls through (a spec profile may deny them: docker 20.10's
// default does). Calls with an invalid fd reach the kernel's fd lookup
// (EBADF) only if no filter refused them first.
func landlockAllowed() error {
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION); e != 0 {
		return fmt.Errorf("the container's seccomp filters deny landlock_create_ruleset (%v): no exec fast path", e)
	}
	bad := ^uintptr(0) // fd -1
	if _, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, bad, unix.LANDLOCK_RULE_PATH_BENEATH, 0, 0, 0, 0); e != unix.EBADF {
		return fmt.Errorf("the container's seccomp filters deny landlock_add_rule (%v): no exec fast path", e)
	}
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, bad, 0, 0); e != unix.EBADF {
		return fmt.Errorf("the container's seccomp filters deny landlock_restrict_self (%v): no exec fast path", e)
	}
	return nil
}
