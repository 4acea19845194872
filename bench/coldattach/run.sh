#!/bin/bash
# bench/coldattach/run.sh: the cgroup attach wait, cold and with mxc's
# warm-up, on the host's Debian kernel booted in a QEMU guest (TCG: nested
# KVM does not work on the benchmark VMs). Needs qemu-system-x86,
# linux-image-amd64 (a /boot/vmlinuz-*), busybox-static and Go.
#
#   bench/coldattach/run.sh [-n 10] [-lead 7ms]
#
# The guest is a throwaway initramfs: busybox, `sleep` and this command;
# it mounts a v1 pids hierarchy, runs the samples, prints them and powers
# off. Timing inside TCG is slow for CPU work but grace periods run on the
# guest's timer ticks in real time, which is what this measures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernel=${KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "coldattach: no kernel in /boot (apt-get install linux-image-amd64)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "coldattach: needs qemu-system-x86" >&2; exit 1; }
bb=${BUSYBOX:-/bin/busybox}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,proc,sys,dev}
cp "$bb" "$root/bin/busybox"
for a in sh mount mkdir sleep poweroff; do ln -s busybox "$root/bin/$a"; done
(cd "$here/../.." && CGO_ENABLED=0 go build -o "$root/bin/coldattach" ./bench/coldattach)
cat > "$root/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs cg /sys/fs/cgroup
mkdir /sys/fs/cgroup/pids
mount -t cgroup -o pids pids /sys/fs/cgroup/pids
echo "guest kernel: \$(cat /proc/sys/kernel/osrelease)"
coldattach $*
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$tmp/initrd.gz"
# Two vCPUs: the grace period being measured needs a second CPU. QEMU 7.2's
# multi-threaded TCG can hang such a guest when the kernel patches a static
# key while the other vCPU runs the patched code (integration/cgroupv2 saw
# it on the first cpu.max write); the timeout ends such a run.
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 -kernel "$kernel" \
	-initrd "$tmp/initrd.gz" -append "console=ttyS0 rdinit=/init quiet panic=-1" \
	-nographic -no-reboot </dev/null 2>&1 | tr -d '\r' | grep -E '(guest kernel|^cold|^warm|^coldattach)'
