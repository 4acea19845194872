//go:build linux

// Package cgroupv2_test runs mxc-runtime on a pure cgroup v2 host. This
// machine is a v1 hybrid whose memory, pids and cpu controllers are bound to
// v1, so the test boots Debian's own kernel under QEMU (software emulation:
// nested KVM fails on these VMs) with an initramfs holding busybox,
// mxc-runtime, mxc-monitor and bundles, mounts cgroup2 alone at
// /sys/fs/cgroup, and runs the checks inside. The guest prints "MXC-V2
// key=value" lines on its serial console; the test reads them.
//
// That guest is also a stock Debian 12 host (kernel 6.1, Landlock ABI 2,
// cgroup v2), the one place where the tests meet an older Landlock: an
// agent policy with read-write paths is refused there (ABI 2 cannot refuse
// truncation elsewhere), then runs under a node config that allows
// degraded mode, which is recorded; its limits, file rules, OOM and
// timeout audit events hold on cgroup v2.
package cgroupv2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	h "mxc.dev/mxc/integration/harness"
	"mxc.dev/mxc/linux/enforce"
	"mxc.dev/mxc/spec"
)

// guestScript runs the checks. Every mxc-runtime call is a step: bounded
// (busybox timeout, stepLimit), timed ("MXC-V2-TIME name seconds"), and
// watched: a step that runs past watchAfter makes the guest print every
// process with its kernel wait channel and stack ("MXC-V2-PS"), so that a
// hang seen only on another machine says where it hung. The script goes on
// after a killed step, so one run reports every check.
const guestScript = `#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmpfs /run
mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
r() { echo "MXC-V2 $1=$2" >/dev/console; }
now() { cut -d. -f1 /proc/uptime; }
dump() {
	echo "MXC-V2-PS step $(cat /run/step) running since $(cat /run/step.t), now $(now)"
	for p in /proc/[0-9]*; do
		[ -s $p/cmdline ] || continue # kernel threads
		echo "MXC-V2-PS ${p#/proc/} ppid=$(cut -d' ' -f4 $p/stat 2>/dev/null) state=$(cut -d' ' -f3 $p/stat 2>/dev/null) wchan=$(cat $p/wchan 2>/dev/null) $(tr '\0' ' ' <$p/cmdline 2>/dev/null)"
		sed 's/^/MXC-V2-PS     /' $p/stack 2>/dev/null
	done
	sed 's/^/MXC-V2-PS mxc-v2 /' /sys/fs/cgroup/mxc-v2/cgroup.procs 2>/dev/null
}
( while sleep 5; do
	[ -e /run/step ] && [ $(( $(now) - $(cat /run/step.t) )) -ge WATCH ] && [ ! -e /run/step.dumped ] && { dump; touch /run/step.dumped; }
done ) >/dev/console 2>&1 &
x() {
	n=$1; shift; echo "$n" >/run/step; now >/run/step.t; rm -f /run/step.dumped
	s=$(now); timeout -s KILL LIMIT "$@"; rc=$?
	echo "MXC-V2-TIME $n $(( $(now) - s ))" >/dev/console; rm -f /run/step
	return $rc
}
r fstype "$(grep ' /sys/fs/cgroup ' /proc/mounts | cut -d' ' -f3)"
cd /bundle
x run mxc-runtime run -d v2 </dev/null >/dev/null 2>/tmp/err; r run "$? $(cat /tmp/err)"
cg=/sys/fs/cgroup/mxc-v2
r memory.max "$(cat $cg/memory.max)"
r pids.max "$(cat $cg/pids.max)"
r cpu.max "$(cat $cg/cpu.max)"
r status "$(x state mxc-runtime state v2 | grep -o '"status": "[a-z]*"' | cut -d'"' -f4)"
x update mxc-runtime update --memory 48m --pids-limit 15 v2; r update "$?"
r memory.max.updated "$(cat $cg/memory.max)"
r pids.max.updated "$(cat $cg/pids.max)"
x oom mxc-runtime exec v2 sh -c 'tail /dev/zero' >/dev/null 2>&1; r oom.exec "$?"
r oom_kill "$(grep oom_kill $cg/memory.events | cut -d' ' -f2)"
x pids mxc-runtime exec v2 sh -c 'for i in $(seq 30); do sleep 100 >/dev/null 2>&1 & done 2>/dev/null; true'
r pids.current "$(cat $cg/pids.current)"
x stats mxc-runtime events --stats v2 > /tmp/stats; r stats "$(grep -c '"type":"stats"' /tmp/stats)"
x delete mxc-runtime delete -f v2; r delete "$?"
test -e $cg && r cgroup.left yes || r cgroup.left no
# An agent policy on the same host (process tier: Landlock, seccomp, the
# policy's limits, the monitor's OOM watch on memory.events, its timeout).
# Debian 12's kernel has Landlock ABI 2, which cannot refuse truncation
# outside the read-write paths (ABI 3): refused, with nothing left behind,
# until the node config allows degraded mode.
cd /agent
x p.refused mxc-runtime run -d p1 </dev/null >/dev/null 2>/tmp/err; r p.refused "$? $(grep -c 'filesystem.readwritePaths: truncating.*Landlock ABI 3' /tmp/err)"
# (busybox timeout's watchers carry the command in their arguments: only
# processes that are mxc's own count)
helpers() { ps -o args | grep -cE '^(/[^ ]*/)?mxc-'; }
r p.refused.left "$(ls /run/mxc | grep -c p1) $(ls /sys/fs/cgroup | grep -c mxc-p) $(helpers)"
mkdir -p /etc/mxc && echo 'allowDegraded: true' > /etc/mxc/config.yaml
x p.run mxc-runtime run -d p2 </dev/null >/dev/null 2>/tmp/err; r p.run "$? $(grep -c 'policy degraded' /tmp/err)"
sed 's/^/MXC-V2-ERR p.run /' /tmp/err >/dev/console
r p.degraded "$(grep -o '"landlockABI": [0-9]*' /run/mxc/p2/mxc.json | cut -d' ' -f2) $(grep -A2 '"degraded"' /run/mxc/p2/mxc.json | grep -c 'Landlock ABI 3')"
pg=/sys/fs/cgroup/mxc-p2
r p.memory.max "$(cat $pg/memory.max)"
r p.pids.max "$(cat $pg/pids.max)"
x p.write mxc-runtime exec p2 sh -c 'echo ok > /workspace/out && cat /workspace/out' >/tmp/out 2>&1; r p.write "$? $(cat /tmp/out)"
x p.etc mxc-runtime exec p2 sh -c 'echo no > /etc/agent-wrote-here' >/dev/null 2>&1; r p.etc "$?"
x p.secret mxc-runtime exec p2 cat /workspace/secret >/tmp/out 2>&1; r p.secret "$? $(grep -c v2-secret /tmp/out)"
x p.oom mxc-runtime exec p2 sh -c 'tail /dev/zero' >/dev/null 2>&1; r p.oom "$?"
sleep 2
r p.oom_kill "$(grep oom_kill $pg/memory.events | cut -d' ' -f2)"
x p.audit mxc-runtime events --audit --no-follow p2 >/tmp/audit 2>&1; r p.audit.oom "$(grep -c '"kind":"oom"' /tmp/audit)"
cd /agent-timeout
x t.run mxc-runtime run -d p3 </dev/null >/dev/null 2>/tmp/err; r t.run "$? $(grep -c 'policy degraded' /tmp/err)"
sleep 12
r t.status "$(x t.state mxc-runtime state p3 | grep -o '"status": "[a-z]*"' | cut -d'"' -f4)"
x t.audit mxc-runtime events --audit --no-follow p3 >/tmp/audit 2>&1; r t.audit.timeout "$(grep -c '"kind":"timeout"' /tmp/audit)"
x p.delete mxc-runtime delete -f p2; r p.delete "$?"
x t.delete mxc-runtime delete -f p3; r t.delete "$?"
r p.cgroups.left "$(ls /sys/fs/cgroup | grep -c mxc-p)"
r p.helpers.left "$(helpers)"
r done 1
poweroff -f
`

// stepLimit bounds each mxc-runtime call in the guest; the slowest, the
// OOM steps, take 2-7 s under emulation, and the whole guest 34-44 s.
// watchAfter is when a step counts as stalled and the guest dumps its
// processes.
const (
	stepLimit  = 90
	watchAfter = 30
)

func TestLimitsOnPureCgroupV2(t *testing.T) {
	h.RequireRoot(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 is required (hack/deps.sh installs qemu-system-x86)")
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		t.Fatal("a kernel in /boot is required (hack/deps.sh installs linux-image-amd64)")
	}
	dir := t.TempDir()
	ir := filepath.Join(dir, "initramfs")
	if err := h.MakeRootfs(ir); err != nil {
		t.Fatal(err)
	}
	// The runtime and, as installed, its helpers' binary next to it.
	for _, name := range []string{"mxc-runtime", enforce.HelperName} {
		bin, err := os.ReadFile(filepath.Join(filepath.Dir(h.Binary(t)), name))
		if err != nil {
			t.Fatal(err)
		}
		must(t, os.WriteFile(filepath.Join(ir, "bin", name), bin, 0o755))
	}
	// The guest switches from the initramfs to a tmpfs root first: pivot_root
	// (what runc and mxc use) does not work from the initramfs root itself.
	must(t, os.WriteFile(filepath.Join(ir, "init"), []byte(`#!/bin/sh
mkdir -p /mnt && mount -t tmpfs tmpfs /mnt
for d in bin sbin usr etc bundle agent agent-timeout; do cp -a /$d /mnt/; done
cp /init2 /mnt/init2; mkdir -p /mnt/proc /mnt/sys /mnt/dev /mnt/run /mnt/tmp
exec switch_root /mnt /init2
`), 0o755))
	script := strings.NewReplacer("LIMIT", fmt.Sprint(stepLimit), "WATCH", fmt.Sprint(watchAfter)).Replace(guestScript)
	must(t, os.WriteFile(filepath.Join(ir, "init2"), []byte(script), 0o755))
	bundle := filepath.Join(ir, "bundle")
	if err := h.MakeRootfs(filepath.Join(bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	b := h.NewBundle(t, "sleep", "1000")
	s := b.Spec
	s.Linux.CgroupsPath = "/mxc-v2"
	mem, pids, quota, period := int64(64<<20), int64(20), int64(50000), uint64(100000)
	data, _ := json.Marshal(s)
	var m map[string]any
	json.Unmarshal(data, &m)
	m["linux"].(map[string]any)["resources"] = map[string]any{
		"memory": map[string]any{"limit": mem, "swap": mem},
		"pids":   map[string]any{"limit": pids},
		"cpu":    map[string]any{"quota": quota, "period": period},
	}
	data, _ = json.MarshalIndent(m, "", " ")
	must(t, os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644))

	agentBundles(t, ir)

	initrd := filepath.Join(dir, "initrd.cpio")
	cpio := exec.Command("sh", "-c", "find . | cpio -o -H newc > "+initrd)
	cpio.Dir = ir
	if out, err := cpio.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v %s", err, out)
	}
	log, vmErr := bootGuest(t, qemu, kernels[len(kernels)-1], initrd, filepath.Join(dir, "serial.log"))
	got := map[string]string{}
	var diag []string
	for _, l := range strings.Split(string(log), "\n") {
		if i := strings.Index(l, "MXC-V2 "); i >= 0 {
			k, v, _ := strings.Cut(strings.TrimSpace(l[i+len("MXC-V2 "):]), "=")
			got[k] = v
		} else if i := strings.Index(l, "MXC-V2-"); i >= 0 {
			diag = append(diag, l[i:])
		}
	}
	t.Logf("guest: %v\n%s", got, strings.Join(diag, "\n"))
	for _, l := range diag {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "MXC-V2-TIME" {
			continue
		}
		if secs, _ := strconv.Atoi(f[2]); secs >= stepLimit {
			t.Errorf("step %s ran into its %d s limit and was killed (the MXC-V2-PS lines above show where it waited)", f[1], stepLimit)
		}
	}
	if vmErr != nil {
		t.Fatalf("%v; serial log:\n%s", vmErr, tail(log))
	}
	if got["done"] != "1" {
		t.Fatalf("the guest did not finish:\n%s", tail(log))
	}
	want := map[string]string{
		"fstype": "cgroup2", "run": "0", "memory.max": fmt.Sprint(mem), "pids.max": "20",
		"cpu.max": "50000 100000", "status": "running", "update": "0",
		"memory.max.updated": fmt.Sprint(48 << 20), "pids.max.updated": "15",
		"oom.exec": "137", "stats": "1", "delete": "0", "cgroup.left": "no",
		// The agent policy: its limits, its workspace writable, /etc not,
		// the denied file unreadable, the OOM kill and the timeout audited,
		// nothing left after delete.
		"p.refused": "1 1", "p.refused.left": "0 0 0", "p.run": "0 1", "p.degraded": "2 1",
		"p.memory.max": fmt.Sprint(agentMemory), "p.pids.max": "64",
		"p.write": "0 ok", "p.secret": "1 0", "p.oom": "137",
		"t.run": "0 1", "t.status": "stopped", "t.audit.timeout": "1",
		"p.delete": "0", "t.delete": "0", "p.cgroups.left": "0", "p.helpers.left": "0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got["p.etc"] == "0" || got["p.etc"] == "" {
		t.Errorf("p.etc = %q: the agent wrote to /etc, which its policy keeps read-only", got["p.etc"])
	}
	if n, err := strconv.Atoi(got["pids.current"]); err != nil || n > 15 || n < 5 {
		t.Errorf("pids.current = %d after a burst of 30 with pids.max 15", n)
	}
	if got["oom_kill"] == "" || got["oom_kill"] == "0" {
		t.Errorf("memory.events oom_kill = %q, want >= 1", got["oom_kill"])
	}
	// One audit event per OOM kill (memory.events' oom_kill count; the
	// kernel may kill more than once for one bomb).
	if n, err := strconv.Atoi(got["p.audit.oom"]); err != nil || n < 1 || got["p.oom_kill"] != got["p.audit.oom"] {
		t.Errorf("the agent's oom audit events = %q for memory.events oom_kill %q, want one per kill", got["p.audit.oom"], got["p.oom_kill"])
	}
}

// agentMemory is the agent policy's memory limit in the guest.
const agentMemory = 32 << 20

// agentBundles writes two bundles under the policy harness's battery
// policy (process tier) into the initramfs, on one rootfs: /agent, which
// runs until deleted, and /agent-timeout, whose policy ends it after 3 s.
func agentBundles(t *testing.T, ir string) {
	rootfs := filepath.Join(ir, "agent", "rootfs")
	if err := h.MakeRootfs(rootfs); err != nil {
		t.Fatal(err)
	}
	h.WriteTree(t, rootfs, map[string]string{
		"workspace/secret":     "v2-secret\n",
		"etc/secret-dir/token": "v2-secret\n",
	}, "workspace", 1000, 1000)
	for _, b := range []struct {
		dir, cgroup string
		timeout     uint64
	}{{"agent", "/mxc-p2", 0}, {"agent-timeout", "/mxc-p3", 3000}} {
		pol := h.BatteryPolicy("v2-guest", spec.TierProcess)
		pol.Resources.Memory = agentMemory
		// Network open: the egress filter needs nf_tables, a module
		// this initramfs does not carry (integration/egress tests it).
		pol.Network = &spec.Network{
			Egress:  &spec.Egress{Default: spec.Allow},
			Ingress: &spec.Ingress{Default: spec.Allow, HostLoopback: spec.Allow},
		}
		if b.timeout > 0 {
			pol.Process = &spec.Process{Timeout: b.timeout}
		}
		raw, err := json.Marshal(pol)
		if err != nil {
			t.Fatal(err)
		}
		s := h.NewBundle(t, "sleep", "1000").Spec
		s.Root = &specs.Root{Path: "/agent/rootfs"}
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		s.Linux.CgroupsPath = b.cgroup
		s.Annotations = map[string]string{spec.AnnotationPolicy: string(raw)}
		data, err := json.MarshalIndent(s, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		must(t, os.MkdirAll(filepath.Join(ir, b.dir), 0o755))
		must(t, os.WriteFile(filepath.Join(ir, b.dir, "config.json"), data, 0o644))
	}
}

// bootGuest runs the guest to its poweroff, at most runLimit, and returns
// its serial log and how QEMU failed, if it did.
func bootGuest(t *testing.T, qemu, kernel, initrd, serial string) ([]byte, error) {
	monitor := filepath.Join(filepath.Dir(serial), "monitor.sock")
	const runLimit = 5 * time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	// One vCPU. With two, QEMU 7.2's multi-threaded TCG hangs the guest
	// about once in 10-20 boots: the first cpu.max write (mxc's `run`)
	// turns the kernel's CFS-bandwidth static key on, text_poke_bp puts an
	// int3 on the jump-label site in dequeue_entity, and the other vCPU,
	// in the scheduler with interrupts off, takes that int3 again and
	// again while the patching vCPU spins on the runqueue lock: both
	// vCPUs at CPL 0 with IF clear, no timer ever fires again (QEMU
	// monitor's `info registers` of a stalled guest, RIPs mapped through
	// /proc/kallsyms). Static-key patching is routine on hardware; it is
	// the emulation that loses the int3 hand-off.
	vm := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1",
		"-kernel", kernel, "-initrd", initrd,
		// nokaslr: the RIPs of vcpuState then map onto the symbols of any
		// boot of that kernel (/proc/kallsyms).
		"-append", "console=ttyS0 cgroup_no_v1=all panic=-1 quiet nokaslr",
		"-display", "none", "-serial", "file:"+serial, "-no-reboot", "-nodefaults",
		"-monitor", "unix:"+monitor+",server,nowait")
	var vmOut bytes.Buffer
	vm.Stdout, vm.Stderr = &vmOut, &vmOut
	// A guest hung in its kernel prints nothing more, not even the step
	// watchdog's dump: shortly before the limit, ask QEMU where the
	// vCPUs are (RIP, CPL, flags), for the failure message.
	probed := make(chan []byte, 1)
	probe := time.AfterFunc(runLimit-15*time.Second, func() { probed <- vcpuState(monitor) })
	defer probe.Stop()
	t0 := time.Now()
	err := vm.Run()
	log, _ := os.ReadFile(serial)
	t.Logf("guest ran in %s", time.Since(t0).Round(time.Second))
	if err != nil {
		var regs []byte
		select {
		case regs = <-probed:
		default:
		}
		return log, fmt.Errorf("qemu after %s: %v %s\nvCPUs 15 s before the limit (QEMU monitor):\n%s",
			time.Since(t0).Round(time.Second), err, vmOut.String(), regs)
	}
	return log, nil
}

// vcpuState asks QEMU's monitor for every vCPU's registers and keeps the
// lines that say where it runs (RIP with the flags and privilege level).
func vcpuState(monitor string) []byte {
	c, err := net.DialTimeout("unix", monitor, 2*time.Second)
	if err != nil {
		return []byte(err.Error())
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("info registers -a\n")); err != nil {
		return []byte(err.Error())
	}
	out, _ := io.ReadAll(c) // until the deadline: the monitor keeps the connection open
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "CPU#") || strings.HasPrefix(l, "RIP=") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return []byte(strings.Join(keep, "\n"))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
