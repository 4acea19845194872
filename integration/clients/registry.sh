#!/usr/bin/env bash
# registry.sh up|down - a private plain-HTTP OCI registry (Debian's docker-registry 2.8;
# its system service is not used) on $REGISTRY (127.0.0.1:5000), data in
# $MXC_IT_DIR/registry.  up is idempotent; down stops it (PURGE=1 deletes the data).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
R=$MXC_IT_DIR/registry
case ${1:-} in
up)
	need docker-registry curl
	if [ -s "$R/registry.pid" ] && kill -0 "$(cat "$R/registry.pid")" 2>/dev/null &&
		curl -fsS -m 2 "http://$REGISTRY/v2/" >/dev/null 2>&1; then
		echo "registry already running on $REGISTRY"; exit 0
	fi
	if curl -fsS -m 2 "http://$REGISTRY/v2/" >/dev/null 2>&1; then die "$REGISTRY is served by a process not ours"; fi
	mkdir -p "$R/data"
	cat >"$R/config.yml" <<Y
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: $R/data }
  delete: { enabled: true }
http: { addr: "$REGISTRY" }
Y
	setsid docker-registry serve "$R/config.yml" >"$R/registry.log" 2>&1 </dev/null &
	echo $! >"$R/registry.pid"
	wait_for 10 curl -fsS -m 1 "http://$REGISTRY/v2/" || { cat "$R/registry.log"; exit 1; }
	echo "registry up on $REGISTRY (pid $(cat "$R/registry.pid"))"
	;;
down)
	stop_pid "$R/registry.pid" 5
	[ "${PURGE:-0}" = 1 ] && rm -rf "$R"
	echo "registry down"
	;;
*) die "usage: registry.sh up|down" ;;
esac
