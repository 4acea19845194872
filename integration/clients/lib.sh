# shellcheck shell=bash
# lib.sh - shared by the client-integration scripts; source it:
#   . "$(dirname "$0")/lib.sh"
# Paths (all overridable from the environment):
#   MXC_IT_DIR     state of every daemon these scripts start (default /var/lib/mxc-it)
#   MXC_TOOLS_DIR  cache of the client binaries built from Go modules (containerd 2.x,
#                  ctr, cri-tools), keyed by version; default: beside the Go build cache
#                  ($(go env GOCACHE)/../mxc-tools) so CI machines keep it between runs
#   MXC_RUNTIME    runc-CLI runtime binary to test (default: crun standing in)
#   MXC_SHIM       containerd-shim-mxc-v2 binary (default: built from this repo)
# shellcheck disable=SC2034
IT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$IT_HERE/../.." && pwd)
DEPLOY_DIR=$REPO_ROOT/deploy
MXC_IT_DIR=${MXC_IT_DIR:-/var/lib/mxc-it}
IMAGES_DIR=${IMAGES_DIR:-$MXC_IT_DIR/images}
if [ -z "${MXC_TOOLS_DIR:-}" ]; then
	gc=$(go env GOCACHE 2>/dev/null || true)
	MXC_TOOLS_DIR=$(dirname "${gc:-/var/cache/go-build}")/mxc-tools
fi
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
CTD2_BIN=$MXC_TOOLS_DIR/containerd-$CONTAINERD_VERSION/bin
cri_tools_bin() { echo "$MXC_TOOLS_DIR/cri-tools-$1/bin"; }
REGISTRY=${REGISTRY:-127.0.0.1:5000}
PAUSE_REF=${PAUSE_REF:-registry.k8s.io/pause:3.10.2}
BUSYBOX_REF=${BUSYBOX_REF:-docker.io/library/busybox-local:latest}

# --- step runner: "ok|FAIL  seconds  name" per step, counts for the closing line ---
pass=0 fail=0 skipped=0
STEP_TIMEOUT=${STEP_TIMEOUT:-120}
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc | xargs printf '%.2f'; }
# step NAME CMD...  runs CMD (through bash -o pipefail -c when CMD is one string) in a
# session of its own, so that on timeout ($STEP_TIMEOUT s) every process it started
# is ended (pkill -s SESSION: ours only), nested `timeout`s and signal-forwarding
# clients (ctr run) included
step() {
	local n=$1 t0 out rc p deadline; shift
	t0=$(now)
	out=$(mktemp)
	if [ $# -eq 1 ]; then setsid bash -o pipefail -c "$1" >"$out" 2>&1 </dev/null &
	else setsid "$@" >"$out" 2>&1 </dev/null & fi
	p=$!
	deadline=$(($(date +%s) + STEP_TIMEOUT))
	while kill -0 "$p" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			pkill -KILL -s "$p" 2>/dev/null
			echo "step timed out after ${STEP_TIMEOUT}s" >>"$out"
			break
		fi
		sleep 0.05
	done
	wait "$p"; rc=$?
	if [ $rc -eq 0 ]; then pass=$((pass + 1)); printf 'ok    %6ss  %s\n' "$(elapsed "$t0")" "$n"
	else
		fail=$((fail + 1)); printf 'FAIL  %6ss  %s (rc=%s)\n' "$(elapsed "$t0")" "$n" "$rc"
		grep -v 'msg="DEPRECATION' "$out" | tail -15 | sed 's/^/      /'
	fi
	rm -f "$out"
	return $rc
}
# qgrep ARGS...: grep -q that reads its whole input. Every script here, and every step
# string, runs with pipefail; grep -q exits at the first match, so a writer still
# writing (ip addr show, ctr, curl) dies of SIGPIPE and the pipeline fails with 141
# although the match was found. qgrep keeps pipefail's point (a failing writer fails
# the pipeline) without that race. Exported so that step's `bash -c` strings see it.
qgrep() { grep "$@" >/dev/null; }
export -f qgrep
skip() { skipped=$((skipped + 1)); printf 'skip  %6s   %s\n' - "$*"; }
# timed CMD...: run CMD in this shell and add its wall time to the policy checks' total,
# which summary prints ("policy checks took N.Ns"; run-all sums them over the flows)
POLICY_SECS=0
timed() { local t0 rc; t0=$(now); "$@"; rc=$?; POLICY_SECS=$(echo "$POLICY_SECS + $(now) - $t0" | bc); return $rc; }
# run_policy_checks: the flow's policy_checks when enabled (timed), else one skip
run_policy_checks() {
	if policy_checks_enabled; then timed policy_checks; else skip "policy checks: $MXC_RUNTIME is not mxc-runtime"; fi
}
# summary LABEL: the closing line every flow prints; exit status follows it
summary() {
	[ "$POLICY_SECS" = 0 ] || printf 'policy checks took %.1fs\n' "$POLICY_SECS"
	echo "$1: $pass passed, $fail failed, $skipped skipped"
	[ "$fail" -eq 0 ]
}

die() { echo "error: $*" >&2; exit 1; }
need() { local b; for b in "$@"; do command -v "$b" >/dev/null || die "$b not found (see integration/clients/host-prep.sh)"; done; }

# wait_for SECONDS CMD...: poll CMD every 0.25s until it succeeds or time runs out
wait_for() {
	local t=$1 i; shift
	for ((i = 0; i < t * 4; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
	"$@"
}

# stop_pid FILE [SECONDS]: TERM then KILL the process whose pid FILE holds (ours only)
# spare_key ADDRESS: the name of the mxc shim's spare socket for a containerd address
# (package shim SparePath: FNV-1a 64 of the address, in hex; bash's integers wrap as
# the hash's unsigned arithmetic does)
spare_key() {
	local LC_ALL=C s=$1 h=-3750763034362895579 i c
	for ((i = 0; i < ${#s}; i++)); do
		printf -v c '%d' "'${s:i:1}"
		h=$(((h ^ (c & 255)) * 1099511628211))
	done
	printf '%016x' "$h"
}

stop_pid() {
	local f=$1 t=${2:-15} p i
	[ -s "$f" ] || return 0
	p=$(cat "$f")
	if kill -0 "$p" 2>/dev/null; then
		kill -TERM "$p" 2>/dev/null
		for ((i = 0; i < t * 4; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	fi
	rm -f "$f"
}

# umount_under DIR: lazily unmount everything mounted below DIR, deepest first
umount_under() {
	local d=$1 m
	awk -v d="$d/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
}

# runtime_is_mxc BIN: true when BIN is mxc-runtime (policy checks apply), false for
# a stand-in (crun, runc) that knows nothing of io.mxc.* annotations
runtime_is_mxc() { local v; v=$("$1" --version 2>/dev/null) && [[ $v == mxc-runtime* ]]; }

# render_snippet FILE SED_ARGS...: a deploy/ snippet with its install paths replaced by
# the test's (one source of truth: the tests run the snippets that ship)
render_snippet() { local f=$1; shift; sed "$@" "$f"; }

# --- binaries under test ---
# The stand-in when MXC_RUNTIME is unset: crun 1.8.1 for docker, podman and containerd
# 1.6; on containerd 2.x runc 1.1.5, since crun 1.8.1 refuses the spec version 1.3.0
# that containerd 2.4 writes ("unknown version specified").
default_runtime() { : "${MXC_RUNTIME:=$1}"; export MXC_RUNTIME; }
IT_BIN=$MXC_IT_DIR/bin
# ensure_shim: MXC_SHIM, or the shim built from this checkout into $IT_BIN
ensure_shim() {
	if [ -z "${MXC_SHIM:-}" ]; then
		MXC_SHIM=$IT_BIN/containerd-shim-mxc-v2
		mkdir -p "$IT_BIN"
		# as the Makefile builds it (tags, C library)
		make -s -C "$REPO_ROOT" shim BIN="$IT_BIN" || die "make shim failed"
	fi
	[ -x "$MXC_SHIM" ] || die "MXC_SHIM=$MXC_SHIM is not executable"
	MXC_SHIM=$(readlink -f "$MXC_SHIM")
	export MXC_SHIM
}
# ensure_auditwatch: the /mxc/audit subscriber (integration/clients/auditwatch)
AUDITWATCH=$IT_BIN/auditwatch
ensure_auditwatch() {
	mkdir -p "$IT_BIN"
	(cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$AUDITWATCH" ./integration/clients/auditwatch) ||
		die "go build ./integration/clients/auditwatch failed"
}

# make_trace_wrapper REAL WRAPPER LOG: a runc-CLI wrapper that appends each call's argv
# and $MXC_CONFIG to LOG, drops mxc-only global flags (--config FILE) when REAL is not
# mxc-runtime (a stand-in would refuse them), then execs REAL
make_trace_wrapper() {
	local real=$1 wrap=$2 log=$3 strip=1
	runtime_is_mxc "$real" && strip=0
	mkdir -p "$(dirname "$wrap")"
	cat >"$wrap" <<W
#!/bin/bash
printf '%s MXC_CONFIG=%s\n' "\$*" "\${MXC_CONFIG:-}" >>'$log'
if [ $strip = 1 ]; then
	args=()
	while [ \$# -gt 0 ]; do
		case \$1 in
		--config) shift 2 ;;
		--config=*) shift ;;
		*) args+=("\$1"); shift ;;
		esac
	done
	set -- "\${args[@]}"
fi
exec '$real' "\$@"
W
	chmod +x "$wrap"
}

# policy checks run when the runtime under test is mxc-runtime (MXC_POLICY_CHECKS=auto);
# 0 skips them, 1 forces them (they then fail on a stand-in, as they should)
policy_checks_enabled() {
	case ${MXC_POLICY_CHECKS:-auto} in
	0) return 1 ;;
	1) return 0 ;;
	*) runtime_is_mxc "${MXC_RUNTIME:-}" ;;
	esac
}

# --- egress by name: a DNS server of the test's own as the gate's upstream ---
# The runtime's DNS gate answers only the names a policy allows and asks its upstream
# (node config dns.upstreams) for them. The flows point that upstream at testdns on the
# host's loopback, serving allowed.mxc.test and denied.mxc.test with the addresses of
# destinations the flow itself started (web containers/pods on its own bridge), so no
# lookup or connection leaves what the test made. Only containers under an egress
# policy look names up (their port-53 traffic goes to the gate whatever resolver they
# name); the gate's upstream is checked (gate_upstream_is) before the first lookup.
TESTDNS=$IT_BIN/testdns
ALLOWED_NAME=allowed.mxc.test DENIED_NAME=denied.mxc.test
# dns_up DIR: build and start testdns (pid DIR/dns.pid, records DIR/dns.records, questions
# DIR/dns.log); sets DNS_ADDR (ip:port). dns_down DIR ends it.
dns_up() {
	local d=$1 i
	mkdir -p "$IT_BIN" "$d"
	(cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$TESTDNS" ./integration/clients/testdns) ||
		die "go build ./integration/clients/testdns failed"
	dns_down "$d"
	: >"$d/dns.records"; : >"$d/dns.log"; rm -f "$d/dns.addr"
	setsid "$TESTDNS" -listen 127.0.0.1:0 -records "$d/dns.records" -addr-file "$d/dns.addr" \
		-log "$d/dns.log" -timeout 60m >"$d/dns.err" 2>&1 </dev/null &
	echo $! >"$d/dns.pid"
	for ((i = 0; i < 40; i++)); do [ -s "$d/dns.addr" ] && break; sleep 0.25; done
	[ -s "$d/dns.addr" ] || { cat "$d/dns.err"; die "testdns did not start"; }
	DNS_ADDR=$(cat "$d/dns.addr")
	export DNS_ADDR
}
dns_down() { stop_pid "$1/dns.pid" 5; }
# dns_set DIR NAME ADDR [NAME ADDR]...: the records testdns serves (re-read on change)
dns_set() {
	local d=$1; shift
	while [ $# -ge 2 ]; do printf '%s %s\n' "$1" "$2"; shift 2; done >"$d/dns.records.tmp"
	mv "$d/dns.records.tmp" "$d/dns.records"
}
# node_config_dns: the node config lines that make the gate ask testdns
node_config_dns() { printf 'dns:\n  upstreams: ["%s"]\n' "$DNS_ADDR"; }

# gate_dir ID: the gate state dir (/run/mxc-egress/ns-*) holding container ID's ref
EGRESS_RUN_DIR=${EGRESS_RUN_DIR:-/run/mxc-egress}
gate_dir() { local r; r=$(ls -d "$EGRESS_RUN_DIR"/ns-*/refs/"$1" 2>/dev/null | sed -n 1p); [ -n "$r" ] && dirname "$(dirname "$r")"; }
# gate_upstream_is ID ADDR: container ID's gate serves and asks exactly ADDR upstream
gate_upstream_is() {
	local g; g=$(gate_dir "$1") || { echo "no gate holds container $1"; return 1; }
	jq -c .upstreams "$g/gate.json"
	[ "$(jq -r '.upstreams | join(" ")' "$g/gate.json")" = "$2" ]
}
# gate_proc GATEDIR: "pid starttime" of the process serving the gate (monitor or gate)
gate_proc() { cat "$1/gate.pid" 2>/dev/null; }
# proc_alive "PID STARTTIME": that very process still runs (not a reused pid)
proc_alive() {
	local p=${1% *} st=${1#* } f
	[ -n "$p" ] && [ -r "/proc/$p/stat" ] || return 1
	f=$(sed 's/.*) //' "/proc/$p/stat" | awk '{print $20}')
	[ "$f" = "$st" ]
}
# egress_gone GATEDIR GATEPROC ROOT ID: the gate's state, the process that served it,
# the container's monitor and its runtime state are gone
egress_gone() {
	local g=$1 gp=$2 root=$3 id=$4 i
	for ((i = 0; i < 40; i++)); do
		{ [ -z "$g" ] || [ ! -e "$g" ]; } && ! proc_alive "$gp" &&
			! pgrep -f "policy-monitor $root/$id/" >/dev/null && [ ! -e "$root/$id" ] && return 0
		sleep 0.25
	done
	echo "left: gate dir ${g:-?} ($(ls -A "$g" 2>&1 | tr '\n' ' ')), gate process ${gp:-?}: $(proc_alive "$gp" && echo alive)"
	pgrep -af "policy-monitor $root/$id/"; ls -d "$root/$id" 2>&1
	return 1
}
# nft_table_gone NETNS_PATH: the namespace is gone, or holds no mxc table
nft_table_gone() { [ ! -e "$1" ] || ! nsenter --net="$1" nft list tables 2>/dev/null | qgrep 'inet mxc'; }
# in-container probes (busybox): resolve, HTTP GET with nc (Debian's static busybox
# wget segfaults on some paths), connect
PROBE_GET="printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3"
# render_node_policies DIR: deploy/mxc/policies/* as a node's /etc/mxc/policies in DIR;
# allowlist-node.yaml with its allowed name and port swapped for $ALLOWED_NAME tcp/80
# and, once DNS_ADDR is set (dns_up), the gate's upstream pointed at testdns
render_node_policies() {
	local d=$1 f
	mkdir -p "$d"
	for f in "$DEPLOY_DIR"/mxc/policies/*.yaml; do cp "$f" "$d/"; done
	render_snippet "$DEPLOY_DIR/mxc/policies/allowlist-node.yaml" \
		-e "s|host: api\.openai\.com|host: $ALLOWED_NAME|" -e 's|port: 443|port: 80|' >"$d/allowlist-node.yaml"
	grep -q "host: $ALLOWED_NAME" "$d/allowlist-node.yaml" || die "allowlist-node.yaml: no api.openai.com rule to render"
	[ -n "${DNS_ADDR:-}" ] && node_config_dns >>"$d/allowlist-node.yaml"
	true
}
# audit_has JQ_COND: some audit event (JSON lines on stdin) satisfies JQ_COND
audit_has() { jq -s -e "any(.[]; $1)" >/dev/null; }
# steps run in a bash of their own: the probes must be visible there
export -f audit_has gate_dir gate_upstream_is gate_proc proc_alive egress_gone nft_table_gone
export EGRESS_RUN_DIR ALLOWED_NAME DENIED_NAME PROBE_GET
# egress_live GATEPROC ROOT ID NETNS: while the container runs, its monitor runs, the gate
# is served and the namespace holds the mxc table (what egress_gone then finds gone)
egress_live() {
	pgrep -af "policy-monitor $2/$3/" && proc_alive "$1" && nsenter --net="$4" nft list tables | grep -x 'table inet mxc'
}
export -f egress_live
