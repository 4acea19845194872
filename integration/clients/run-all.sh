#!/usr/bin/env bash
# run-all.sh - every client flow against the runtime under test, with per-step times:
#   installer  deploy/node/install.sh on fake node roots (containerd 2.4 and 1.6 configs)
#   ctr        (a) containerd 2.4.2 + containerd-shim-mxc-v2, ctr
#   cri-v2     (b) CRI on containerd 2.4.2, handlers of deploy/containerd/mxc-shim.toml,
#                  crictl smoke + critest v1.37.0 whole suite with handlers runc and mxc
#   cri-v1.6   (c) CRI on Debian's containerd 1.6, handler of mxc-runc-shim.toml,
#                  crictl smoke + critest v1.34.0 whole suite with handlers runc and mxc
#   docker     (d) dockerd 20.10 with deploy/docker/daemon.json
#   podman     (e) podman 4.3 with deploy/podman/containers.conf
# Env:
#   MXC_RUNTIME  the runtime under test (e.g. bin/mxc-runtime); unset: stand-ins
#                (runc on containerd 2.4, crun elsewhere)
#   MXC_SHIM     containerd-shim-mxc-v2 (unset: built from this checkout)
#   FLOWS        subset, e.g. "ctr cri-v2" (default: all, in the order above)
#   CRITEST      1 (default): whole critest suites; 0: smoke tests only
#   CRITEST_FOCUS  ginkgo focus regex for a shorter critest
# Client binaries built from Go modules (containerd 2.4.2, ctr, cri-tools) are cached in
# $MXC_TOOLS_DIR (default beside the Go build cache); the first run builds them.
# Closing line: "clients: N passed, N failed, N skipped" (checks summed over flows);
# exit 1 when any flow failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
FLOWS=${FLOWS:-installer ctr cri-v2 cri-v1.6 docker podman}
export CRITEST=${CRITEST:-1}
[ -n "${MXC_RUNTIME:-}" ] && { [ -x "$MXC_RUNTIME" ] || die "MXC_RUNTIME=$MXC_RUNTIME is not executable"; export MXC_RUNTIME=$(readlink -f "$MXC_RUNTIME"); }
[ -n "${MXC_SHIM:-}" ] && export MXC_SHIM
rows=() tp=0 tf=0 ts=0 tpc=0 T0=$(now)
# phase NAME CMD...: runs CMD, keeps its time and the counts of its closing line
phase() {
	local n=$1 t0 rc log line p=0 f=0 s=0; shift
	t0=$(now); log=$MXC_IT_DIR/logs/$n.log
	echo "=== $n"
	"$@" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	if [ -n "$line" ]; then
		p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line"); f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
		grep -q skipped <<<"$line" && s=$(sed -E 's/.* ([0-9]+) skipped.*/\1/' <<<"$line")
	elif [ $rc != 0 ]; then f=1; fi
	[ $rc != 0 ] && [ "$f" = 0 ] && f=1
	tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
	# the flow's policy checks (file rules, egress by name), timed by lib.sh's `timed`
	pc=$(sed -nE 's/^policy checks took ([0-9.]+)s$/\1/p' "$log" | tail -1)
	[ -n "$pc" ] && tpc=$(echo "$tpc + $pc" | bc)
	rows+=("$(printf '%-5s %8ss  %-28s %s%s' "$([ $rc = 0 ] && echo ok || echo FAIL)" "$(elapsed "$t0")" "$n" "${line:-rc=$rc}" "${pc:+ (policy checks ${pc}s)}")")
}
# nftables tables present before the run: dockerd, CNI and netavark (through
# iptables-nft) add tables to the host; a table this run added is dropped at the
# end once the flows' own teardown has left it without a rule
tables_before=$(nft list tables 2>/dev/null || true)
drop_new_empty_tables() {
	local fam name
	nft list tables 2>/dev/null | while read -r _ fam name; do
		grep -qx "table $fam $name" <<<"$tables_before" && continue
		[ "$(nft -j list table "$fam" "$name" 2>/dev/null | jq '[.nftables[] | select(.rule)] | length')" = 0 ] &&
			nft delete table "$fam" "$name"
	done
}
cleanup() { "$IT_HERE/registry.sh" down >/dev/null 2>&1; drop_new_empty_tables; }
trap cleanup EXIT
mkdir -p "$MXC_IT_DIR/logs"
echo "runtime under test: ${MXC_RUNTIME:-stand-ins (runc on containerd 2.4, crun elsewhere)}; shim: ${MXC_SHIM:-built from this checkout}"
phase host-prep env FIX=1 "$IT_HERE/host-prep.sh"
phase build-containerd "$IT_HERE/build-containerd.sh"
case " $FLOWS " in *" cri-"*) phase build-cri-tools "$IT_HERE/build-cri-tools.sh" v1.37.0 v1.34.0 ;; esac
phase images "$IT_HERE/make-images.sh" base
for fl in $FLOWS; do
	case $fl in
	installer) phase installer "$IT_HERE/test-installer.sh" ;;
	ctr) phase ctr "$IT_HERE/test-ctr.sh" ;;
	cri-v2) phase cri-v2 "$IT_HERE/test-cri.sh" v2 ;;
	cri-v1.6) phase cri-v1.6 "$IT_HERE/test-cri.sh" v1.6 ;;
	docker) phase docker "$IT_HERE/test-docker.sh" ;;
	podman) phase podman "$IT_HERE/test-podman.sh" ;;
	*) die "unknown flow $fl" ;;
	esac
done
echo
echo "== run-all ($(elapsed "$T0")s; logs in $MXC_IT_DIR/logs)"
printf '%s\n' "${rows[@]}"
for r in "$MXC_IT_DIR"/ctd*-cri/critest-*/summary; do [ -f "$r" ] && [ "$r" -nt "$MXC_IT_DIR/logs/host-prep.log" ] && cat "$r"; done
[ "$tpc" != 0 ] && printf 'policy checks, all flows: %.1fs\n' "$tpc"
echo "clients: $tp passed, $tf failed, $ts skipped"
[ "$tf" = 0 ]
