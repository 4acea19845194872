#!/usr/bin/env bash
# test-podman.sh - flow (e): podman 4.3 with the runtime from deploy/podman/containers.conf
# (`--runtime mxc`) and by path (`--runtime PATH`), on a private store: run --rm and exit
# status, run -d + exec + stop + rm, --network none, io.mxc.* --annotation reaching the
# OCI config; policy checks with mxc-runtime (--annotation io.mxc.*).
# Env: MXC_RUNTIME (default /usr/bin/crun standing in).
# This VM's root lacks CAP_SYS_RESOURCE, so podman's default rlimits (nofile/nproc
# 1048576) fail in the runtime: pinned to the current hard limits (default_ulimits).
# Prints "N passed, N failed"; exit 1 on failure.  Cleans up on any exit.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
default_runtime /usr/bin/crun
need podman jq
D=$MXC_IT_DIR/podman
"$IT_HERE/make-images.sh" base >/dev/null || die "images failed"
mkdir -p "$D"
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
# test settings, then deploy/podman/containers.conf with this run's runtime path
{
	cat <<C
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
C
	render_snippet "$DEPLOY_DIR/podman/containers.conf" -e "s|/usr/local/bin/mxc-runtime|$MXC_RUNTIME|g"
} >"$D/containers.conf"
export CONTAINERS_CONF=$D/containers.conf
pm() { timeout -k 5 90 podman --root "$D/root" --runroot "$D/runroot" --tmpdir "$D/tmp" "$@"; }
export -f pm; export D
# podman's default network (netavark: bridge podman0 + NETAVARK* iptables chains; CNI:
# cni-podman0): what this run creates, down removes
had_podman0=0 had_cni0=0 had_chains=0
ip link show podman0 >/dev/null 2>&1 && had_podman0=1
ip link show cni-podman0 >/dev/null 2>&1 && had_cni0=1
iptables -S NETAVARK_FORWARD >/dev/null 2>&1 && had_chains=1
down() {
	pm rm -af -t 0 >/dev/null 2>&1
	umount_under "$D/runroot"; umount_under "$D/root/overlay"
	rm -rf "$D/runroot" "$D/tmp"
	[ $had_podman0 = 0 ] && ip link del podman0 2>/dev/null
	[ $had_cni0 = 0 ] && ip link del cni-podman0 2>/dev/null
	if [ $had_chains = 0 ]; then
		local t r c
		for t in filter nat; do
			iptables -t $t -S 2>/dev/null | grep '^-A' | grep -- '-j NETAVARK' | sed 's/^-A/-D/' |
				while read -r r; do eval "iptables -t $t $r" 2>/dev/null; done
			for c in $(iptables -t $t -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^NETAVARK/ {print $2}'); do
				iptables -t $t -F "$c" 2>/dev/null
			done
			for c in $(iptables -t $t -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^NETAVARK/ {print $2}'); do
				iptables -t $t -X "$c" 2>/dev/null
			done
		done
	fi
	[ "${PURGE:-0}" = 1 ] && { umount_under "$D"; rm -rf "$D"; }
	true
}
trap down EXIT
down
I=localhost/busybox-local:latest
step "load image"                       "pm image exists $I || pm load -q -i $IMAGES_DIR/busybox-local.tar"
I=$(pm images --format '{{.Repository}}:{{.Tag}}' | grep busybox-local | head -1)
export I
echo "== podman 4.3 + containers.conf runtime mxc -> $MXC_RUNTIME"
step "run --rm --runtime mxc"           "pm --runtime mxc run --rm $I echo hi | grep -qx hi"
step "run --rm --runtime PATH"          "pm --runtime $MXC_RUNTIME run --rm $I echo hi | grep -qx hi"
step "run --rm: exit status 6 comes back" "pm --runtime mxc run --rm $I sh -c 'exit 6'; [ \$? = 6 ]"
step "run --rm --network none"          "links=\$(pm --runtime mxc run --rm --network none $I ip -o link | awk '{print \$2}' | tr -d :); echo \$links; [ \"\$links\" = lo ]"
step "run -d"                           "pm --runtime mxc run -d --name mxc-it-p --annotation io.mxc.identity=podman-agent --annotation other.example/x=y $I sleep 1000"
step "the container runs on the runtime" "pm inspect -f '{{.OCIRuntime}}' mxc-it-p | grep -qx mxc"
step "--annotation io.mxc.* in the OCI config" "jq -e '.annotations[\"io.mxc.identity\"] == \"podman-agent\"' $D/root/overlay-containers/\$(pm inspect -f '{{.Id}}' mxc-it-p)/userdata/config.json"
step "exec"                             "pm exec mxc-it-p echo exec-ok | grep -qx exec-ok"
step "exec exit status"                 "pm exec mxc-it-p sh -c 'exit 4'; [ \$? = 4 ]"
step "stop"                             "pm stop -t 2 mxc-it-p"
step "rm"                               "pm rm mxc-it-p"

policy_checks() {
	# TODO(policy): extended by the lead as policy/egress support lands.
	local P="--annotation io.mxc.fs.readonly=/ --annotation io.mxc.fs.readwrite=/tmp --annotation io.mxc.fs.deny=/etc/hostname"
	step "policy: write inside readwrite path"    "pm --runtime mxc run --rm $P $I sh -c 'echo ok >/tmp/x && cat /tmp/x' | grep -qx ok"
	step "policy: write outside readwrite denied" "! pm --runtime mxc run --rm $P $I sh -c 'echo bad >/root/x'"
	step "policy: denied path unreadable"         "! pm --runtime mxc run --rm $P $I cat /etc/hostname"
	step "policy: invalid policy refused"         "! pm --runtime mxc run --rm --annotation io.mxc.isolation=bogus $I true"
	# egress to a container on podman's own bridge (nc: busybox-static wget can segfault)
	pm --runtime mxc run -d --name mxc-it-dst $I sh -c 'mkdir -p /www && echo hello-mxc >/www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
	local dst; dst=$(pm inspect -f '{{.NetworkSettings.IPAddress}}' mxc-it-dst)
	local get="printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $dst 80"
	step "policy: egress to $dst:80 allowed (io.mxc.network.allow)" "pm --runtime mxc run --rm --annotation io.mxc.network.allow=$dst/32:80 $I sh -c \"$get\" | grep -q hello-mxc"
	step "policy: egress to $dst denied (allowed elsewhere only)" "! pm --runtime mxc run --rm --annotation io.mxc.network.allow=192.0.2.1/32:443 $I sh -c \"$get\" | grep -q hello-mxc"
	pm rm -f -t 0 mxc-it-dst >/dev/null
}
if policy_checks_enabled; then policy_checks; else skip "policy checks: $MXC_RUNTIME is not mxc-runtime"; fi
step "no containers left"               "! pm ps -aq | grep ."
summary "test-podman ($MXC_RUNTIME)"
