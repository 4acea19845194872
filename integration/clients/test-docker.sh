#!/usr/bin/env bash
# test-docker.sh - flow (d): Debian's dockerd 20.10 started here with its own data root,
# exec root and socket, its runtimes from deploy/docker/daemon.json (mxc, and mxc-offline
# pinning a node policy with runtimeArgs --config): run --rm and exit status, run -d +
# exec + stop + rm, pause, on the default bridge and on --network none; the runtime
# under test really is the one called (argv traced), runtimeArgs reach it; policy
# checks with mxc-runtime (egress denied by the mxc-offline node policy).
# Env: MXC_RUNTIME (default /usr/bin/crun standing in), DOCKER_BIP (10.244.79.1/24).
# Prints "N passed, N failed"; exit 1 on failure.  Cleans up on any exit.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
default_runtime /usr/bin/crun
need dockerd /usr/bin/docker jq iptables
D=$MXC_IT_DIR/docker
SOCK=unix://$D/docker.sock
DOCKER=/usr/bin/docker # Debian's 20.10 client (a newer one may be first on PATH)
dk() { DOCKER_HOST=$SOCK timeout -k 5 90 "$DOCKER" "$@"; }
export -f dk; export SOCK DOCKER D
"$IT_HERE/make-images.sh" base >/dev/null || die "images failed"

down() {
	if [ -s "$D/dockerd.pid" ] && kill -0 "$(cat "$D/dockerd.pid")" 2>/dev/null; then
		ids=$(dk ps -aq 2>/dev/null); [ -n "$ids" ] && dk rm -f $ids >/dev/null 2>&1
	fi
	stop_pid "$D/dockerd.pid" 30
	# the containerd dockerd started (it records its pid under the exec root)
	local cp; cp=$(cat "$D/exec/containerd/containerd.pid" 2>/dev/null || true)
	if [ -n "$cp" ] && grep -q "$D/exec" "/proc/$cp/cmdline" 2>/dev/null; then
		echo "$cp" >"$D/ctd.pid"; stop_pid "$D/ctd.pid" 10
	fi
	umount_under "$D"
	# dockerd 20.10 leaves docker0 and its iptables chains; remove them unless another
	# dockerd is running on this host
	if ! pgrep -x dockerd >/dev/null; then
		ip link del docker0 2>/dev/null
		local t r c
		for t in filter nat; do
			iptables -t $t -S 2>/dev/null | grep '^-A' | grep -E 'docker0|DOCKER' | sed 's/^-A/-D/' |
				while read -r r; do eval "iptables -t $t $r" 2>/dev/null; done
			for c in DOCKER DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2 DOCKER-USER; do
				iptables -t $t -F $c 2>/dev/null; iptables -t $t -X $c 2>/dev/null
			done
		done
	fi
	if [ -f "$D/host-net.saved" ]; then
		. "$D/host-net.saved"
		[ -n "${ip_forward:-}" ] && sysctl -qw net.ipv4.ip_forward="$ip_forward"
		[ -n "${forward_policy:-}" ] && iptables -P FORWARD "$forward_policy"
		rm -f "$D/host-net.saved"
	fi
	rm -rf "$D/exec"
	dns_down "$D"
}
trap down EXIT
down

mkdir -p "$D/data" "$D/exec" "$D/trace"
[ -f "$D/host-net.saved" ] || {
	echo "ip_forward=$(sysctl -n net.ipv4.ip_forward)"
	echo "forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1=="-P"{print $3}')"
} >"$D/host-net.saved"
# both entries call the runtime through a tracing wrapper (logs argv, and for a
# stand-in drops mxc's --config, which only mxc-runtime knows)
make_trace_wrapper "$MXC_RUNTIME" "$D/trace/mxc-runtime" "$D/trace.log"
: >"$D/trace.log"
# the gate's upstream for the policy checks: testdns on the host's loopback
policy_checks_enabled && timed dns_up "$D"
# the node's /etc/mxc/policies (deploy/mxc/policies, allowlist rendered for the test)
POLICIES=$D/policies
render_node_policies "$POLICIES"
NODE_POLICY=$POLICIES/offline-node.yaml
# deploy/docker/daemon.json with this run's paths, plus the test daemon's own settings
jq --arg rt "$D/trace/mxc-runtime" --arg pol "$POLICIES/" --arg bip "${DOCKER_BIP:-10.244.79.1/24}" '
	.runtimes |= with_entries(.value.path = $rt
		| if .value.runtimeArgs then .value.runtimeArgs |= map(sub("^/etc/mxc/policies/"; $pol)) else . end)
	| . + {"storage-driver": "overlay2", "log-level": "warn", "bip": $bip}' \
	"$DEPLOY_DIR/docker/daemon.json" >"$D/daemon.json" || die "rendering daemon.json failed"
# dockerd starts its own containerd (Debian's 1.6) under the exec root
setsid dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" \
	--pidfile "$D/dockerd.pid" -H "$SOCK" >"$D/dockerd.log" 2>&1 </dev/null &
wait_for 60 dk version >/dev/null || { tail -30 "$D/dockerd.log"; die "dockerd did not start"; }
dk image inspect busybox-local >/dev/null 2>&1 || dk load -i "$IMAGES_DIR/busybox-local.tar" >/dev/null || die "docker load failed"
I=busybox-local
export I

echo "== dockerd 20.10 + daemon.json runtimes mxc, mxc-offline -> $MXC_RUNTIME"
step "runtimes from deploy/docker/daemon.json" "dk info --format '{{json .Runtimes}}' | jq -e 'has(\"mxc\") and has(\"mxc-offline\") and has(\"mxc-allowlist\")'"
step "run --rm --runtime mxc"                 "dk run --rm --runtime mxc $I echo hi | qgrep -x hi"
step "the runtime under test was called"      "grep -q ' create --bundle ' $D/trace.log"
step "run --rm: exit status 5 comes back"     "dk run --rm --runtime mxc $I sh -c 'exit 5'; [ \$? = 5 ]"
step "run --rm --runtime mxc-offline: runtimeArgs reach the runtime" "
	: >$D/trace.log; dk run --rm --runtime mxc-offline $I true && grep -q -- '--config $NODE_POLICY .*create --bundle' $D/trace.log"
for net in bridge none; do
	c=mxc-it-$net
	step "[$net] run -d (httpd)"              "dk run -d --name $c --network $net --runtime mxc $I sh -c 'mkdir -p /www && echo hello-mxc >/www/index.html && exec httpd -f -p 80 -h /www'"
	step "[$net] inspect: runtime mxc"        "dk inspect -f '{{.HostConfig.Runtime}}' $c | qgrep -x mxc"
	step "[$net] exec"                        "dk exec $c sh -c 'echo exec-ok' | qgrep -x exec-ok"
	step "[$net] exec exit status"            "dk exec $c sh -c 'exit 4'; [ \$? = 4 ]"
	step "[$net] in-container http"           "for i in \$(seq 20); do dk exec $c wget -q -O- http://127.0.0.1/ | qgrep -x hello-mxc && exit 0; sleep 0.25; done; exit 1"
	if [ $net = none ]; then
		step "[none] only loopback"           "links=\$(dk exec $c ip -o link | awk '{print \$2}' | tr -d :); echo \$links; [ \"\$links\" = lo ]"
	else
		ip=$(dk inspect -f '{{.NetworkSettings.IPAddress}}' $c); echo "$ip" >"$D/web.ip"
		step "[bridge] host -> container $ip" "curl -fsS -m 3 http://$ip/ | qgrep -x hello-mxc"
		# nc, not wget: Debian's static busybox wget segfaults on this path
		step "[bridge] container -> container" "dk run --rm --runtime mxc $I sh -c 'printf \"GET / HTTP/1.0\r\n\r\n\" | nc -w 3 $ip 80' | qgrep hello-mxc"
	fi
	step "[$net] pause/unpause"               "dk pause $c && dk unpause $c"
	step "[$net] stop"                        "dk stop -t 5 $c"
	step "[$net] rm"                          "dk rm $c"
done

# web NAME: a busybox httpd container on the default bridge (runtime mxc, no policy): a
# destination this test owns; prints its address
web() {
	dk run -d --name "$1" --runtime mxc $I sh -c 'mkdir -p /www && echo hello-mxc >/www/index.html && exec httpd -f -p 80 -h /www' >/dev/null &&
		dk inspect -f '{{.NetworkSettings.IPAddress}}' "$1"
}

policy_checks() {
	# docker 20.10 has no --annotation: the policy comes from the node config the
	# runtime entry pins (runtimeArgs --config): mxc-offline denies all egress,
	# mxc-allowlist allows $ALLOWED_NAME tcp/80 by name, asking testdns upstream
	local a b get_a get_b
	a=$(web mxc-it-dst-a) b=$(web mxc-it-dst-b)
	echo "destinations: $ALLOWED_NAME -> $a, $DENIED_NAME -> $b (testdns $DNS_ADDR)"
	dns_set "$D" "$ALLOWED_NAME" "$a" "$DENIED_NAME" "$b"
	get_a="$PROBE_GET $a 80" get_b="$PROBE_GET $b 80"
	step "policy: mxc (no policy) reaches both destinations $a, $b" "
		dk run --rm --runtime mxc $I sh -c \"$get_a && $get_b\" | grep -c hello-mxc | qgrep -x 2"
	step "policy: mxc-offline (egress deny) cannot reach $a" "! dk run --rm --runtime mxc-offline $I sh -c \"$get_a\" | qgrep hello-mxc"
	step "policy: mxc-offline, --network none still runs" "dk run --rm --network none --runtime mxc-offline $I echo ok | qgrep -x ok"
	local net c id g gp root=$D/exec/runtime-runc/moby
	for net in bridge none; do
		c=mxc-it-eg-$net
		step "[$net] egress: run -d --runtime mxc-allowlist" "dk run -d --name $c --network $net --runtime mxc-allowlist $I sh -c 'trap \"exit 0\" TERM; sleep 1000 & wait'"
		id=$(dk inspect -f '{{.Id}}' $c 2>/dev/null)
		if ! step "[$net] egress: the gate asks testdns $DNS_ADDR" "gate_upstream_is '$id' $DNS_ADDR"; then
			# never look a name up through an upstream this test does not own
			skip "[$net] egress by name: the gate's upstream is not the test's"; dk rm -f $c >/dev/null 2>&1; continue
		fi
		g=$(gate_dir "$id") gp=$(gate_proc "$g")
		step "[$net] egress: table in the container's netns, gate served, monitor up" "egress_live '$gp' $root $id /proc/\$(dk inspect -f '{{.State.Pid}}' $c)/ns/net"
		# the resolver of resolv.conf (the host's) on the bridge; without a route
		# (--network none) only a loopback address can be asked at all
		local srv=; [ $net = none ] && srv=127.0.0.1
		step "[$net] egress: exec: $ALLOWED_NAME resolves to $a${srv:+ (resolver $srv)}" "dk exec $c nslookup $ALLOWED_NAME $srv | tee /dev/stderr | qgrep 'Address:* $a\$'"
		step "[$net] egress: exec: $DENIED_NAME REFUSED by the gate" "
			out=\$(dk exec $c nslookup $DENIED_NAME $srv 2>&1); echo \"\$out\"; echo \"\$out\" | qgrep REFUSED && ! echo \"\$out\" | qgrep '$b'"
		if [ $net = bridge ]; then
			step "[bridge] egress: $ALLOWED_NAME:80 reachable by name" "dk exec $c sh -c \"$PROBE_GET $ALLOWED_NAME 80\" | qgrep hello-mxc"
			step "[bridge] egress: $DENIED_NAME unreachable by name" "! dk exec $c sh -c \"$PROBE_GET $DENIED_NAME 80\" | qgrep hello-mxc"
			step "[bridge] egress: direct address $b refused at once (reset)" "
				out=\$(dk exec $c sh -c \"$get_b\" 2>&1); rc=\$?; echo \"rc=\$rc \$out\"; [ \$rc != 0 ] && echo \"\$out\" | qgrep -i refused"
			step "[bridge] egress: audit has dns.deny $DENIED_NAME, net.deny $b" "
				ev=\$('$MXC_RUNTIME' --root $root events --audit --no-follow $id); echo \"\$ev\" | tail -5
				echo \"\$ev\" | audit_has '.kind==\"dns.deny\" and .detail.name==\"$DENIED_NAME\"' &&
				echo \"\$ev\" | audit_has '.kind==\"net.deny\" and .detail.dst==\"$b\" and .detail.port==\"80\"'"
		else
			step "[none] egress: only loopback, $a unreachable" "
				dk exec $c ip -o link | awk '{print \$2}' | tr -d : | qgrep -x lo && ! dk exec $c sh -c \"$get_a\" | qgrep hello-mxc"
			step "[none] egress: audit has dns.deny $DENIED_NAME" "
				'$MXC_RUNTIME' --root $root events --audit --no-follow $id | audit_has '.kind==\"dns.deny\" and .detail.name==\"$DENIED_NAME\"'"
		fi
		step "[$net] egress: stop"  "dk stop -t 2 $c"
		step "[$net] egress: rm"    "dk rm $c"
		step "[$net] egress: no gate, monitor or runtime state left" "egress_gone '$g' '$gp' $root $id"
	done
	step "egress: $DENIED_NAME never reached the upstream" "
		cat $D/dns.log; grep -q '^$ALLOWED_NAME ' $D/dns.log && ! grep -q '^$DENIED_NAME ' $D/dns.log"
	dk rm -f mxc-it-dst-a mxc-it-dst-b >/dev/null
}
run_policy_checks
step "no containers left"  "! dk ps -aq | grep ."
step "no runtime state left" "! ls $D/exec/runtime-runc/moby 2>/dev/null | grep ."
summary "test-docker ($MXC_RUNTIME)"
