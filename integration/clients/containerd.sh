#!/usr/bin/env bash
# containerd.sh up|down - a private containerd (own root, state, sockets, config; no
# systemd), in $MXC_IT_DIR/$CTD_NAME.  Env:
#   CTD_NAME      dir name (default ctd)            CTD_BIN  dir of containerd + ctr
#   CTD_VERSION   3 (containerd 2.x config) | 2 (containerd 1.6)
#   CRI=0|1       enable the CRI plugin: handler runc (default) + CNI bridge from
#                 /usr/lib/cni + $PAUSE_REF as sandbox image + registry mirror to $REGISTRY
#   IMPORTS       config drop-ins to import (a rendered deploy/containerd snippet, 2.x)
#   APPENDS       config fragments appended to config.toml (the containerd 1.x way)
#   SHIM_PATH     dirs put first on containerd's PATH (where it finds containerd-shim-*-v2)
#   CNI_SUBNET=10.244.77.0/24 CNI_BRIDGE=mxc-it-cni0 STREAM_PORT=10077
# up is idempotent (a running instance is reused); down removes every task, container
# and pod, stops the daemon, kills shims still bound to its socket (by pid), unmounts
# leftovers, deletes the CNI bridge and its iptables rules.  PURGE=1 deletes the dir.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
CTD_NAME=${CTD_NAME:-ctd}
D=$MXC_IT_DIR/$CTD_NAME
CTD_BIN=${CTD_BIN:-/usr/bin}
CTD_VERSION=${CTD_VERSION:-2}
CRI=${CRI:-0}
CNI_SUBNET=${CNI_SUBNET:-10.244.77.0/24}
CNI_BRIDGE=${CNI_BRIDGE:-mxc-it-cni0}
CNI_NET=mxc-it-$CTD_NAME
STREAM_PORT=${STREAM_PORT:-10077}
SOCK=$D/containerd.sock
c() { timeout 30 "$CTD_BIN/ctr" --address "$SOCK" "$@"; }

running() { [ -s "$D/containerd.pid" ] && kill -0 "$(cat "$D/containerd.pid")" 2>/dev/null && c version >/dev/null 2>&1; }

config_v3() {
	cat <<T
version = 3
root = "$D/root"
state = "$D/state"
imports = ["$D/conf.d/*.toml"]
$([ "$CRI" = 1 ] || echo 'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.sandbox.controller.v1.shim"]')
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$D/debug.sock"
  level = "${CTD_LOG_LEVEL:-info}"
T
	[ "$CRI" = 1 ] || return 0
	cat <<T
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '$PAUSE_REF'
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '$D/certs.d'
[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # sandboxes get oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which root
  # lacks on these VMs: clamp to containerd's own score
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$(command -v runc)'
        Root = '$D/runc-root'
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '$D/cni/net.d'
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '$STREAM_PORT'
T
}

config_v2() {
	cat <<T
version = 2
root = "$D/root"
state = "$D/state"
imports = ["$D/conf.d/*.toml"]
$([ "$CRI" = 1 ] || echo 'disabled_plugins = ["io.containerd.grpc.v1.cri"]')
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$D/debug.sock"
  level = "${CTD_LOG_LEVEL:-info}"
T
	[ "$CRI" = 1 ] || return 0
	cat <<T
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_REF"
  stream_server_address = "127.0.0.1"
  stream_server_port = "$STREAM_PORT"
  enable_selinux = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$D/runc-root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$D/certs.d"
T
}

up() {
	need "$CTD_BIN/containerd" "$CTD_BIN/ctr"
	if running; then echo "containerd $CTD_NAME already running (pid $(cat "$D/containerd.pid"))"; return; fi
	mkdir -p "$D/root" "$D/state" "$D/conf.d" "$D/runc-root"
	rm -f "$D"/conf.d/*.toml
	local f
	for f in ${IMPORTS:-}; do cp "$f" "$D/conf.d/"; done
	{
		if [ "$CTD_VERSION" = 3 ]; then config_v3; else config_v2; fi
		for f in ${APPENDS:-}; do echo; cat "$f"; done
	} >"$D/config.toml"
	if [ "$CRI" = 1 ]; then
		mkdir -p "$D/cni/net.d"
		# portmap's shared chains (CNI-HOSTPORT-*): down removes them if this run made them
		iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 || touch "$D/cni/hostport.made"
		cat >"$D/cni/net.d/10-mxc-it.conflist" <<J
{ "cniVersion": "1.0.0", "name": "$CNI_NET",
  "plugins": [
    { "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": "$D/cni/ipam", "ranges": [[{ "subnet": "$CNI_SUBNET" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" } ] }
J
		local h
		for h in registry.k8s.io k8s.gcr.io gcr.io docker.io; do
			mkdir -p "$D/certs.d/$h"
			printf 'server = "https://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
				"$h" "$REGISTRY" >"$D/certs.d/$h/hosts.toml"
		done
		# the CNI bridge and hostPort need forwarding; restored by down
		[ -f "$D/ip_forward.saved" ] || sysctl -n net.ipv4.ip_forward >"$D/ip_forward.saved"
		sysctl -qw net.ipv4.ip_forward=1
		# pod netns bind mounts live in /run/netns: make it a shared mount up front (as
		# `ip netns add` does), else a pod's netns mount can hide under the one containerd
		# makes lazily ("unlinkat /run/netns/cni-...: device or resource busy")
		mkdir -p /run/netns
		awk '$5=="/run/netns"' /proc/self/mountinfo | qgrep . || mount --bind /run/netns /run/netns
		mount --make-shared /run/netns
	fi
	PATH="${SHIM_PATH:+$SHIM_PATH:}$CTD_BIN:$PATH" setsid "$CTD_BIN/containerd" --config "$D/config.toml" \
		>"$D/containerd.log" 2>&1 </dev/null &
	echo $! >"$D/containerd.pid"
	wait_for 30 c version >/dev/null || { tail -30 "$D/containerd.log"; exit 1; }
	if [ "$CRI" = 1 ] && [ -x "${CRICTL:-}" ]; then
		# containerd answers before its CRI plugin has initialised (1.6: "server is
		# not initialized yet"): the caller's first CRI call must not race that
		wait_for 30 timeout 10 "$CRICTL" -r "unix://$SOCK" info >/dev/null || { tail -30 "$D/containerd.log"; exit 1; }
	fi
	echo "containerd $CTD_NAME up: pid $(cat "$D/containerd.pid") socket $SOCK"
}

down() {
	if running; then
		if [ "$CRI" = 1 ] && [ -x "${CRICTL:-}" ]; then
			timeout 120 "$CRICTL" -r "unix://$SOCK" rmp -fa >/dev/null 2>&1 || true
		fi
		local ns t k
		for ns in $(c namespaces ls -q 2>/dev/null); do
			for t in $(c -n "$ns" tasks ls -q 2>/dev/null); do
				c -n "$ns" tasks kill -s KILL "$t" >/dev/null 2>&1; sleep 0.2
				c -n "$ns" tasks rm -f "$t" >/dev/null 2>&1
			done
			for k in $(c -n "$ns" containers ls -q 2>/dev/null); do c -n "$ns" containers rm "$k" >/dev/null 2>&1; done
		done
	fi
	stop_pid "$D/containerd.pid" 15
	# shims outlive containerd by design: end those serving our socket (by pid)
	local p
	for p in $(pgrep -f "containerd-shim.* -address $SOCK( |$)" || true); do kill -KILL "$p" 2>/dev/null || true; done
	# (the mxc shim's spare among them, "-mxc-spare -address $SOCK"; it would end by
	# itself once the socket is gone) and the spare's socket and lock
	rm -f "/run/mxc-shim/$(spare_key "$SOCK").sock" "/run/mxc-shim/$(spare_key "$SOCK").lock"
	umount_under "$D"
	if [ -d "$D/cni" ]; then
		ip link del "$CNI_BRIDGE" 2>/dev/null || true
		# bridge plugin NAT rules carry the network name in their comment; the
		# per-container chains they jump to (CNI-<hash>) are emptied with them
		local t r c chains
		for t in nat filter; do
			chains=$(iptables -t $t -S 2>/dev/null | grep '^-A' | grep -- "$CNI_NET" |
				grep -o -- '-j CNI-[0-9a-f]*' | awk '{print $2}' | sort -u || true)
			{ iptables -t $t -S 2>/dev/null | grep '^-A' | grep -- "$CNI_NET" | sed 's/^-A/-D/' |
				while read -r r; do eval "iptables -t $t $r" 2>/dev/null || true; done; } || true
			for c in $chains; do
				iptables -t $t -F "$c" 2>/dev/null || true
				iptables -t $t -X "$c" 2>/dev/null || true
			done
		done
		if [ -f "$D/cni/hostport.made" ]; then
			{ iptables -t nat -S 2>/dev/null | grep '^-A' | grep -- '-j CNI-HOSTPORT-' | sed 's/^-A/-D/' |
				while read -r r; do eval "iptables -t nat $r" 2>/dev/null || true; done; } || true
			for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do
				iptables -t nat -F "$c" 2>/dev/null || true
				iptables -t nat -X "$c" 2>/dev/null || true
			done
			rm -f "$D/cni/hostport.made"
		fi
		rm -rf "$D/cni/ipam"
	fi
	if [ -f "$D/ip_forward.saved" ]; then
		sysctl -qw net.ipv4.ip_forward="$(cat "$D/ip_forward.saved")"; rm -f "$D/ip_forward.saved"
	fi
	[ "${PURGE:-0}" = 1 ] && rm -rf "$D"
	echo "containerd $CTD_NAME down"
}

case ${1:-} in
up) up ;;
down) down ;;
*) die "usage: containerd.sh up|down" ;;
esac
