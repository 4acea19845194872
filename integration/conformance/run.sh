#!/usr/bin/env bash
# OCI runtime-tools validation suite: mxc-runtime against runc, in one run.
#
# Builds the validation programs of github.com/opencontainers/runtime-tools
# (pinned in tools/go.mod, a module of its own so its dependencies stay out
# of mxc's go.mod), caches them keyed by that version and the Go version,
# then runs every program against mxc-runtime and runc, interleaved, each
# with its own timeout, and prints
#   runtime-tools validation: mxc N/M passed, runc K/M passed
# It exits non-zero when mxc passes fewer programs or test points than runc.
# A program in which mxc does worse than runc (fails where runc passes, or
# loses points runc scores) is retried once for mxc (some programs race with
# their container under load, or end before their TAP plan) and, if it does
# as well then, listed as flaky. Every program still failing under mxc alone is listed
# with its failing points, its stderr and where its logs are.
#
# Environment:
#   MXC_RUNTIME       mxc-runtime binary (default: `make build`, bin/mxc-runtime)
#   RUNC              reference runtime (default /usr/bin/runc, Debian's 1.1.5)
#   MXC_TOOLS_CACHE   cache dir (default /var/cache/mxc-tools)
#   CONFORMANCE_ONLY  regexp: run only these programs
#   CONFORMANCE_SKIP  regexp: skip these programs
#   CONFORMANCE_TIMEOUT  per program and runtime (default 3m)
#   CONFORMANCE_LOGS  where each program's TAP and stderr go (default
#                     /tmp/mxc-conformance-logs; emptied at start, removed on
#                     success unless CONFORMANCE_KEEP_LOGS=1)
#
# Needs root. Idempotent; removes its containers, state, bundles and mounts
# on exit, even on failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tools="$here/tools"
RUNC=${RUNC:-/usr/bin/runc}
cache_root=${MXC_TOOLS_CACHE:-/var/cache/mxc-tools}

log() { printf 'conformance: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (runs real containers)"
command -v go >/dev/null || die "needs go"
[ -x "$RUNC" ] || die "reference runtime $RUNC not found (apt-get install runc)"

# Hybrid cgroup v1 hosts: hugetlb may sit unused in the v2 hierarchy, and
# runc and the cgroup programs expect it as a v1 hierarchy. Mount it once.
ensure_hugetlb_v1() {
	[ -d /sys/fs/cgroup/unified ] || return 0 # pure v2 or pure v1: nothing to do
	grep -qw hugetlb /proc/cgroups || return 0
	awk '$5 == "/sys/fs/cgroup/hugetlb" {found=1} END {exit !found}' /proc/self/mountinfo && return 0
	mkdir -p /sys/fs/cgroup/hugetlb
	mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || log "warning: cannot mount the v1 hugetlb hierarchy"
}
ensure_hugetlb_v1

# The runtime under test.
if [ -n "${MXC_RUNTIME:-}" ]; then
	mxc=$MXC_RUNTIME
else
	log "building mxc-runtime"
	make -s -C "$repo" build >&2
	mxc="$repo/bin/mxc-runtime"
fi
[ -x "$mxc" ] || die "mxc-runtime $mxc is not executable"

# The suite, built once per (runtime-tools version, Go version).
version=$(cd "$tools" && go list -m -f '{{.Version}}' github.com/opencontainers/runtime-tools)
moddir=$(cd "$tools" && go mod download -json github.com/opencontainers/runtime-tools@"$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
suite="$cache_root/runtime-tools/$version-$(go env GOVERSION)"
if [ ! -x "$suite/runtimetest" ] || [ ! -f "$suite/rootfs.tar.gz" ]; then
	log "building runtime-tools $version validation programs into $suite"
	mkdir -p "$cache_root/runtime-tools"
	stage=$(mktemp -d "$cache_root/runtime-tools/.build.XXXXXX")
	trap 'rm -rf "$stage"' EXIT
	# runtimetest runs inside the containers: static, no libc needed.
	(cd "$tools" && CGO_ENABLED=0 go build -trimpath -o "$stage/" tool)
	arch=$(go env GOARCH)
	[ -f "$moddir/rootfs-$arch.tar.gz" ] || die "runtime-tools $version ships no rootfs-$arch.tar.gz"
	cp "$moddir/rootfs-$arch.tar.gz" "$stage/rootfs.tar.gz"
	rm -rf "$suite"
	mv "$stage" "$suite"
	trap - EXIT
fi

# Scratch (state roots, runner) and logs (per program; bundles live there
# while a program runs).
work=$(mktemp -d /run/mxc-conformance.XXXXXX)
logs=${CONFORMANCE_LOGS:-/tmp/mxc-conformance-logs}
umount_below() {
	awk -v w="$1" '$5 == w || index($5, w "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
rc=2
cleanup() {
	# The runner deletes containers and unmounts after each program; this
	# covers a runner that was killed half way.
	umount_below "$work"
	umount_below "$logs"
	rm -rf "$work"
	find "$logs" -depth -type d -name tmp -path "$logs/*/*/tmp" -exec rm -rf {} + 2>/dev/null || true
	if [ "$rc" = 0 ] && [ "${CONFORMANCE_KEEP_LOGS:-}" != 1 ]; then
		rm -rf "$logs"
	else
		log "logs in $logs"
	fi
}
trap cleanup EXIT
umount_below "$logs"
rm -rf "$logs"
mkdir -p "$logs"
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/runner" ./integration/conformance/runner)

log "runtime-tools $version: mxc=$mxc ($("$mxc" --version | sed -n 1p)), runc=$RUNC ($("$RUNC" --version | sed -n 1p))"
"$work/runner" \
	-suite "$suite" -rootfs "$suite/rootfs.tar.gz" -work "$work" -logs "$logs" \
	-timeout "${CONFORMANCE_TIMEOUT:-3m}" \
	-only "${CONFORMANCE_ONLY:-}" -skip "${CONFORMANCE_SKIP:-}" \
	-runtime "mxc=$mxc" -runtime "runc=$RUNC" -v && rc=0 || rc=$?
exit "$rc"
