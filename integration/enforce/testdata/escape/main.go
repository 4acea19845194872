// Command escape is the escape battery's probe: a static program copied
// into the test containers. Each subcommand makes one attempt and prints
// one line: "OK <detail>" when the attempt succeeded (exit 0), "DENIED
// <error>" when the kernel refused it (exit 1). Usage errors exit 2.
//
// It is built with CGO_ENABLED=0 at test time (see battery_test.go).
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func ok(format string, a ...any) {
	fmt.Printf("OK "+format+"\n", a...)
	os.Exit(0)
}

func denied(err error) {
	fmt.Printf("DENIED %v\n", err)
	os.Exit(1)
}

func check(err error, format string, a ...any) {
	if err != nil {
		denied(err)
	}
	ok(format, a...)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: escape ATTEMPT [ARGS]")
	os.Exit(2)
}

// inheritedFDs are the fds open when the program started, before the Go
// runtime opened any of its own (the netpoller is created lazily).
var inheritedFDs []string

func init() {
	for fd := 0; fd < 1024; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			inheritedFDs = append(inheritedFDs, strconv.Itoa(fd))
		}
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	args := os.Args[2:]
	arg := func(i int) string {
		if i >= len(args) {
			usage()
		}
		return args[i]
	}
	switch os.Args[1] {
	case "noop":
		ok("noop")
	case "status":
		status()
	case "read":
		b, err := os.ReadFile(arg(0))
		check(err, "%q", strings.TrimSpace(string(b)))
	case "write":
		check(os.WriteFile(arg(0), []byte("pwned\n"), 0o644), "wrote %s", arg(0))
	case "truncate":
		check(unix.Truncate(arg(0), 0), "truncated %s", arg(0))
	case "symlink-read":
		// symlink-read TARGET LINK: make LINK -> TARGET, read through it.
		if err := os.Symlink(arg(0), arg(1)); err != nil {
			denied(err)
		}
		b, err := os.ReadFile(arg(1))
		check(err, "%q", strings.TrimSpace(string(b)))
	case "hardlink-read":
		if err := os.Link(arg(0), arg(1)); err != nil {
			denied(err)
		}
		b, err := os.ReadFile(arg(1))
		check(err, "%q", strings.TrimSpace(string(b)))
	case "cwd-read":
		// cwd-read DIR FILE: a child sits in DIR; read /proc/<child>/cwd/FILE.
		cmd := exec.Command("/bin/sleep", "30")
		cmd.Dir = arg(0)
		if err := cmd.Start(); err != nil {
			denied(err)
		}
		defer cmd.Process.Kill()
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cwd/%s", cmd.Process.Pid, arg(1)))
		cmd.Process.Kill()
		cmd.Wait()
		check(err, "%q", strings.TrimSpace(string(b)))
	case "bind-read":
		// bind-read SRC DST: bind-mount SRC on DST, then read DST.
		if err := os.WriteFile(arg(1), nil, 0o644); err != nil && !errors.Is(err, os.ErrExist) {
			denied(err)
		}
		if err := unix.Mount(arg(0), arg(1), "", unix.MS_BIND, ""); err != nil {
			denied(err)
		}
		b, err := os.ReadFile(arg(1))
		check(err, "%q", strings.TrimSpace(string(b)))
	case "overlay-read":
		// overlay-read LOWER DIR FILE: overlay LOWER on DIR, read DIR/FILE.
		os.MkdirAll(arg(1), 0o755)
		if err := unix.Mount("overlay", arg(1), "overlay", 0, "lowerdir="+arg(0)+":/tmp"); err != nil {
			denied(err)
		}
		b, err := os.ReadFile(arg(1) + "/" + arg(2))
		check(err, "%q", strings.TrimSpace(string(b)))
	case "fsopen":
		fd, err := unix.Fsopen("tmpfs", 0)
		if err == nil {
			unix.Close(fd)
		}
		check(err, "fsopen tmpfs")
	case "mount":
		os.MkdirAll(arg(0), 0o755)
		check(unix.Mount("tmpfs", arg(0), "tmpfs", 0, ""), "mounted tmpfs on %s", arg(0))
	case "mkdir":
		check(os.MkdirAll(arg(0), 0o755), "made %s", arg(0))
	case "pivot-root":
		os.MkdirAll("/tmp/newroot/old", 0o755)
		check(unix.PivotRoot("/tmp/newroot", "/tmp/newroot/old"), "pivot_root")
	case "chdir":
		check(unix.Chdir(arg(0)), "chdir %s", arg(0))
	case "userns":
		// A new user namespace would give the process every capability in
		// it; prove it by mounting there.
		cmd := exec.Command("/proc/self/exe", "mount", "/tmp/userns-mnt")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}}
		out, err := cmd.CombinedOutput()
		if err != nil && len(out) == 0 {
			denied(err)
		}
		if err != nil {
			denied(fmt.Errorf("%s", strings.TrimSpace(string(out))))
		}
		ok("in a new user namespace: %s", strings.TrimSpace(string(out)))
	case "unshare-user":
		check(unix.Unshare(unix.CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
	case "child":
		cmd := exec.Command("/bin/true")
		check(cmd.Run(), "ran a child")
	case "ptrace":
		pid, _ := strconv.Atoi(arg(0))
		ptraceAttach(pid)
	case "ptrace-child":
		cmd := exec.Command("/bin/sleep", "30")
		if err := cmd.Start(); err != nil {
			denied(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		ptraceAttach(cmd.Process.Pid)
	case "keyctl":
		_, err := unix.KeyctlJoinSessionKeyring("mxc-escape")
		check(err, "joined a new session keyring")
	case "add-key":
		_, err := unix.AddKey("user", "mxc-escape", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
		check(err, "added a key")
	case "bpf":
		attr := struct {
			mapType, keySize, valueSize, maxEntries, flags uint32
		}{1 /* BPF_MAP_TYPE_HASH */, 4, 4, 1, 0}
		fd, _, e := unix.Syscall(unix.SYS_BPF, 0 /* BPF_MAP_CREATE */, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		if e != 0 {
			denied(e)
		}
		unix.Close(int(fd))
		ok("bpf map created")
	case "io-uring":
		params := make([]byte, 120)
		fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&params[0])), 0)
		if e != 0 {
			denied(e)
		}
		unix.Close(int(fd))
		ok("io_uring set up")
	case "perf":
		attr := make([]byte, 128)
		*(*uint32)(unsafe.Pointer(&attr[4])) = 128 // size
		fd, _, e := unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&attr[0])), 0, ^uintptr(0), ^uintptr(0), 0, 0)
		if e != 0 {
			denied(e)
		}
		unix.Close(int(fd))
		ok("perf event opened")
	case "raw-socket":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err == nil {
			unix.Close(fd)
		}
		check(err, "raw socket")
	case "packet-socket":
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0x0300)
		if err == nil {
			unix.Close(fd)
		}
		check(err, "packet socket")
	case "udp-socket":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err == nil {
			unix.Close(fd)
		}
		check(err, "udp socket")
	case "abstract-connect":
		c, err := net.DialTimeout("unix", "@"+arg(0), 2*time.Second)
		if err != nil {
			denied(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Close()
		ok("connected, read %q", string(buf[:n]))
	case "abstract-self":
		// Listen on an abstract socket and connect to it from a child: the
		// agent's own sockets stay usable.
		l, err := net.Listen("unix", "@"+arg(0))
		if err != nil {
			denied(err)
		}
		go func() {
			c, err := l.Accept()
			if err == nil {
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		out, err := exec.Command("/proc/self/exe", "abstract-connect", arg(0)).CombinedOutput()
		if err != nil {
			denied(fmt.Errorf("%s", strings.TrimSpace(string(out))))
		}
		ok("%s", strings.TrimSpace(string(out)))
	case "kill":
		pid, _ := strconv.Atoi(arg(0))
		check(unix.Kill(pid, unix.SIGTERM), "signalled %d", pid)
	case "kill-child":
		cmd := exec.Command("/bin/sleep", "30")
		if err := cmd.Start(); err != nil {
			denied(err)
		}
		err := cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
		check(err, "signalled own child")
	case "forkbomb":
		forkbomb(arg(0))
	case "mem":
		mb, _ := strconv.Atoi(arg(0))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		ok("touched %d MiB", len(keep))
	default:
		usage()
	}
}

func ptraceAttach(pid int) {
	err := unix.PtraceAttach(pid)
	if err != nil {
		denied(err)
	}
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, unix.WALL, nil)
	unix.PtraceDetach(pid)
	ok("attached to %d", pid)
}

// status prints what the kernel enforces on this process.
func status() {
	b, _ := os.ReadFile("/proc/self/status")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, k := range []string{"NoNewPrivs:", "Seccomp:", "Seccomp_filters:", "CapEff:", "CapBnd:"} {
			if strings.HasPrefix(l, k) {
				out = append(out, strings.Join(strings.Fields(l), ""))
			}
		}
	}
	// Landlock: a fresh ruleset's restrict_self succeeds both inside and
	// outside a domain, so test the effect instead: is an unlisted path
	// writable? (The caller chooses the path.)
	out = append(out, "fds="+strings.Join(inheritedFDs, ","))
	ok("%s", strings.Join(out, " "))
}

// forkbomb starts up to N sleeping children (stdio on /dev/null) and
// reports whether something stopped it. Idle threads are made first, so
// that the Go runtime finds one when a fork blocks and does not need to
// create a thread after the pids limit is reached.
func forkbomb(nStr string) {
	n, _ := strconv.Atoi(nStr)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			time.Sleep(10 * time.Millisecond)
			wg.Done()
			runtime.UnlockOSThread()
		}()
	}
	wg.Wait()
	devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	attr := &syscall.ProcAttr{Files: []uintptr{devnull.Fd(), devnull.Fd(), devnull.Fd()}}
	var pids []int
	var stop error
	for len(pids) < n {
		pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "120"}, attr)
		if err != nil {
			stop = err
			break
		}
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for range pids {
		var ws syscall.WaitStatus
		syscall.Wait4(-1, &ws, 0, nil)
	}
	if stop != nil {
		denied(fmt.Errorf("stopped after %d children: %w", len(pids), stop))
	}
	ok("started %d children", len(pids))
}
