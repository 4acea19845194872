#!/usr/bin/env bash
# mxc benchmarks: mxc-runtime against runc 1.1.5 and crun 1.8.1 (Debian),
# side by side in one run with one busybox bundle. `make bench` calls this.
#
# Prints medians, p90 and the ratios mxc/runc and mxc/crun, and records the
# run (machine, date, table, history rows) in docs/benchmarks.md.
# Timing never fails the run: only errors (a runtime failing, containers
# left behind) do.
#
# Environment:
#   MXC_RUNTIME   mxc-runtime binary (default: `make build`, bin/mxc-runtime)
#   RUNC, CRUN    the other runtimes (default /usr/bin/runc, /usr/bin/crun;
#                 one that is missing is left out, with a warning)
#   BENCH_N       timed iterations per operation and runtime (default 30)
#   BENCH_SHORT=1 the quick CI version: 10 iterations, 1 warm-up
#   BENCH_ONLY    regexp of operation keys (run, lifecycle, exec, exec-fast,
#                 exec-policy, run-policy, shim, density, memory)
#   BENCH_CONTAINERD  dir of containerd 2.x, ctr and containerd-shim-runc-v2
#                 for the shim row (default: containerd v2.4.2 built from its
#                 Go module by integration/clients/build-containerd.sh, cached;
#                 Debian's 1.6 refuses shims built on containerd v2). Started
#                 privately with its own root, state and socket. "-": no shim row
#   BENCH_DENSITY containers in the density batch (default 100)
#   BENCH_DOC     where to record (default docs/benchmarks.md; "-": nowhere)
#   BENCH_PROFILE=N  instead of the table, profile `run /bin/true` with
#                 perf trace over N runs per runtime, and for mxc also with
#                 the coding-agent policy (needs linux-perf), and record the
#                 phase breakdown
#   BENCH_CPU_PROFILE=N  instead of the table, attribute mxc's CPU time in
#                 `run /bin/true` to functions (perf record over N runs of an
#                 unstripped build of the same tree; printed, not recorded);
#                 with BENCH_CPU_PROFILE_POLICY=1 the bundle carries the
#                 coding-agent policy (the C last step shows as process "3");
#                 BENCH_CPU_PROFILE_DATA=FILE keeps perf.data there and the
#                 profiled binary at FILE.bin (perf report -i FILE -G)
#
# Needs root. Cleans every container, state root and bundle it made, also
# on failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (runs real containers)"
command -v go >/dev/null || die "needs go"
[ -x /bin/busybox ] || die "needs /bin/busybox (apt-get install busybox-static)"

# crun refuses to run on a hybrid host while the hugetlb controller sits in
# the v2 hierarchy; a v1 hugetlb hierarchy fixes that. Mount it once.
ensure_hugetlb_v1() {
	[ -d /sys/fs/cgroup/unified ] || return 0
	grep -qw hugetlb /proc/cgroups || return 0
	awk '$5 == "/sys/fs/cgroup/hugetlb" {found=1} END {exit !found}' /proc/self/mountinfo && return 0
	mkdir -p /sys/fs/cgroup/hugetlb
	mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || log "warning: cannot mount the v1 hugetlb hierarchy"
}
ensure_hugetlb_v1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -n "${BENCH_CPU_PROFILE:-}" ]; then
	command -v perf >/dev/null || die "BENCH_CPU_PROFILE needs perf (apt-get install linux-perf)"
	# `make build` (same tags and C library), with symbols.
	log "building an unstripped mxc-runtime"
	make -s -C "$repo" build STRIP= BIN="$tmp" >&2
	(cd "$repo" && go build -o "$tmp/mxc-bench" ./bench/cmd/mxc-bench)
	policy=()
	[ "${BENCH_CPU_PROFILE_POLICY:-}" = 1 ] && policy=(-cpu-profile-policy)
	if [ -n "${BENCH_CPU_PROFILE_DATA:-}" ]; then
		policy+=(-cpu-profile-data "$BENCH_CPU_PROFILE_DATA")
		cp "$tmp/mxc-runtime" "$BENCH_CPU_PROFILE_DATA.bin"
	fi
	"$tmp/mxc-bench" -runtime "mxc=$tmp/mxc-runtime" -cpu-profile "$BENCH_CPU_PROFILE" "${policy[@]}"
	exit
fi

if [ -n "${MXC_RUNTIME:-}" ]; then
	mxc=$MXC_RUNTIME
else
	log "building mxc-runtime"
	make -s -C "$repo" build >&2
	mxc="$repo/bin/mxc-runtime"
fi
[ -x "$mxc" ] || die "mxc-runtime $mxc is not executable"

runtimes=(-runtime "mxc=$mxc")
for pair in "runc=${RUNC:-/usr/bin/runc}" "crun=${CRUN:-/usr/bin/crun}"; do
	if [ -x "${pair#*=}" ]; then
		runtimes+=(-runtime "$pair")
	else
		log "warning: ${pair#*=} not found, ${pair%%=*} left out (apt-get install ${pair%%=*})"
	fi
done

n=${BENCH_N:-30}
warmup=3
label=
density_runs=3
if [ "${BENCH_SHORT:-}" = 1 ]; then
	n=${BENCH_N:-10}
	warmup=1
	label=short
	density_runs=1
fi
doc=${BENCH_DOC:-$repo/docs/benchmarks.md}
[ "$doc" = - ] && doc=

(cd "$repo" && go build -o "$tmp/mxc-bench" ./bench/cmd/mxc-bench)

# The shim row (issue 8): a private containerd with mxc's shim on its PATH
# and the busybox image, started here and removed (root, state, snapshots,
# shims) when the bench ends.
shim_args=()
ctd_bin=${BENCH_CONTAINERD:-}
clients=$repo/integration/clients
shim_down() { :; }
if [ "$ctd_bin" != - ] && [[ -z "${BENCH_ONLY:-}" || shim =~ ${BENCH_ONLY} ]] && [ -z "${BENCH_PROFILE:-}" ]; then
	if [ -z "$ctd_bin" ]; then
		log "containerd for the shim row (integration/clients/build-containerd.sh; cached after the first build)"
		if "$clients/build-containerd.sh" >&2; then
			ctd_bin=$(. "$clients/lib.sh"; echo "$CTD2_BIN")
		else
			log "warning: containerd could not be built"
		fi
	fi
	if [ -x "$ctd_bin/containerd" ] && [ -x "$ctd_bin/ctr" ]; then
		log "building containerd-shim-mxc-v2; starting a private containerd ($ctd_bin)"
		make -s -C "$repo" shim >&2
		export CTD_NAME=ctd-bench CTD_BIN=$ctd_bin CTD_VERSION=3 CRI=0 SHIM_PATH=$tmp/shim-bin
		mkdir -p "$SHIM_PATH"
		# the shim finds mxc-runtime next to its resolved binary (bin/)
		ln -s "$repo/bin/containerd-shim-mxc-v2" "$SHIM_PATH/containerd-shim-mxc-v2"
		[ "$mxc" = "$repo/bin/mxc-runtime" ] || log "warning: the shim row runs $repo/bin/mxc-runtime, not $mxc"
		shim_down() {
			PURGE=1 "$clients/containerd.sh" down >/dev/null 2>&1 || log "warning: containerd.sh down failed"
			# the runtimes' state roots of the namespace, if empty (the shims' defaults)
			rmdir /run/mxc/mxc-bench/.locks /run/mxc/mxc-bench /run/containerd/runc/mxc-bench 2>/dev/null || true
		}
		trap 'shim_down; rm -rf "$tmp"' EXIT
		"$clients/make-images.sh" base >/dev/null
		"$clients/containerd.sh" up >/dev/null
		eval "$(. "$clients/lib.sh"; declare -p MXC_IT_DIR IMAGES_DIR BUSYBOX_REF)"
		sock=$MXC_IT_DIR/$CTD_NAME/containerd.sock
		"$ctd_bin/ctr" --address "$sock" -n mxc-bench images import "$IMAGES_DIR/busybox-local.tar" >/dev/null
		shim_args=(-ctr "$ctd_bin/ctr" -ctr-address "$sock" -ctr-namespace mxc-bench -ctr-image "$BUSYBOX_REF")
	else
		log "warning: no containerd and ctr in $ctd_bin, shim row left out"
	fi
fi

# mxc's policy rows, the density batch and the memory figures run mxc
# under the coding-agent example policy (runc and crun without any).
args=(-n "$n" -warmup "$warmup" -label "$label" -doc "$doc" -only "${BENCH_ONLY:-}"
	-agent-policy "$repo/examples/policies/coding-agent.yaml"
	-density "${BENCH_DENSITY:-100}" -density-runs "$density_runs" "${shim_args[@]}" "${runtimes[@]}")
if [ -n "${BENCH_PROFILE:-}" ]; then
	command -v perf >/dev/null || die "BENCH_PROFILE needs perf (apt-get install linux-perf)"
	args+=(-profile "$BENCH_PROFILE")
fi
"$tmp/mxc-bench" "${args[@]}"
