//go:build linux

package agentexec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/landlock"
	"mxc.dev/mxc/linux/seccomp"
)

// Exit statuses of the last step, as a shell would use them.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)

// Main is `mxc-runtime agent-exec --config-fd N [--server] -- ARGS...`.
// It never returns: it execs ARGS or exits 126/127 with a message on
// stderr. With --server, ARGS are the exec server's (see Serve).
func Main(args []string) {
	fd, server, argv, err := ParseArgs(args)
	if err != nil {
		fail(exitCannotRun, err)
	}
	f := os.NewFile(uintptr(fd), ConfigMemfdName)
	data, err := io.ReadAll(io.LimitReader(f, 16<<20))
	f.Close()
	if err != nil {
		fail(exitCannotRun, fmt.Errorf("read config: %w", err))
	}
	cfg, err := decodeConfig(data)
	if err != nil {
		fail(exitCannotRun, fmt.Errorf("parse config: %w", err))
	}
	if !server && cStepRequired(data) {
		fail(exitCannotRun, errors.New("the C last step was required (MXC_AGENT_EXEC=require) but did not run"))
	}
	if server {
		code, err := Serve(cfg, argv, os.Environ())
		fail(code, err)
	}
	code, err := Exec(cfg, argv, os.Environ())
	fail(code, err)
}

// ParseArgs parses the step's arguments (after the verb): the config fd,
// --server, and the command after "--". The C step (package fastexec)
// parses them the same way; its test compares the two.
func ParseArgs(args []string) (fd int, server bool, argv []string, err error) {
	fd = -1
	for len(args) > 0 {
		switch a := args[0]; a {
		case "--config-fd":
			if len(args) < 2 {
				return 0, false, nil, errors.New("--config-fd needs a value")
			}
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 3 {
				return 0, false, nil, fmt.Errorf("--config-fd %q: not an fd number", args[1])
			}
			fd, args = n, args[2:]
		case "--server":
			server, args = true, args[1:]
		case "--":
			args = args[1:]
			if fd < 0 {
				return 0, false, nil, errors.New("--config-fd is required")
			}
			if len(args) == 0 {
				return 0, false, nil, errors.New("no command after --")
			}
			return fd, server, args, nil
		default:
			return 0, false, nil, fmt.Errorf("unknown argument %q", a)
		}
	}
	return 0, false, nil, errors.New("missing -- before the command")
}

func fail(code int, err error) {
	fmt.Fprintf(os.Stderr, "mxc-runtime %s: %v\n", Verb, err)
	os.Exit(code)
}

// Exec applies cfg to the calling thread and execs argv with env. It only
// returns on failure, with the exit status to use. The caller must not
// have other work in flight: the thread is locked for good.
func Exec(cfg *Config, argv, env []string) (int, error) {
	runtime.LockOSThread()
	if cfg.Landlock != nil && !cfg.Landlock.Empty() {
		if abi := landlock.ABI(); abi < cfg.MinLandlockABI {
			return exitCannotRun, fmt.Errorf("landlock: the kernel offers ABI %d, the policy was accepted for ABI %d", abi, cfg.MinLandlockABI)
		}
		if _, err := cfg.Landlock.Apply(); err != nil {
			return exitCannotRun, err
		}
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return exitNotFound, err
	}
	if cfg.AgentSeccomp != nil {
		if err := seccomp.InstallAgent(*cfg.AgentSeccomp); err != nil {
			return exitCannotRun, err
		}
	}
	if err := seccomp.Install(cfg.Seccomp...); err != nil {
		return exitCannotRun, err
	}
	err = syscall.Exec(path, argv, env)
	code := exitCannotRun
	if errors.Is(err, unix.ENOENT) {
		code = exitNotFound
	}
	if errors.Is(err, unix.EACCES) && cfg.Landlock != nil && cfg.Landlock.HandleFS {
		// The usual cause under a policy: the binary sits outside every
		// listed path. Say so, or the agent's author hunts file modes.
		return code, fmt.Errorf("exec %s: %w (%s)", argv[0], err, policyExecHint(path))
	}
	return code, fmt.Errorf("exec %s: %w", argv[0], err)
}

// policyExecHint is the advice added to an exec refused under a policy's
// filesystem rules; fastexec's C last step prints the same words.
func policyExecHint(path string) string {
	return "under the agent policy's filesystem rules, the agent must be able to read " + path + " and, for a dynamic binary or a script, its loader, libraries or interpreter: list them, or directories above them, in readonlyPaths"
}

// lookPath resolves a command name with the PATH of env (the process's
// environment, which is what the agent asked for), like execvp.
func lookPath(name string, env []string) (string, error) {
	for i := len(env) - 1; i >= 0; i-- {
		if len(env[i]) >= 5 && env[i][:5] == "PATH=" {
			old := os.Getenv("PATH")
			os.Setenv("PATH", env[i][5:])
			p, err := exec.LookPath(name)
			os.Setenv("PATH", old)
			if errors.Is(err, exec.ErrDot) {
				return p, nil
			}
			return p, err
		}
	}
	p, err := exec.LookPath(name)
	if errors.Is(err, exec.ErrDot) {
		return p, nil
	}
	return p, err
}
