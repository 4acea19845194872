#!/bin/sh
# fs-demo.sh — mxc's filesystem policy at work on a real container.
#
# An "agent" (a busybox shell) runs under an agent policy that lets it read
# /bin and /etc, write /workspace and /tmp, and denies /workspace/.env. It
# writes its workspace, is refused the denied file and a write outside its
# tree, and `mxc-runtime events --audit` shows what was recorded.
#
# Needs root, bin/mxc-runtime (make build) and busybox-static. Everything it
# makes (bundle, state root, container) is removed on exit.
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
MXC=${MXC_RUNTIME:-$REPO/bin/mxc-runtime}
BUSYBOX=${BUSYBOX:-/bin/busybox}
ID=mxc-fs-demo-$$

[ "$(id -u)" = 0 ] || { echo "fs-demo: needs root" >&2; exit 1; }
[ -x "$MXC" ] || { echo "fs-demo: $MXC missing (make build)" >&2; exit 1; }
[ -x "$BUSYBOX" ] || { echo "fs-demo: $BUSYBOX missing (apt install busybox-static)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mxc-fs-demo.XXXXXX)
ROOT=$(mktemp -d /run/mxc-fs-demo.XXXXXX)
KAUDIT_WAS=
cleanup() {
	"$MXC" --root "$ROOT" delete --force "$ID" >/dev/null 2>&1 || true
	[ "$KAUDIT_WAS" = off ] && "$WORK/kaudit" off 2>/dev/null || true
	rm -rf "$WORK" "$ROOT"
}
trap cleanup EXIT INT TERM

# A busybox root filesystem: the applets as hard links, an agent user.
R=$WORK/bundle/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/proc" "$R/sys" "$R/dev" "$R/workspace" "$R/opt"
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do [ -e "$R/bin/$a" ] || ln "$R/bin/busybox" "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/workspace:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nagent:x:1000:\n' >"$R/etc/group"
echo "OPENAI_API_KEY=sk-demo-not-for-the-agent" >"$R/workspace/.env"
echo "print('hello')" >"$R/workspace/main.py"
chown -R 1000:1000 "$R/workspace"
chmod 1777 "$R/tmp"

# The agent's script: each step says what it tries.
cat >"$R/workspace/agent.sh" <<'AGENT'
step() { printf '\n$ %s\n' "$*"; sh -c "$*" 2>&1 || echo "  -> refused (exit $?)"; }
echo "agent: uid $(id -u), in $(pwd)"
step 'echo "print(42)" > /workspace/answer.py && cat /workspace/answer.py'
step 'cat /workspace/.env'
step 'echo pwned > /etc/motd'
step 'echo pwned > /opt/backdoor'
step 'ls /workspace'
AGENT
chown 1000:1000 "$R/workspace/agent.sh"

# The policy travels in the io.mxc.policy annotation (JSON in a string).
POLICY='{"apiVersion":"mxc.dev/v1alpha1","kind":"AgentPolicy","identity":{"agent":"fs-demo-agent"},"isolation":"process","filesystem":{"readonlyPaths":["/bin","/etc"],"readwritePaths":["/workspace","/tmp"],"deniedPaths":["/workspace/.env"]},"resources":{"pids":128,"memory":"128Mi"}}'
ANN=$(printf '%s' "$POLICY" | sed 's/"/\\"/g')
# A runc-style config: the agent user, a writable root (the policy, not
# the image, decides what is writable), the usual namespaces and mounts.
cat >"$WORK/bundle/config.json" <<JSON
{
  "ociVersion": "1.2.0",
  "annotations": {"io.mxc.policy": "$ANN"},
  "process": {
    "terminal": false,
    "user": {"uid": 1000, "gid": 1000},
    "args": ["sh", "/workspace/agent.sh"],
    "env": ["PATH=/bin", "HOME=/workspace"],
    "cwd": "/workspace",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "agent",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON

# Landlock (ABI 7) reports its denials through the kernel's audit, which
# is often off: turn it on for the demo (MXC_DEMO_KAUDIT=0 to skip), and
# restore it on exit.
if [ "${MXC_DEMO_KAUDIT:-1}" != 0 ] && command -v go >/dev/null 2>&1 &&
	(cd "$REPO" && go build -o "$WORK/kaudit" ./demo/kaudit) 2>/dev/null; then
	KAUDIT_WAS=$("$WORK/kaudit" status 2>/dev/null || echo unknown)
	if [ "$KAUDIT_WAS" = off ]; then
		echo "(turning the kernel's audit on for the demo; it is turned off again at exit)"
		"$WORK/kaudit" on || KAUDIT_WAS=
	fi
fi

echo "== the policy (io.mxc.policy)"
printf '%s\n' "$POLICY" | sed 's/,"/,\n  "/g'

echo
echo "== the agent runs (mxc-runtime run)"
status=0
"$MXC" --root "$ROOT" run --keep --bundle "$WORK/bundle" "$ID" || status=$?
echo
echo "(agent exited with status $status)"
echo
echo "== what the host sees"
echo "workspace: $(ls "$R/workspace" | tr '\n' ' ')"
echo ".env still: $(cat "$R/workspace/.env")"
[ -e "$R/opt/backdoor" ] && echo "/opt/backdoor WAS WRITTEN" || echo "/opt/backdoor: not written"
echo
echo "== audit events (mxc-runtime events --audit $ID)"
"$MXC" --root "$ROOT" events --audit --no-follow "$ID"
echo
echo "(fs.deny: Landlock's denials, reported by the kernel when its audit is on. The"
echo " denied .env is refused by its mask (nodev) and /etc by a read-only mount: the"
echo " kernel reports neither, so they have no event.)"
