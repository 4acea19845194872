//go:build linux

// Package cgroupv2_test runs mxc-runtime on a pure cgroup v2 host. This
// machine is a v1 hybrid whose memory, pids and cpu controllers are bound to
// v1, so the test boots Debian's own kernel under QEMU (software emulation:
// deterministic, no nested KVM needed) with an initramfs holding busybox,
// mxc-runtime and a bundle, mounts cgroup2 alone at /sys/fs/cgroup, and runs
// the checks inside. The guest prints "MXC-V2 key=value" lines on its serial
// console; the test reads them.
package cgroupv2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	h "mxc.dev/mxc/integration/harness"
)

const guestScript = `#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmpfs /run
mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
r() { echo "MXC-V2 $1=$2"; }
r fstype "$(grep ' /sys/fs/cgroup ' /proc/mounts | cut -d' ' -f3)"
cd /bundle
mxc-runtime run -d v2 </dev/null >/dev/null 2>/tmp/err; r run "$? $(cat /tmp/err)"
cg=/sys/fs/cgroup/mxc-v2
r memory.max "$(cat $cg/memory.max)"
r pids.max "$(cat $cg/pids.max)"
r cpu.max "$(cat $cg/cpu.max)"
r status "$(mxc-runtime state v2 | grep -o '"status": "[a-z]*"' | cut -d'"' -f4)"
mxc-runtime update --memory 48m --pids-limit 15 v2; r update "$?"
r memory.max.updated "$(cat $cg/memory.max)"
r pids.max.updated "$(cat $cg/pids.max)"
mxc-runtime exec v2 sh -c 'tail /dev/zero' >/dev/null 2>&1; r oom.exec "$?"
r oom_kill "$(grep oom_kill $cg/memory.events | cut -d' ' -f2)"
mxc-runtime exec v2 sh -c 'for i in $(seq 30); do sleep 100 >/dev/null 2>&1 & done 2>/dev/null; true'
r pids.current "$(cat $cg/pids.current)"
mxc-runtime events --stats v2 > /tmp/stats; r stats "$(grep -c '"type":"stats"' /tmp/stats)"
mxc-runtime delete -f v2; r delete "$?"
test -e $cg && r cgroup.left yes || r cgroup.left no
r done 1
poweroff -f
`

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
	bin, err := os.ReadFile(h.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(ir, "bin/mxc-runtime"), bin, 0o755))
	// The guest switches from the initramfs to a tmpfs root first: pivot_root
	// (what runc and mxc use) does not work from the initramfs root itself.
	must(t, os.WriteFile(filepath.Join(ir, "init"), []byte(`#!/bin/sh
mkdir -p /mnt && mount -t tmpfs tmpfs /mnt
for d in bin sbin usr etc bundle; do cp -a /$d /mnt/; done
cp /init2 /mnt/init2; mkdir -p /mnt/proc /mnt/sys /mnt/dev /mnt/run /mnt/tmp
exec switch_root /mnt /init2
`), 0o755))
	must(t, os.WriteFile(filepath.Join(ir, "init2"), []byte(guestScript), 0o755))
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

	initrd := filepath.Join(dir, "initrd.cpio")
	cpio := exec.Command("sh", "-c", "find . | cpio -o -H newc > "+initrd)
	cpio.Dir = ir
	if out, err := cpio.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v %s", err, out)
	}
	serial := filepath.Join(dir, "serial.log")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	vm := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2",
		"-kernel", kernels[len(kernels)-1], "-initrd", initrd,
		"-append", "console=ttyS0 cgroup_no_v1=all panic=-1 quiet",
		"-display", "none", "-serial", "file:"+serial, "-no-reboot", "-nodefaults")
	var vmOut bytes.Buffer
	vm.Stdout, vm.Stderr = &vmOut, &vmOut
	t0 := time.Now()
	if err := vm.Run(); err != nil {
		log, _ := os.ReadFile(serial)
		t.Fatalf("qemu: %v\n%s\nserial:\n%s", err, vmOut.String(), tail(log))
	}
	log, _ := os.ReadFile(serial)
	got := map[string]string{}
	for _, l := range strings.Split(string(log), "\n") {
		if i := strings.Index(l, "MXC-V2 "); i >= 0 {
			k, v, _ := strings.Cut(strings.TrimSpace(l[i+len("MXC-V2 "):]), "=")
			got[k] = v
		}
	}
	t.Logf("guest ran in %s: %v", time.Since(t0).Round(time.Second), got)
	if got["done"] != "1" {
		t.Fatalf("the guest did not finish:\n%s", tail(log))
	}
	want := map[string]string{
		"fstype": "cgroup2", "run": "0", "memory.max": fmt.Sprint(mem), "pids.max": "20",
		"cpu.max": "50000 100000", "status": "running", "update": "0",
		"memory.max.updated": fmt.Sprint(48 << 20), "pids.max.updated": "15",
		"oom.exec": "137", "stats": "1", "delete": "0", "cgroup.left": "no",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if n, err := strconv.Atoi(got["pids.current"]); err != nil || n > 15 || n < 5 {
		t.Errorf("pids.current = %d after a burst of 30 with pids.max 15", n)
	}
	if got["oom_kill"] == "" || got["oom_kill"] == "0" {
		t.Errorf("memory.events oom_kill = %q, want >= 1", got["oom_kill"])
	}
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
