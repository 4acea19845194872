#!/usr/bin/env bash
# test-ctr.sh - flow (a): the mxc shim (runtime io.containerd.mxc.v2) on containerd
# $CONTAINERD_VERSION, built from its Go module and started here with its own root,
# state and socket, driven with ctr: run --rm and exit status, run -d, exec, ps,
# pause/resume, kill, delete, audit events published on /mxc/audit, shim options
# (BinaryName/Root/MxcConfig, defaults, bad input), and nothing left behind.
# Env: MXC_RUNTIME (default /usr/bin/runc standing in), MXC_SHIM (default: built here).
# Prints "N passed, N failed"; exit 1 on failure.  Cleans up on any exit.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
default_runtime /usr/bin/runc
ensure_shim
ensure_auditwatch
"$IT_HERE/build-containerd.sh" >/dev/null || die "containerd build failed"
"$IT_HERE/make-images.sh" base >/dev/null || die "images failed"

export CTD_NAME=ctd2-ctr CTD_BIN=$CTD2_BIN CTD_VERSION=3 CRI=0
D=$MXC_IT_DIR/$CTD_NAME
SOCK=$D/containerd.sock
NS=mxc-it
RT_ROOT=$D/mxc-root          # runtime state root (the shim appends /<namespace>)
export SHIM_PATH=$D/shim-bin
I=$BUSYBOX_REF
c() { timeout -k 5 60 "$CTD2_BIN/ctr" --address "$SOCK" -n "$NS" "$@"; }
export -f c; export CTD2_BIN SOCK NS I

# egress_lab_up: ctr gives a container no network of its own, so this test makes one:
# netns $NS_C (handed to the container with --with-ns) joined by a veth pair to netns
# $NS_W, where busybox httpd serves on 10.244.81.1 ($ALLOWED_NAME) and 10.244.81.3
# ($DENIED_NAME); nothing is routed anywhere else. egress_lab_down removes it all.
# lo is up in $NS_C, as CNI's loopback plugin leaves a pod's. (With lo down, two
# bringings-up of lo could race: one saw IFF_UP before the kernel had added 127.0.0.1,
# and the gate failed with "listen udp 127.0.0.1:10053: bind: cannot assign requested
# address"; linux/netlo now waits for the other, 2026-11-28.)
NS_C=mxc-it-ctr-c NS_W=mxc-it-ctr-w ADDR_A=10.244.81.1 ADDR_B=10.244.81.3
export NS_C NS_W ADDR_A ADDR_B
egress_lab_down() {
	stop_pid "$D/httpd.pid" 5
	ip netns del $NS_C 2>/dev/null; ip netns del $NS_W 2>/dev/null
	rm -rf "$D/www"; true
}
egress_lab_up() {
	egress_lab_down
	ip netns add $NS_C && ip netns add $NS_W &&
		ip link add mxcitc0 netns $NS_C type veth peer name mxcitw0 netns $NS_W &&
		ip -n $NS_C addr add 10.244.81.2/24 dev mxcitc0 && ip -n $NS_C link set mxcitc0 up &&
		ip -n $NS_C link set lo up &&
		ip -n $NS_W addr add $ADDR_A/24 dev mxcitw0 && ip -n $NS_W addr add $ADDR_B/24 dev mxcitw0 &&
		ip -n $NS_W link set mxcitw0 up && ip -n $NS_W link set lo up || return 1
	mkdir -p "$D/www" && echo hello-mxc >"$D/www/index.html"
	setsid ip netns exec $NS_W busybox httpd -f -p 80 -h "$D/www" </dev/null >/dev/null 2>&1 &
	echo $! >"$D/httpd.pid"
}

cleanup() {
	[ -n "${watch_pid:-}" ] && kill "$watch_pid" 2>/dev/null
	"$IT_HERE/containerd.sh" down >/dev/null 2>&1
	egress_lab_down
	dns_down "$D"
	rm -rf "$RT_ROOT" "$D/default-bin"
	# the default-root check leaves its state under /run/mxc/$NS only if it failed
	rmdir "/run/mxc/$NS/.locks" "/run/mxc/$NS" 2>/dev/null
	# containerd's runc shim keeps its default root per namespace (empty once its tasks
	# are gone)
	rmdir "/run/containerd/runc/$NS" 2>/dev/null
}
trap cleanup EXIT
cleanup # idempotent: whatever a killed earlier run left

mkdir -p "$SHIM_PATH" "$RT_ROOT"
ln -sfn "$MXC_SHIM" "$SHIM_PATH/containerd-shim-mxc-v2"
# containerd runs `shim delete` after every shim's exit and passes its environment on:
# with this the shim's C clean-up (shim/fastcleanup) says on stderr, which containerd
# logs, when it hands over to the Go path
export MXC_SHIM_FAST_CLEANUP_DEBUG=1
# and the C start (shim/faststart) writes here when it leaves a start to the Go path
export MXC_SHIM_SPARE_DEBUG=$D/spare-debug.log
rm -f "$MXC_SHIM_SPARE_DEBUG"
"$IT_HERE/containerd.sh" up >/dev/null || die "containerd did not start"
c images import "$IMAGES_DIR/busybox-local.tar" >/dev/null 2>&1 || die "image import failed"

# the shim's options, as a TOML file (`ctr run --runtime-config-path`): the same keys as
# the options table of deploy/containerd/mxc-shim.toml
OPTS=$D/mxc-options.toml
printf 'BinaryName = "%s"\nRoot = "%s"\n' "$MXC_RUNTIME" "$RT_ROOT" >"$OPTS"
R="--runtime io.containerd.mxc.v2 --runtime-config-path $OPTS"
export R OPTS RT_ROOT
socks_before=$(ls /run/containerd/s 2>/dev/null | sort)

echo "== containerd $CONTAINERD_VERSION + containerd-shim-mxc-v2 -> $MXC_RUNTIME"
step "run --rm: output"                    "c run --rm $R $I a-rm echo hi | qgrep -x hi"
step "run --rm: exit status 7 comes back"  "c run --rm $R $I a-exit sh -c 'exit 7'; [ \$? = 7 ]"
# the shim deleted the task, so the clean-up after its exit is answered in C, without
# the Go shim or the runtime (and ctr run --rm returns only after that clean-up)
step "run --rm: clean-up answered in C"     "c run --rm $R $I a-fastclean true &&
	grep 'cleaning up dead shim' $D/containerd.log | qgrep 'id=a-fastclean' &&
	! grep 'id=a-fastclean' $D/containerd.log | grep 'Go path'"
# every start after the first is handed to a spare shim (shim/spare_linux.go): the
# spare becomes the task's shim, with a spawned shim's command line, working directory
# and sockets, and the start spawns the next spare
SPARE_PAT="^[^ ]*containerd-shim-mxc-v2 -mxc-spare -address $SOCK( |\$)"
export SPARE_PAT
# (waiting = its socket is there: a spare listens once it has started up)
SPARE_SOCK=/run/mxc-shim/$(spare_key "$SOCK").sock
export SPARE_SOCK
step "a spare shim waits for the next start" "for i in \$(seq 40); do pgrep -f \"\$SPARE_PAT\" >/dev/null && test -S $SPARE_SOCK && exit 0; sleep 0.25; done; exit 1"
spare_before=$(pgrep -f "$SPARE_PAT" | head -1)
step "the spare took the start"            "c run -d $R $I a-spare sleep 1000 &&
	p=\$(pgrep -f '^[^ ]*containerd-shim-mxc-v2 -namespace $NS -id a-spare -address $SOCK( |\$)') &&
	[ \"\$p\" = '$spare_before' ] && [ \"\$(readlink /proc/\$p/cwd)\" = $D/state/io.containerd.runtime.v2.task/$NS/a-spare ] &&
	readlink /proc/\$p/fd/3 | qgrep '^socket:' && ! grep -qs 'a-spare: Go path' $D/spare-debug.log"
step "the start spawned the next spare"    "for i in \$(seq 40); do n=\$(pgrep -f \"\$SPARE_PAT\"); [ -n \"\$n\" ] && [ \"\$n\" != '$spare_before' ] && test -S $SPARE_SOCK && exit 0; sleep 0.25; done; exit 1"
step "the spare's task: exec, kill, delete" "c tasks exec --exec-id s1 a-spare echo via-spare | qgrep -x via-spare &&
	c tasks kill -s KILL a-spare && for i in \$(seq 40); do c tasks ls | grep -q '^a-spare .*STOPPED' && break; sleep 0.1; done &&
	c tasks rm a-spare && c containers rm a-spare &&
	for i in \$(seq 40); do kill -0 $spare_before 2>/dev/null || exit 0; sleep 0.1; done; echo 'the shim did not exit'; exit 1"
# an upgrade: the shim binary replaced (a new file) while a spare of the old one waits.
# The spare declines and ends, the start reads its bootstrap parameters back from the
# C side (a memfd at stdin) and takes the Go path, which spawns a spare of the new binary
step "upgraded shim binary: the old spare declines, the Go path starts the task" "cp \"$MXC_SHIM\" $SHIM_PATH/shim.new &&
	mv -f $SHIM_PATH/shim.new $SHIM_PATH/containerd-shim-mxc-v2 && c run --rm $R $I a-upg echo upgraded | qgrep -x upgraded &&
	grep -q 'a-upg: Go path: the spare left the start to Go: the spare runs another shim binary' $D/spare-debug.log"
step "upgraded shim binary: a spare of the new binary waits" "for i in \$(seq 20); do p=\$(pgrep -f \"\$SPARE_PAT\") &&
	[ \"\$(readlink /proc/\$p/exe)\" = $SHIM_PATH/containerd-shim-mxc-v2 ] && exit 0; sleep 0.25; done; exit 1"
ln -sfn "$MXC_SHIM" "$SHIM_PATH/containerd-shim-mxc-v2"
step "run -d"                              "c run -d $R $I a-d sh -c 'echo \$\$ >/tmp/pid; exec sleep 1000'"
step "task RUNNING under the mxc shim"     "c tasks ls | grep -E '^a-d +[0-9]+ +RUNNING' && pgrep -f '^[^ ]*containerd-shim-mxc-v2 -namespace $NS -id a-d -address $SOCK'"
step "runtime state in the Root option"    "test -d $RT_ROOT/$NS/a-d"
step "exec: output"                        "c tasks exec --exec-id e1 a-d sh -c 'echo exec-ok' | qgrep -x exec-ok"
step "exec: exit status 3 comes back"      "c tasks exec --exec-id e2 a-d sh -c 'exit 3'; [ \$? = 3 ]"
step "exec: same pid namespace"            "c tasks exec --exec-id e3 a-d cat /tmp/pid | qgrep -x 1"
step "ps lists the init process"           "c tasks ps a-d | awk 'NR>1' | qgrep ."
step "pause"                               "c tasks pause a-d && c tasks ls | grep -E '^a-d .*PAUSED'"
step "resume"                              "c tasks resume a-d && c tasks ls | grep -E '^a-d .*RUNNING'"
step "kill -s KILL, task STOPPED"          "c tasks kill -s KILL a-d && for i in \$(seq 40); do c tasks ls | qgrep -E '^a-d .*STOPPED' && exit 0; sleep 0.25; done; exit 1"
step "delete task and container"           "c tasks rm a-d && c containers rm a-d && ! test -e $RT_ROOT/$NS/a-d"
# SIGTERM reaches the container's init, whose handler decides the exit status
step "kill (SIGTERM) -> handler's exit status 42" "
	c run --rm $R $I a-term sh -c 'trap \"exit 42\" TERM; echo ready; while :; do sleep 0.1; done' >$D/a-term.out & p=\$!
	for i in \$(seq 40); do grep -q ready $D/a-term.out 2>/dev/null && break; sleep 0.25; done
	c tasks kill a-term; wait \$p; [ \$? = 42 ]"

# --- audit events: the shim follows <Root>/<ns>/<id>/audit.jsonl and publishes /mxc/audit
watch_out=$D/audit-events.json
"$AUDITWATCH" -address "$SOCK" -namespace "$NS" -container a-audit -count 1 -timeout 60s \
	-ready "$D/watch.ready" >"$watch_out" 2>"$D/audit-watch.err" & watch_pid=$!
export watch_out
step "audit: subscriber ready"             "for i in \$(seq 40); do test -e $D/watch.ready && exit 0; sleep 0.25; done; exit 1"
# an io.mxc.* annotation makes a policy apply: mxc-runtime then keeps an audit log
step "audit: run -d a-audit"               "c run -d $R --annotation io.mxc.identity=audit-agent $I a-audit sleep 1000"
if runtime_is_mxc "$MXC_RUNTIME"; then
	# mxc-runtime writes its own events (policy applied at create, exec, ...)
	step "audit: exec (mxc-runtime logs it)" "c tasks exec --exec-id e1 a-audit true"
	audit_agent='"agent":"audit-agent"' 
else
	# a stand-in writes no audit log: append the line the runtime would write
	step "audit: stand-in log line appended" "printf '%s\n' '{\"time\":\"2025-01-01T00:00:00Z\",\"container\":\"a-audit\",\"kind\":\"net.deny\",\"detail\":{\"dst\":\"192.0.2.1:443\"}}' >>$RT_ROOT/$NS/a-audit/audit.jsonl"
fi
step "audit: event published on /mxc/audit" "while kill -0 $watch_pid 2>/dev/null; do sleep 0.1; done; cat $watch_out; grep -q '\"container\":\"a-audit\"' $watch_out && grep -q '\"topic\":\"/mxc/audit\"' $watch_out && grep -qF '${audit_agent:-}' $watch_out"
watch_pid=
step "audit: delete a-audit"               "c tasks kill -s KILL a-audit; sleep 0.3; c tasks rm -f a-audit && c containers rm a-audit"

# --- options: defaults, node config, bad input
# default runtime: mxc-runtime next to the shim's executable (here a copy of the shim
# with the runtime under test linked in as mxc-runtime), state root /run/mxc
mkdir -p "$D/default-bin"
cp "$MXC_SHIM" "$D/default-bin/containerd-shim-mxc-v2"
ln -sfn "$MXC_RUNTIME" "$D/default-bin/mxc-runtime"
step "defaults: shim by path, runtime next to it, root /run/mxc" "
	c run -d --runtime $D/default-bin/containerd-shim-mxc-v2 $I a-def sleep 1000 &&
	test -d /run/mxc/$NS/a-def && c tasks kill -s KILL a-def && sleep 0.3 && c tasks rm -f a-def && c containers rm a-def &&
	! test -e /run/mxc/$NS/a-def"
rmdir "/run/mxc/$NS/.locks" "/run/mxc/$NS" 2>/dev/null; rmdir /run/mxc 2>/dev/null
# MxcConfig: every runtime call of the task sees MXC_CONFIG (mxc-runtime's --config);
# the node config shipped for the mxc-offline handler
make_trace_wrapper "$MXC_RUNTIME" "$D/trace/mxc-runtime" "$D/trace.log"
: >"$D/trace.log"
printf 'BinaryName = "%s"\nRoot = "%s"\nMxcConfig = "%s"\n' "$D/trace/mxc-runtime" "$RT_ROOT" \
	"$DEPLOY_DIR/mxc/policies/offline-node.yaml" >"$D/opts-node.toml"
step "MxcConfig reaches the runtime as MXC_CONFIG" "
	c run --rm --runtime io.containerd.mxc.v2 --runtime-config-path $D/opts-node.toml $I a-node true &&
	grep -E '^(--[^ ]+ [^ ]+ )*create .*MXC_CONFIG=$DEPLOY_DIR/mxc/policies/offline-node.yaml' $D/trace.log &&
	grep -E '^(--[^ ]+ [^ ]+ )*delete .*MXC_CONFIG=$DEPLOY_DIR/mxc/policies/offline-node.yaml' $D/trace.log"
printf 'BinaryNam = "%s"\n' "$MXC_RUNTIME" >"$D/opts-bad.toml"
step "bad option key: refused, naming the key" "
	out=\$(c run --rm --runtime io.containerd.mxc.v2 --runtime-config-path $D/opts-bad.toml $I a-bad true 2>&1); rc=\$?
	echo \"\$out\"; [ \$rc != 0 ] && echo \"\$out\" | qgrep 'unknown key(s) BinaryNam'"
printf 'BinaryName = "/nonexistent/mxc-runtime"\n' >"$D/opts-nobin.toml"
step "missing BinaryName: refused, naming it" "
	out=\$(c run --rm --runtime io.containerd.mxc.v2 --runtime-config-path $D/opts-nobin.toml $I a-nobin true 2>&1); rc=\$?
	echo \"\$out\"; [ \$rc != 0 ] && echo \"\$out\" | qgrep 'BinaryName'"
step "refused tasks left no container state" "c containers rm a-bad a-nobin 2>/dev/null; ! c tasks ls -q | qgrep . && ! ls $RT_ROOT/$NS 2>/dev/null | qgrep ."

# --- policy enforcement through ctr --annotation (needs mxc-runtime)
policy_checks() {
	local P="--annotation io.mxc.fs.readonly=/ --annotation io.mxc.fs.readwrite=/tmp --annotation io.mxc.fs.deny=/etc/hostname"
	step "policy: write inside readwrite path" "c run --rm $R $P $I p-rw sh -c 'echo ok >/tmp/x && cat /tmp/x' | qgrep -x ok"
	step "policy: write outside readwrite denied" "! c run --rm $R $P $I p-ro sh -c 'echo bad >/root/x'"
	step "policy: denied path unreadable"  "! c run --rm $R $P $I p-deny cat /etc/hostname"
	step "policy: invalid policy refused at create" "
		out=\$(c run --rm $R --annotation io.mxc.isolation=bogus $I p-bad true 2>&1); rc=\$?
		echo \"\$out\"; c containers rm p-bad 2>/dev/null; [ \$rc != 0 ] && echo \"\$out\" | qgrep 'io.mxc.isolation'"

	# egress by name: the shim's MxcConfig option names the node config that points the
	# gate at testdns; the policy comes in io.mxc.* annotations
	dns_up "$D"; node_config_dns >"$D/config.yaml"
	printf 'BinaryName = "%s"\nRoot = "%s"\nMxcConfig = "%s"\n' "$MXC_RUNTIME" "$RT_ROOT" "$D/config.yaml" >"$D/opts-dns.toml"
	dns_set "$D" "$ALLOWED_NAME" "$ADDR_A" "$DENIED_NAME" "$ADDR_B"
	egress_lab_up >"$D/lab.log" 2>&1
	step "egress: lab netns $NS_C <-> $NS_W (web on $ADDR_A, $ADDR_B)" "cat $D/lab.log; ip -n $NS_W -o addr show mxcitw0 | qgrep ' $ADDR_B/' && kill -0 \$(cat $D/httpd.pid)"
	step "egress: control: both addresses reachable from $NS_C without mxc" "
		for i in \$(seq 20); do ip netns exec $NS_C busybox sh -c \"$PROBE_GET $ADDR_A 80 && $PROBE_GET $ADDR_B 80\" | grep -c hello-mxc | qgrep -x 2 && exit 0; sleep 0.25; done; exit 1"
	local eg=p-egress g gp
	"$AUDITWATCH" -address "$SOCK" -namespace "$NS" -container $eg -until-kinds dns.deny,net.deny -timeout 90s \
		-ready "$D/eg-watch.ready" >"$D/eg-audit.json" 2>"$D/eg-watch.err" & watch_pid=$!
	step "egress: audit subscriber ready" "for i in \$(seq 40); do test -e $D/eg-watch.ready && exit 0; sleep 0.25; done; cat $D/eg-watch.err; exit 1"
	step "egress: run -d --with-ns network:$NS_C, io.mxc.network.allow=$ALLOWED_NAME:80" "
		c run -d --runtime io.containerd.mxc.v2 --runtime-config-path $D/opts-dns.toml --with-ns network:/run/netns/$NS_C \
			--annotation io.mxc.network.allow=$ALLOWED_NAME:80 --annotation io.mxc.identity=ctr-agent $I $eg sleep 1000"
	if step "egress: the gate asks testdns $DNS_ADDR (MxcConfig)" "gate_upstream_is $eg $DNS_ADDR"; then
		g=$(gate_dir $eg) gp=$(gate_proc "$g")
		step "egress: table in $NS_C, gate served, monitor up" "egress_live '$gp' $RT_ROOT/$NS $eg /run/netns/$NS_C"
		# no resolv.conf in a ctr container: glibc and busybox ask 127.0.0.1, which
		# the table redirects to the gate like any port-53 packet
		step "egress: exec: $ALLOWED_NAME resolves to $ADDR_A" "c tasks exec --exec-id n1 $eg nslookup $ALLOWED_NAME 127.0.0.1 | tee /dev/stderr | qgrep 'Address:* $ADDR_A\$'"
		step "egress: exec: $ALLOWED_NAME:80 reachable by name" "c tasks exec --exec-id h1 $eg sh -c \"$PROBE_GET $ALLOWED_NAME 80\" | qgrep hello-mxc"
		step "egress: exec: $DENIED_NAME REFUSED by the gate" "
			out=\$(c tasks exec --exec-id n2 $eg nslookup $DENIED_NAME 127.0.0.1 2>&1); echo \"\$out\"; echo \"\$out\" | qgrep REFUSED && ! echo \"\$out\" | qgrep '$ADDR_B'"
		step "egress: exec: $DENIED_NAME unreachable by name" "! c tasks exec --exec-id h2 $eg sh -c \"$PROBE_GET $DENIED_NAME 80\" | qgrep hello-mxc"
		step "egress: exec: direct address $ADDR_B refused at once (reset)" "
			out=\$(c tasks exec --exec-id h3 $eg sh -c \"$PROBE_GET $ADDR_B 80\" 2>&1); rc=\$?; echo \"rc=\$rc \$out\"; [ \$rc != 0 ] && echo \"\$out\" | qgrep -i refused"
		step "egress: /mxc/audit carries dns.deny $DENIED_NAME and net.deny $ADDR_B (agent ctr-agent)" "
			while kill -0 $watch_pid 2>/dev/null; do sleep 0.1; done; cat $D/eg-audit.json
			audit_has '.kind==\"dns.deny\" and .detail.name==\"$DENIED_NAME\" and .agent==\"ctr-agent\"' <$D/eg-audit.json &&
			audit_has '.kind==\"net.deny\" and .detail.dst==\"$ADDR_B\" and .detail.port==\"80\"' <$D/eg-audit.json"
		# the shim follows the container's policy monitor: killed (OOM killer, an admin),
		# it is restarted with the gate it hosts, with no exec to do it on the way
		step "egress: a killed policy monitor is restarted by the shim; the gate answers again" "
			m=$RT_ROOT/$NS/$eg; mp=\$(jq -r .monitorPid \$m/mxc.json); kill -9 \$mp || exit 1
			for i in \$(seq 60); do np=\$(jq -r .monitorPid \$m/mxc.json)
				[ \"\$np\" != \"\$mp\" ] && pgrep -f \"policy-monitor \$m/\" >/dev/null && break; sleep 0.25; done
			echo \"monitor \$mp -> \$np\"; [ \"\$np\" != \"\$mp\" ] &&
			ip netns exec $NS_C busybox nslookup $ALLOWED_NAME 127.0.0.1 | tee /dev/stderr | qgrep 'Address:* $ADDR_A\$'"
		gp=$(gate_proc "$g")
	else
		skip "egress by name: the gate's upstream is not the test's"
	fi
	kill "$watch_pid" 2>/dev/null; watch_pid=
	step "egress: kill + delete" "c tasks kill -s KILL $eg; sleep 0.3; c tasks rm -f $eg && c containers rm $eg"
	step "egress: no table left in $NS_C, no gate, monitor or runtime state" "nft_table_gone /run/netns/$NS_C && egress_gone '${g:-}' '${gp:-}' $RT_ROOT/$NS $eg"
	step "egress: control: $NS_C reaches $ADDR_B again without mxc" "ip netns exec $NS_C busybox sh -c \"$PROBE_GET $ADDR_B 80\" | qgrep hello-mxc"
	step "egress: $DENIED_NAME never reached the upstream" "cat $D/dns.log; grep -q '^$ALLOWED_NAME ' $D/dns.log && ! grep -q '^$DENIED_NAME ' $D/dns.log"
	egress_lab_down
}
run_policy_checks

# --- nothing left behind
# (a task's shim has -namespace on its command line; the spare waits for the next
# start and ends with containerd)
step "no shim process left"      "for i in \$(seq 40); do pgrep -f '^[^ ]*containerd-shim-mxc-v2 -namespace .*-address $SOCK' >/dev/null || exit 0; sleep 0.25; done; pgrep -af '^[^ ]*containerd-shim-mxc-v2 .*-address $SOCK'; exit 1"
step "at most one spare"         "[ \$(pgrep -f \"\$SPARE_PAT\" | wc -l) -le 1 ]"
step "no mounts left"            "! awk -v d=$D/ 'index(\$5, d) == 1' /proc/self/mountinfo | grep ."
step "no task state dirs left"   "! ls -A $D/state/io.containerd.runtime.v2.task/$NS 2>/dev/null | grep ."
# (dot entries, such as mxc-runtime's .locks, are the runtime's own, not a container's)
step "no runtime state left"     "! ls $RT_ROOT/$NS 2>/dev/null | grep ."
step "no shim sockets left"      "[ \"\$(ls /run/containerd/s 2>/dev/null | sort)\" = \"$socks_before\" ]"
spare=$(pgrep -f "$SPARE_PAT" | head -1)
stop_pid "$D/containerd.pid" 15
step "the spare ends with its containerd" "[ -z '$spare' ] || for i in \$(seq 40); do kill -0 $spare 2>/dev/null || exit 0; sleep 0.25; done; exit 1"
step "no spare socket left"      "! test -e /run/mxc-shim/$(spare_key "$SOCK").sock"
summary "test-ctr ($MXC_RUNTIME)"
