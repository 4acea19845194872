#!/usr/bin/env bash
# host-prep.sh - check (FIX=1: apply) what the client flows need on a Debian 12 machine
# of this kind (root, no systemd, cgroup v1 hybrid); INSTALL=1 apt-installs the clients.
# Exit 1 when something required is missing.  Safe to re-run.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
FIX=${FIX:-0}
if [ "${INSTALL:-0}" = 1 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io containerd runc crun \
		podman containernetworking-plugins busybox-static catatonit docker-registry iptables jq bc curl file >/dev/null
fi
bad=0
ok() { printf 'ok    %s\n' "$*"; }
warn() { printf 'WARN  %s\n' "$*"; }
missing() { printf 'MISS  %s\n' "$*"; bad=1; }
# cgroup v1 hybrid: crun 1.8 wants every controller it knows on v1 when the host is
# hybrid; hugetlb (not mounted on v1 by this VM's init) goes to a v1 hierarchy
if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] && grep -qw hugetlb /proc/cgroups; then
	if awk '$5=="/sys/fs/cgroup/hugetlb"' /proc/self/mountinfo | qgrep .; then ok "hugetlb on cgroup v1"
	elif [ "$FIX" = 1 ] && mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; then
		ok "mounted the hugetlb v1 hierarchy"
	else warn "hugetlb not on cgroup v1 (FIX=1 mounts it; crun may fail without)"; fi
fi
capb=$(awk '/CapBnd/{print $2}' /proc/self/status)
(((0x$capb >> 24) & 1)) && ok "CAP_SYS_RESOURCE present" ||
	ok "no CAP_SYS_RESOURCE (CapBnd $capb): handled (restrict_oom_score_adj, podman default_ulimits)"
iptables -S >/dev/null 2>&1 && ok "$(iptables --version)" || missing "iptables not usable"
for fs in overlay cgroup2; do grep -qw $fs /proc/filesystems && ok "fs $fs" || missing "fs $fs"; done
for b in dockerd /usr/bin/docker containerd containerd-shim-runc-v2 ctr runc crun podman docker-registry catatonit jq bc curl go unshare setsid; do
	command -v $b >/dev/null && ok "$b: $(command -v $b)" || missing "$b (INSTALL=1 installs the Debian packages)"
done
for p in bridge host-local portmap loopback; do
	[ -x /usr/lib/cni/$p ] && ok "CNI $p" || missing "CNI plugin /usr/lib/cni/$p (containernetworking-plugins)"
done
file -L /bin/busybox 2>/dev/null | qgrep static && ok "/bin/busybox static" || missing "/bin/busybox not static (busybox-static)"
[ $bad = 0 ]
