//go:build linux

// cgo, as libcontainer, which this package drives, needs it anyway.

package enforce

/*
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// The child only waits to be killed, with every signal blocked: it runs on
// its own stack in the caller's memory and must touch nothing of it (raw
// system calls that succeed: no errno, which is the caller's thread's). It
// dies with the thread that cloned it, so a runtime killed before it kills
// the child leaves nothing.
static int mxc_userns_child(void *arg)
{
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (syscall(SYS_getppid) != (long)(intptr_t)arg)
		syscall(SYS_exit, 0);
	for (;;)
		syscall(SYS_pause);
	return 0;
}

// mxc_userns_spawn starts that child in a new user namespace and returns
// its pid, or -errno. CLONE_VM: no copy of the caller's address space
// (a fork of the runtime copies its page tables: ~1 ms of CPU, perf), and
// no exec.
static int mxc_userns_spawn(void *stack_top)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int pid = clone(mxc_userns_child, stack_top, CLONE_VM | CLONE_NEWUSER | SIGCHLD, (void *)(intptr_t)getpid());
	int e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -e : pid;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// usernsStack is the helper's stack: it makes no calls beyond pause.
const usernsStack = 64 << 10

// usernsFD returns an fd of a user namespace with r's mapping: a child
// that shares the runtime's memory (nothing copied, nothing exec'd) is
// cloned into a new user namespace, its maps are written, its namespace
// opened, and it is killed. MXC_USERNS_HELPER=exec takes the old way (a
// ptrace-stopped exec, libcontainer's approach).
func usernsFD(r idRange) (int, error) {
	if os.Getenv("MXC_USERNS_HELPER") == "exec" {
		return usernsFDExec(r)
	}
	stack := C.malloc(usernsStack)
	if stack == nil {
		return -1, errors.New("id-mapped rootfs: user namespace helper: no memory for its stack")
	}
	defer C.free(stack)
	pid := int(C.mxc_userns_spawn(unsafe.Add(stack, usernsStack)))
	if pid < 0 {
		return -1, fmt.Errorf("id-mapped rootfs: user namespace helper: clone: %w", unix.Errno(-pid))
	}
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		for {
			_, err := unix.Wait4(pid, nil, 0, nil)
			if !errors.Is(err, unix.EINTR) {
				break // reaped, or by another waiter (ECHILD)
			}
		}
	}()
	m := []byte(fmt.Sprintf("0 %d %d\n", r.Base, r.Size))
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	for _, f := range []struct {
		name string
		data []byte
	}{{"uid_map", m}, {"setgroups", []byte("deny")}, {"gid_map", m}} {
		if err := os.WriteFile(proc+f.name, f.data, 0); err != nil {
			return -1, fmt.Errorf("id-mapped rootfs: user namespace helper: %w", err)
		}
	}
	fd, err := unix.Open(proc+"ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("id-mapped rootfs: open user namespace: %w", err)
	}
	return fd, nil
}
