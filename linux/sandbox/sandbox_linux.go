//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"mxc.dev/mxc/linux/agentexec"
	"mxc.dev/mxc/linux/netlo"
	"mxc.dev/mxc/spec"
)

// StageVerb is the hidden verb of the child a non-root sandbox starts.
const StageVerb = "sandbox-stage"

// Exit statuses of the sandbox itself (the command's own pass through).
const (
	ExitSetup = 125 // the sandbox could not be set up
)

// Run runs args under pl. As root it does not return on success: the
// command replaces the calling process. Otherwise it returns the child's
// exit status (or, when a signal killed the child, re-raises it).
func Run(pl *Plan, args, env []string) (int, error) {
	if len(args) == 0 {
		return ExitSetup, errors.New("no command")
	}
	if pl.Egress {
		return runNetworked(pl, args, env)
	}
	if os.Geteuid() != 0 {
		return runInUserNS(pl, args, env)
	}
	runtime.LockOSThread()
	flags := unix.CLONE_NEWNS
	if !pl.HostNet {
		flags |= unix.CLONE_NEWNET
	}
	if err := unix.Unshare(flags); err != nil {
		return ExitSetup, fmt.Errorf("unshare mount/network namespaces: %w", err)
	}
	return confineAndExec(pl, args, env)
}

// confineAndExec runs on a thread that is already in its own mount (and
// network) namespace, with the capabilities to set them up.
func confineAndExec(pl *Plan, args, env []string) (int, error) {
	cwd, _ := os.Getwd()
	if err := setupMounts(pl); err != nil {
		return ExitSetup, err
	}
	if !pl.HostNet {
		if err := netlo.Up(); err != nil {
			return ExitSetup, err
		}
	}
	if cwd != "" {
		// Land on the new mounts (a read-write bind over the cwd).
		_ = unix.Chdir(cwd)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return ExitSetup, fmt.Errorf("no_new_privs: %w", err)
	}
	if err := boundCaps(pl.Caps); err != nil {
		return ExitSetup, err
	}
	return agentexec.Exec(&pl.Agent, args, env)
}

// setupMounts makes the host's view read-only except the read-write
// paths, and masks the denied ones. It runs in a private mount namespace
// whose mounts are first made slaves, so nothing propagates to the host.
func setupMounts(pl *Plan) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// Clone the read-write trees before everything becomes read-only: a
	// clone keeps each mount's own flags, so a path the host itself
	// mounts read-only stays so.
	type tree struct {
		path string
		fd   int
	}
	var trees []tree
	defer func() {
		for _, t := range trees {
			unix.Close(t.fd)
		}
	}()
	for _, p := range pl.ReadWrite {
		fd, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if errors.Is(err, unix.ENOENT) {
			continue // nothing there to grant
		}
		if err != nil {
			return &os.PathError{Op: "readwritePaths: open_tree", Path: p, Err: err}
		}
		trees = append(trees, tree{p, fd})
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("make the host's view read-only: %w", err)
	}
	for _, t := range trees {
		if err := unix.MoveMount(t.fd, "", unix.AT_FDCWD, t.path, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return &os.PathError{Op: "readwritePaths: move_mount", Path: t.path, Err: err}
		}
	}
	files, dirs := classifyDenied(pl.Denied)
	for _, f := range files {
		if err := unix.Mount("/dev/null", f, "", unix.MS_BIND, ""); err != nil {
			return &os.PathError{Op: "deniedPaths: mask", Path: f, Err: err}
		}
		// nodev: opening the mask fails with EACCES, root included.
		if err := unix.Mount("", f, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, ""); err != nil {
			return &os.PathError{Op: "deniedPaths: mask read-only", Path: f, Err: err}
		}
	}
	for _, d := range dirs {
		if err := unix.Mount("tmpfs", d, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=0755"); err != nil {
			return &os.PathError{Op: "deniedPaths: mask", Path: d, Err: err}
		}
	}
	return nil
}

// boundCaps keeps at most allowed on the calling thread: the bounding set
// (what root regains at exec), the ambient set, and the current sets.
func boundCaps(allowed []string) error {
	keep := map[string]bool{}
	for _, c := range allowed {
		keep[strings.ToUpper(c)] = true
	}
	var mask [2]uint32
	for name := range keep {
		if i := spec.CapabilityNumber(name); i >= 0 {
			mask[i/32] |= 1 << (i % 32)
		}
	}
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &last)
	}
	for i := 0; i <= last; i++ {
		if keep[spec.CapabilityName(i)] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop capability %d from the bounding set: %w", i, err)
		}
	}
	_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	for i := range data {
		data[i].Effective &= mask[i]
		data[i].Permitted &= mask[i]
		data[i].Inheritable &= mask[i]
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// runInUserNS starts the stage child in new user, mount (and network)
// namespaces, mapped to the caller's own uid and gid, with the
// capabilities it needs to set them up, and passes its exit through.
func runInUserNS(pl *Plan, args, env []string) (int, error) {
	data, err := json.Marshal(pl)
	if err != nil {
		return ExitSetup, err
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return ExitSetup, err
	}
	defer rd.Close()
	cmd := stageCommand(rd, args, env)
	flags := uintptr(unix.CLONE_NEWUSER | unix.CLONE_NEWNS)
	if !pl.HostNet {
		flags |= unix.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  flags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}},
		// Capabilities in the new user namespace only, kept across the
		// exec into the stage; it drops them before the command's exec.
		AmbientCaps: []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN, unix.CAP_SETPCAP},
	}
	return supervise(cmd, wr, data, cmd.Start, nil, "start the sandbox (user namespaces may be disabled for unprivileged users)")
}

// stageCommand is the stage child reading its plan from rd (fd 3).
func stageCommand(rd *os.File, args, env []string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", append([]string{StageVerb, "--plan-fd", "3", "--"}, args...)...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{rd}
	return cmd
}

// supervise starts the stage child (through start), sends it the plan,
// forwards signals and passes its exit through. cleanup, if set, runs
// once the child is gone, before a fatal signal is re-raised.
func supervise(cmd *exec.Cmd, wr *os.File, data []byte, start func() error, cleanup func(), what string) (int, error) {
	// Terminal signals reach the child through its process group; the
	// others are forwarded.
	signal.Ignore(unix.SIGINT, unix.SIGQUIT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGCONT)
	defer signal.Stop(sigs)
	// The command goes with its supervisor: an agent that SIGKILLs a tool
	// call it timed out must not leave the tool running, as it would not
	// without a supervisor (the plain sandbox execs the command itself).
	// Its own children are its business, as without a sandbox.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = unix.SIGKILL
	if err := start(); err != nil {
		wr.Close()
		return ExitSetup, fmt.Errorf("%s: %w", what, err)
	}
	_, werr := wr.Write(data)
	wr.Close()
	if werr != nil {
		_ = cmd.Process.Kill()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case <-done:
			if cleanup != nil {
				cleanup()
			}
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				signal.Reset(ws.Signal())
				_ = unix.Kill(os.Getpid(), ws.Signal())
				return 128 + int(ws.Signal()), nil
			}
			return ws.ExitStatus(), nil
		}
	}
}

// StageMain is the non-root child: `sandbox-stage --plan-fd N -- ARGS`.
// It never returns.
func StageMain(args []string) {
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "mxc-runtime sandbox: %v\n", err)
		os.Exit(ExitSetup)
	}
	if len(args) < 4 || args[0] != "--plan-fd" || args[2] != "--" {
		fail(errors.New("usage: sandbox-stage --plan-fd N -- CMD [ARGS...]"))
	}
	var fd int
	if _, err := fmt.Sscanf(args[1], "%d", &fd); err != nil {
		fail(err)
	}
	f := os.NewFile(uintptr(fd), "plan")
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		fail(err)
	}
	var pl Plan
	if err := json.Unmarshal(data, &pl); err != nil {
		fail(err)
	}
	runtime.LockOSThread()
	code, err := confineAndExec(&pl, args[3:], os.Environ())
	fmt.Fprintf(os.Stderr, "mxc-runtime sandbox: %v\n", err)
	os.Exit(code)
}
