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
# netavark turns on IPv4 forwarding for its bridge: down puts it back
ip_forward_before=$(sysctl -n net.ipv4.ip_forward)
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
	sysctl -qw net.ipv4.ip_forward="$ip_forward_before"
	dns_down "$D"
	[ "${PURGE:-0}" = 1 ] && { umount_under "$D"; rm -rf "$D"; }
	true
}
trap down EXIT
down
I=localhost/busybox-local:latest
step "load image"                       "pm image exists $I || pm load -q -i $IMAGES_DIR/busybox-local.tar"
I=$(pm images --format '{{.Repository}}:{{.Tag}}' | grep busybox-local | sed -n 1p)
export I
echo "== podman 4.3 + containers.conf runtime mxc -> $MXC_RUNTIME"
step "run --rm --runtime mxc"           "pm --runtime mxc run --rm $I echo hi | qgrep -x hi"
step "run --rm --runtime PATH"          "pm --runtime $MXC_RUNTIME run --rm $I echo hi | qgrep -x hi"
step "run --rm: exit status 6 comes back" "pm --runtime mxc run --rm $I sh -c 'exit 6'; [ \$? = 6 ]"
step "run --rm --network none"          "links=\$(pm --runtime mxc run --rm --network none $I ip -o link | awk '{print \$2}' | tr -d :); echo \$links; [ \"\$links\" = lo ]"
step "run -d"                           "pm --runtime mxc run -d --name mxc-it-p --annotation io.mxc.identity=podman-agent --annotation other.example/x=y $I sleep 1000"
step "the container runs on the runtime" "pm inspect -f '{{.OCIRuntime}}' mxc-it-p | qgrep -x mxc"
step "--annotation io.mxc.* in the OCI config" "jq -e '.annotations[\"io.mxc.identity\"] == \"podman-agent\"' $D/root/overlay-containers/\$(pm inspect -f '{{.Id}}' mxc-it-p)/userdata/config.json"
step "exec"                             "pm exec mxc-it-p echo exec-ok | qgrep -x exec-ok"
step "exec exit status"                 "pm exec mxc-it-p sh -c 'exit 4'; [ \$? = 4 ]"
step "stop"                             "pm stop -t 2 mxc-it-p"
step "rm"                               "pm rm mxc-it-p"

# podman_csv VALUE: VALUE as one CSV field, as podman's --annotation (a string-slice
# flag) needs it when the value holds quotes or commas (JSON does)
podman_csv() { local v=${1//\"/\"\"}; printf '"%s"' "$v"; }

# web NAME: a busybox httpd container on podman's default network (no policy): a
# destination this test owns; prints its address
web() {
	pm --runtime mxc run -d --name "$1" $I sh -c 'mkdir -p /www && echo hello-mxc >/www/index.html && exec httpd -f -p 80 -h /www' >/dev/null &&
		pm inspect -f '{{.NetworkSettings.IPAddress}}' "$1"
}

policy_checks() {
	# the gate's upstream: testdns on the host's loopback, named by the node config
	# (what /etc/mxc/config.yaml would say on a node)
	dns_up "$D"; NODE_CONFIG=$D/config.yaml; node_config_dns >"$NODE_CONFIG"
	local P="--annotation io.mxc.fs.readonly=/ --annotation io.mxc.fs.readwrite=/tmp --annotation io.mxc.fs.deny=/etc/hostname"
	step "policy: write inside readwrite path"    "pm --runtime mxc run --rm $P $I sh -c 'echo ok >/tmp/x && cat /tmp/x' | qgrep -x ok"
	step "policy: write outside readwrite denied" "! pm --runtime mxc run --rm $P $I sh -c 'echo bad >/root/x'"
	step "policy: denied path unreadable"         "! pm --runtime mxc run --rm $P $I cat /etc/hostname"
	step "policy: invalid policy refused"         "! pm --runtime mxc run --rm --annotation io.mxc.isolation=bogus $I true"
	# destinations on podman's own bridge; names for them served by testdns
	local a b get_a get_b
	a=$(web mxc-it-dst-a) b=$(web mxc-it-dst-b)
	echo "destinations: $ALLOWED_NAME -> $a, $DENIED_NAME -> $b (testdns $DNS_ADDR)"
	dns_set "$D" "$ALLOWED_NAME" "$a" "$DENIED_NAME" "$b"
	get_a="$PROBE_GET $a 80" get_b="$PROBE_GET $b 80"
	step "policy: no policy reaches both destinations $a, $b" "pm --runtime mxc run --rm $I sh -c \"$get_a && $get_b\" | grep -c hello-mxc | qgrep -x 2"
	step "policy: egress to $a:80 allowed (io.mxc.network.allow CIDR)" "pm --runtime mxc run --rm --annotation io.mxc.network.allow=$a/32:80 $I sh -c \"$get_a\" | qgrep hello-mxc"
	step "policy: egress to $a denied (allowed elsewhere only)" "! pm --runtime mxc run --rm --annotation io.mxc.network.allow=192.0.2.1/32:443 $I sh -c \"$get_a\" | qgrep hello-mxc"
	# --runtime PATH and the whole policy in --annotation io.mxc.policy: file rules and
	# egress by name; the node config (the gate's upstream) as a runtime flag, the way
	# podman hands a runtime its global options (--runtime-flag config=FILE: --config)
	local pol c=mxc-it-eg id g gp pid root=/run/mxc
	pol=$(jq -cn --arg h "$ALLOWED_NAME" '{apiVersion: "mxc.dev/v1alpha1", kind: "AgentPolicy",
		identity: {agent: "podman-agent"},
		filesystem: {readonlyPaths: ["/"], readwritePaths: ["/tmp"], deniedPaths: ["/etc/hostname"]},
		network: {egress: {default: "deny", allow: [{to: [{host: $h}], ports: [{protocol: "tcp", port: 80}]}]}}}')
	# podman reads --annotation as a CSV list (a string-slice flag): a JSON value,
	# with its quotes and commas, must come as one CSV field ("..." with "" for ")
	local ann; ann=$(podman_csv "io.mxc.policy=$pol")
	printf '%s\n' "$ann" >"$D/policy.annotation"
	step "[policy] run -d --runtime PATH --annotation io.mxc.policy=..." "
		pm --runtime $MXC_RUNTIME --runtime-flag config=$NODE_CONFIG run -d --name $c --annotation \"\$(cat $D/policy.annotation)\" $I sh -c 'trap \"exit 0\" TERM; sleep 1000 & wait'"
	step "[policy] io.mxc.policy reached config.json whole" "
		jq -e --argjson p '$pol' '.annotations[\"io.mxc.policy\"] | fromjson == \$p' $D/root/overlay-containers/\$(pm inspect -f '{{.Id}}' $c)/userdata/config.json"
	id=$(pm inspect -f '{{.Id}}' $c 2>/dev/null) pid=$(pm inspect -f '{{.State.Pid}}' $c 2>/dev/null)
	step "[policy] effective policy stored with the container" "'$MXC_RUNTIME' policy show $id | jq -e '.policy.identity.agent == \"podman-agent\" and (.policy.network.egress.allow[0].to[0].host == \"$ALLOWED_NAME\")'"
	step "[policy] file: write inside readwrite path" "pm exec $c sh -c 'echo ok >/tmp/x && cat /tmp/x' | qgrep -x ok"
	step "[policy] file: write outside readwrite denied" "! pm exec $c sh -c 'echo bad >/root/x'"
	step "[policy] file: denied path unreadable" "! pm exec $c cat /etc/hostname"
	if step "[policy] egress: the gate asks testdns $DNS_ADDR" "gate_upstream_is '$id' $DNS_ADDR"; then
		g=$(gate_dir "$id") gp=$(gate_proc "$g")
		step "[policy] egress: table in the container's netns, gate served, monitor up" "egress_live '$gp' $root $id /proc/$pid/ns/net"
		step "[policy] egress: $ALLOWED_NAME resolves to $a" "pm exec $c nslookup $ALLOWED_NAME | tee /dev/stderr | qgrep 'Address:* $a\$'"
		step "[policy] egress: $ALLOWED_NAME:80 reachable by name" "pm exec $c sh -c \"$PROBE_GET $ALLOWED_NAME 80\" | qgrep hello-mxc"
		step "[policy] egress: $DENIED_NAME REFUSED by the gate" "
			out=\$(pm exec $c nslookup $DENIED_NAME 2>&1); echo \"\$out\"; echo \"\$out\" | qgrep REFUSED && ! echo \"\$out\" | qgrep '$b'"
		step "[policy] egress: $DENIED_NAME unreachable by name" "! pm exec $c sh -c \"$PROBE_GET $DENIED_NAME 80\" | qgrep hello-mxc"
		step "[policy] egress: direct address $b refused at once (reset)" "
			out=\$(pm exec $c sh -c \"$get_b\" 2>&1); rc=\$?; echo \"rc=\$rc \$out\"; [ \$rc != 0 ] && echo \"\$out\" | qgrep -i refused"
		step "[policy] audit has dns.deny $DENIED_NAME, net.deny $b (agent podman-agent)" "
			ev=\$('$MXC_RUNTIME' events --audit --no-follow $id); echo \"\$ev\" | tail -5
			echo \"\$ev\" | audit_has '.kind==\"dns.deny\" and .detail.name==\"$DENIED_NAME\" and .agent==\"podman-agent\"' &&
			echo \"\$ev\" | audit_has '.kind==\"net.deny\" and .detail.dst==\"$b\" and .detail.port==\"80\"'"
	else
		skip "[policy] egress by name: the gate's upstream is not the test's"
	fi
	step "[policy] stop" "pm stop -t 2 $c"
	step "[policy] rm"   "pm rm $c"
	step "[policy] no gate, monitor or runtime state left" "[ -n '$id' ] && egress_gone '${g:-}' '${gp:-}' $root $id"
	step "egress: $DENIED_NAME never reached the upstream" "cat $D/dns.log; grep -q '^$ALLOWED_NAME ' $D/dns.log && ! grep -q '^$DENIED_NAME ' $D/dns.log"
	pm rm -f -t 0 mxc-it-dst-a mxc-it-dst-b >/dev/null
}
run_policy_checks
step "no containers left"               "! pm ps -aq | grep ."
summary "test-podman ($MXC_RUNTIME)"
