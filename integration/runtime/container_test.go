//go:build linux

package runtime_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	h "mxc.dev/mxc/integration/harness"
)

// TestContainerConfiguration checks what config.json asks for is what the
// container gets: namespaces, mounts, devices, masked and read-only paths,
// rlimits, capabilities, user and groups, env and cwd, hostname, cgroups.
func TestContainerConfiguration(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t)
	s := b.Spec
	s.Hostname = "agent-box"
	s.Process.Env = append(s.Process.Env, "MXC_TEST=yes")
	s.Process.Cwd = "/home/agent"
	s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{65534}}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 256, Soft: 128}}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_KILL"}}
	s.Process.NoNewPrivileges = true
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1777"}})
	s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/etc/hostname")
	s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/workspace")
	mem, pids, quota, period := int64(32<<20), int64(64), int64(50000), uint64(100000)
	s.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		Pids:   &specs.LinuxPids{Limit: &pids},
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period},
	}
	s.Process.Args = []string{"sh", "-c", strings.Join([]string{
		`echo host=$(hostname)`,
		`echo env=$MXC_TEST`,
		`echo cwd=$(pwd)`,
		`echo id=$(id -u):$(id -g):$(id -G)`,
		`echo nofile=$(ulimit -n)`,
		`echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)`,
		`echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)`,
		`echo pid1=$(cat /proc/1/comm)`,
		`echo masked=$(cat /etc/hostname | wc -c)`,
		`touch /workspace/x 2>/dev/null && echo ro=no || echo ro=yes`,
		`touch /scratch/x && echo tmpfs=ok`,
		`test -c /dev/null && test -c /dev/urandom && echo devices=ok`,
		`test -e /dev/kmsg && echo kmsg=present || echo kmsg=absent`,
	}, "; ")}
	b.Save(t)
	res := rt.Run("run", "--bundle", b.Dir, "cfg")
	if res.Err != nil {
		t.Fatalf("run: %v %s", res.Err, res.Stderr)
	}
	want := map[string]string{
		"host": "agent-box", "env": "yes", "cwd": "/home/agent", "id": "1000:1000:1000 65534",
		"nofile": "128", "capbnd": fmt.Sprintf("%016x", 1<<unix.CAP_CHOWN|1<<unix.CAP_KILL), "nnp": "1",
		"pid1": "sh", "masked": "0", "ro": "yes", "tmpfs": "ok", "devices": "ok", "kmsg": "absent",
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestCgroupLimitsApplied(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	mem, pids, quota, period, shares := int64(48<<20), int64(33), int64(20000), uint64(100000), uint64(512)
	b.Spec.Linux.Resources = &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		Pids:   &specs.LinuxPids{Limit: &pids},
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares},
	}
	b.Save(t)
	rt.MustRun("run", "-d", "--bundle", b.Dir, "cg")
	checks := map[string]string{
		"memory/memory.limit_in_bytes": strconv.FormatInt(mem, 10),
		"pids/pids.max":                "33",
		"cpu/cpu.cfs_quota_us":         "20000",
		"cpu/cpu.cfs_period_us":        "100000",
		"cpu/cpu.shares":               "512",
	}
	for file, want := range checks {
		ctrl, name, _ := strings.Cut(file, "/")
		if got := readTrim(t, filepath.Join(cgroupDir(t, ctrl, b), name)); got != want {
			t.Errorf("%s = %s, want %s", file, got, want)
		}
	}
	// The pids limit holds: of 40 background sleeps, not all start.
	rt.Run("exec", "cg", "sh", "-c", "for i in $(seq 40); do sleep 100 >/dev/null 2>&1 & done 2>/dev/null; true")
	n, _ := strconv.Atoi(readTrim(t, filepath.Join(cgroupDir(t, "pids", b), "pids.current")))
	if n < 20 || n > 33 {
		t.Fatalf("pids.current %d after a burst of 40 (limit 33)", n)
	}
}

func TestHooksRunInOrder(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "true")
	log := filepath.Join(t.TempDir(), "hooks.log")
	hook := func(name string) specs.Hook {
		// Hooks get the state on stdin; record the name and the status.
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", fmt.Sprintf(`st=$(cat | grep -o '"status":"[a-z]*"'); echo %s $st >> %s`, name, log)}}
	}
	b.Spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{hook("prestart")}, //nolint:staticcheck // still part of runtime-spec; runc runs it
		CreateRuntime:   []specs.Hook{hook("createRuntime")},
		CreateContainer: []specs.Hook{{Path: "/bin/true"}}, // runs in the container's namespaces, where the log path does not exist
		StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer > /tmp/start-hook"}}},
		Poststart:       []specs.Hook{hook("poststart")},
		Poststop:        []specs.Hook{hook("poststop")},
	}
	b.Save(t)
	rt.MustRun("run", "--bundle", b.Dir, "hooks")
	data, _ := os.ReadFile(log)
	got := strings.Fields(string(data))
	var names []string
	for _, f := range got {
		if !strings.HasPrefix(f, `"status"`) {
			names = append(names, f)
		}
	}
	if strings.Join(names, ",") != "prestart,createRuntime,poststart,poststop" {
		t.Fatalf("hooks ran as %q", data)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "rootfs/tmp/start-hook")); err != nil {
		t.Fatalf("startContainer hook did not run in the container: %v", err)
	}
}

// TestForceDeleteRunsPoststopHooks: `delete --force` of a running container
// whose init cannot finish its exit at once (a detached exec's process,
// joined from outside the pid namespace, must first be reaped by the host's
// init) still runs the poststop hooks and removes everything, as runc does.
func TestForceDeleteRunsPoststopHooks(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sleep", "1000")
	log := filepath.Join(t.TempDir(), "poststop.log")
	b.Spec.Hooks = &specs.Hooks{
		Poststop: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", fmt.Sprintf(`cat | grep -o '"status":"[a-z]*"' >> %s`, log)}}},
	}
	b.Save(t)
	rt.MustRun("run", "--detach", "--bundle", b.Dir, "force-hooks")
	pids := cgroupDir(t, "pids", b)
	rt.MustRun("exec", "--detach", "force-hooks", "sleep", "1000")
	// The exec'd process moves to a sub-cgroup, as one a container makes
	// for itself: its cgroups must go too.
	procs := strings.Fields(readTrim(t, filepath.Join(pids, "cgroup.procs")))
	if len(procs) != 2 {
		t.Fatalf("pids cgroup lists %v, want the init and the exec", procs)
	}
	sub := filepath.Join(pids, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(sub) })
	if err := os.WriteFile(filepath.Join(sub, "cgroup.procs"), []byte(procs[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	res := rt.MustRun("delete", "--force", "force-hooks")
	if strings.Contains(res.Stderr, "level=warning") {
		t.Errorf("delete --force warned: %s", res.Stderr)
	}
	data, _ := os.ReadFile(log)
	if got := strings.TrimSpace(string(data)); got != `"status":"stopped"` {
		t.Fatalf("poststop hook ran with %q, want one run with status stopped", data)
	}
	if _, err := os.Stat(pids); err == nil {
		t.Errorf("cgroup left behind: %s", pids)
	}
	if _, err := os.Stat(filepath.Join(rt.Root, "force-hooks")); err == nil {
		t.Error("state dir left behind")
	}
}

// TestHookAskingForStateDoesNotHang: an OCI hook that create runs asks the
// runtime for the container's state. The container is not created yet
// (runc says so too), and `state` must answer that rather than wait for
// the create that is waiting for the hook.
func TestHookAskingForStateDoesNotHang(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "true")
	out := filepath.Join(t.TempDir(), "state.out")
	b.Spec.Hooks = &specs.Hooks{
		CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
			fmt.Sprintf("%s --root %s state hook-state > %s 2>&1; echo rc=$? >> %s", rt.Bin, rt.Root, out, out)}}},
	}
	b.Save(t)
	start := time.Now()
	rt.MustRun("run", "--bundle", b.Dir, "hook-state")
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("run took %s", d)
	}
	data, _ := os.ReadFile(out)
	if !strings.Contains(string(data), "rc=1") {
		t.Errorf("state from the createRuntime hook: %q, want an error (not created yet)", data)
	}
}

func TestSeccompProfileFromSpec(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sh", "-c", "mkdir /tmp/d 2>&1; echo rc=$?")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	}
	b.Save(t)
	res := rt.Run("run", "--bundle", b.Dir, "sc")
	if !strings.Contains(res.Stdout, "rc=1") || !strings.Contains(res.Stdout, "not permitted") {
		t.Fatalf("mkdir under a seccomp profile that denies it: %q %q", res.Stdout, res.Stderr)
	}
}

// TestTerminalThroughConsoleSocket is what containerd and podman do for
// `-t`: mxc-runtime sends the pty master over --console-socket.
func TestTerminalThroughConsoleSocket(t *testing.T) {
	rt := h.NewRuntime(t)
	b := h.NewBundle(t, "sh", "-c", "tty; echo term-ok; sleep 0.2")
	b.Spec.Process.Terminal = true
	b.Save(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 4096), make([]byte, 4096)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- "recvmsg: " + err.Error()
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, _ := unix.ParseUnixRights(&msgs[0])
		master := os.NewFile(uintptr(fds[0]), "pty-master")
		defer master.Close()
		var out []byte
		master.SetReadDeadline(time.Now().Add(10 * time.Second))
		for !strings.Contains(string(out), "term-ok") {
			chunk := make([]byte, 1024)
			n, err := master.Read(chunk)
			out = append(out, chunk[:n]...)
			if err != nil {
				break
			}
		}
		got <- string(out)
	}()
	rt.MustRun("create", "--bundle", b.Dir, "--console-socket", sock, "tty")
	rt.MustRun("start", "tty")
	select {
	case out := <-got:
		if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "term-ok") {
			t.Fatalf("console output %q", out)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no console output")
	}
}
