#!/usr/bin/env bash
# deps.sh - install what building, testing and the demo need on a fresh
# Debian 12 machine (root): Debian packages, Go modules, and the host tweaks
# the peers need. Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
# grep -q exits at its first match; under pipefail the writer's SIGPIPE would fail the
# pipeline (141) although the match was found. This grep reads all of its input.
qgrep() { grep "$@" >/dev/null; }

PKGS=(
	gcc make git pkg-config libseccomp-dev            # static build with libseccomp (LIBC=glibc)
	musl-tools gperf patch                            # the default musl build (hack/musl.sh builds libseccomp)
	busybox-static                                    # test and demo root filesystems
	runc crun bubblewrap hyperfine                    # peers for conformance and benchmarks
	nftables iproute2 iperf3 dnsutils                 # egress tests and benchmarks
	docker.io containerd podman containernetworking-plugins catatonit docker-registry
	iptables jq bc curl python3 file util-linux procps psmisc strace cpio
	qemu-system-x86 linux-image-amd64                 # a pure cgroup v2 guest for the v2 tests
)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | qgrep "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: apt-get install ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "deps: Go is required (go1.26+ at /usr/local/go)" >&2; exit 1; }
go mod download

# crun 1.8 refuses to run while the hugetlb controller sits on the cgroup v2
# side of a hybrid host: give it a v1 hierarchy (what the benchmarks and
# conformance runs need to compare with crun).
if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] && ! awk '$5=="/sys/fs/cgroup/hugetlb"' /proc/self/mountinfo | qgrep .; then
	mkdir -p /sys/fs/cgroup/hugetlb
	mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null ||
		echo "deps: note: could not mount a v1 hugetlb hierarchy (crun comparisons may fail)" >&2
fi
# /run/netns as a shared mount point, as `ip netns` and CNI expect.
mkdir -p /run/netns
awk '$5=="/run/netns"' /proc/self/mountinfo | qgrep . || mount --bind /run/netns /run/netns
mount --make-shared /run/netns
echo "deps: ok"
