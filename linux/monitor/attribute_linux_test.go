package monitor

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// goneProcess returns the pid of a process that has exited and been
// reaped: /proc has nothing of it.
func goneProcess(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

// attribute: a denial is the container's by the mount namespace of its
// process, else of its parent, else when the parent is the host's
// `mxc-runtime exec` of this container (root and id on its command line);
// anything else is dropped, never given to a container.
func TestAttribute(t *testing.T) {
	self := os.Getpid()
	myNS := nsInode(self, "mnt")
	if myNS == 0 {
		t.Skip("no /proc/self/ns/mnt")
	}
	// A parent whose command line is an `exec` of container cid under
	// --root /run/x (sh keeps its arguments in its cmdline; the ":" keeps a
	// shell that would exec its last command from doing so).
	// Its own process group, so that the cleanup ends the shell's sleep too.
	parent := exec.Command("sh", "-c", "sleep 30; :", "mxc-runtime", "--root", "/run/x", "exec", "cid", "escape")
	parent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-parent.Process.Pid, syscall.SIGKILL)
		_ = parent.Wait()
	})
	gone := goneProcess(t)
	m := Config{ID: "cid", Root: "/run/x"}
	for _, tc := range []struct {
		name        string
		d           fsDenial
		mntNS       uint64
		m           Config
		ours, known bool
	}{
		{"live process in the container's namespace", fsDenial{Pid: self}, myNS, m, true, true},
		{"live process elsewhere", fsDenial{Pid: self}, myNS + 1, m, false, true},
		{"gone process, parent in the namespace", fsDenial{Pid: gone, PPid: self}, myNS, m, true, true},
		{"gone process, parent is this container's exec", fsDenial{Pid: gone, PPid: parent.Process.Pid}, myNS + 1, m, true, true},
		{"gone process, parent is another container's exec", fsDenial{Pid: gone, PPid: parent.Process.Pid}, myNS + 1, Config{ID: "other", Root: "/run/x"}, false, false},
		{"gone process, parent is an exec under another root", fsDenial{Pid: gone, PPid: parent.Process.Pid}, myNS + 1, Config{ID: "cid", Root: "/run/mxc"}, false, false},
		{"gone process and parent", fsDenial{Pid: gone, PPid: gone}, myNS, m, false, false},
		{"gone process, no parent recorded", fsDenial{Pid: gone}, myNS, m, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ours, known := attribute(tc.d, tc.mntNS, tc.m)
			if ours != tc.ours || known != tc.known {
				t.Fatalf("attribute = (%v, %v), want (%v, %v)", ours, known, tc.ours, tc.known)
			}
		})
	}
}
