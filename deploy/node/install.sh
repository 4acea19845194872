#!/bin/sh
# install.sh install|uninstall - put mxc on a node (kata-deploy style): binaries, node
# policies, the containerd runtime handler(s), then restart containerd and label the
# node.  Run by the DaemonSet in deploy/kubernetes/mxc-deploy.yaml with the host's root
# mounted at /host, or by hand on a node (HOST_ROOT=/).
#
# Env:
#   HOST_ROOT=/host        the node's root filesystem
#   SRC=<dir of this script>/..   payload: bin/mxc-runtime, bin/containerd-shim-mxc-v2, [bin/mxc-monitor],
#                          containerd/*.toml, mxc/policies/*.yaml (the deploy/ tree + bin/)
#   PREFIX=/usr/local      where the binaries go on the node (bin/ under it)
#   CONTAINERD_CONFIG=/etc/containerd/config.toml
#   CONTAINERD_VERSION=    e.g. 2.4.2; default: asked from the node's containerd binary
#   RESTART=auto|none|<command>   auto: systemctl restart containerd in the host's
#                          namespaces (nsenter -t 1, needs hostPID), none: leave it
#   NODE_NAME=             label/unlabel this node mxc.dev/runtime=true (kubectl)
# containerd >= 2.3 gets the mxc shim (deploy/containerd/mxc-shim.toml) as an imports
# drop-in; older ones the runc-shim handler (mxc-runc-shim.toml) appended to config.toml
# between marker lines (containerd 1.x replaces a whole plugin section on import).
# Idempotent; uninstall removes exactly what install added.
set -eu
ACTION=${1:-install}
HOST_ROOT=${HOST_ROOT:-/host}
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
PREFIX=${PREFIX:-/usr/local}
CONFIG=${CONTAINERD_CONFIG:-/etc/containerd/config.toml}
DROPIN_DIR=$(dirname "$CONFIG")/conf.d
DROPIN=$DROPIN_DIR/mxc.toml
BEGIN='# BEGIN mxc (deploy/node/install.sh)'
END='# END mxc'
IMPORT_MARK='# mxc: imports added by deploy/node/install.sh'
h() { echo "$HOST_ROOT$1" | sed 's|//*|/|g'; }
log() { echo "mxc-install: $*"; }
die() { echo "mxc-install: error: $*" >&2; exit 1; }

containerd_version() {
	if [ -n "${CONTAINERD_VERSION:-}" ]; then echo "${CONTAINERD_VERSION#v}"; return; fi
	for b in /usr/local/bin/containerd /usr/bin/containerd /bin/containerd; do
		if [ -x "$(h $b)" ]; then
			"$(h $b)" --version 2>/dev/null | awk '{print $3}' | sed 's/^v//; s/[~+-].*//'
			return
		fi
	done
	die "no containerd binary under $HOST_ROOT; set CONTAINERD_VERSION"
}
# at_least VERSION MAJOR MINOR
at_least() {
	maj=${1%%.*}; rest=${1#*.}; min=${rest%%.*}
	[ "$maj" -gt "$2" ] || { [ "$maj" -eq "$2" ] && [ "$min" -ge "$3" ]; }
}
# render SNIPPET: the shipped snippet with this install's binary paths
render() {
	sed -e "s|/usr/local/bin/|$PREFIX/bin/|g" "$1"
}
restart_containerd() {
	case ${RESTART:-auto} in
	none) log "containerd not restarted (RESTART=none): restart it to load the handler" ;;
	auto)
		if command -v nsenter >/dev/null && nsenter -t 1 -m -u -i -n -p -- sh -c 'command -v systemctl' >/dev/null 2>&1; then
			nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd && log "containerd restarted"
		else
			log "cannot restart containerd here (no systemctl in the host's namespaces); restart it by hand"
		fi ;;
	*) sh -c "$RESTART" && log "containerd restarted ($RESTART)" ;;
	esac
}
label() {
	[ -n "${NODE_NAME:-}" ] && command -v kubectl >/dev/null || return 0
	if [ "$1" = on ]; then kubectl label node "$NODE_NAME" mxc.dev/runtime=true --overwrite
	else kubectl label node "$NODE_NAME" mxc.dev/runtime-; fi
}
# ensure_import: config.toml imports $DROPIN_DIR/*.toml (created with just that if absent)
ensure_import() {
	cfg=$(h "$CONFIG") glob="$DROPIN_DIR/*.toml"
	if [ ! -f "$cfg" ]; then
		mkdir -p "$(dirname "$cfg")"
		printf 'version = 3\n%s\nimports = ["%s"]\n' "$IMPORT_MARK" "$glob" >"$cfg"
		log "wrote $CONFIG (imports $glob)"
		return
	fi
	grep -qF "\"$glob\"" "$cfg" && return
	cp -p "$cfg" "$cfg.mxc-backup"
	if grep -q '^imports *= *\[' "$cfg"; then
		grep -q '^imports *= *\[.*\]' "$cfg" || die "$CONFIG: multi-line imports = [...] not supported; add \"$glob\" by hand"
		sed -i "s|^imports *= *\[ *\]|imports = [\"$glob\"]|; t; s|^imports *= *\[\(.*\)\]|imports = [\1, \"$glob\"]|" "$cfg"
	else
		# a top-level key must precede the first table
		awk -v mark="$IMPORT_MARK" -v line="imports = [\"$glob\"]" '
			!done && /^\[/ { print mark; print line; done = 1 }
			{ print }
			END { if (!done) { print mark; print line } }' "$cfg" >"$cfg.mxc-tmp" && mv "$cfg.mxc-tmp" "$cfg"
	fi
	log "added $glob to imports of $CONFIG (backup: $CONFIG.mxc-backup)"
}
remove_block() {
	cfg=$(h "$CONFIG")
	[ -f "$cfg" ] && grep -qF "$BEGIN" "$cfg" || return 0
	# the blank line install put before the block goes too
	awk -v b="$BEGIN" -v e="$END" '
		held && $0 != b { print ""; held = 0 }
		$0 == b { skip = 1; held = 0 }
		!skip && $0 == "" && !held { held = 1; next }
		!skip { print }
		$0 == e { skip = 0 }
		END { if (held) print "" }' "$cfg" >"$cfg.mxc-tmp" &&
		mv "$cfg.mxc-tmp" "$cfg"
	log "removed the mxc handler from $CONFIG"
}

install_files() {
	for f in mxc-runtime containerd-shim-mxc-v2 mxc-monitor; do
		if [ ! -x "$SRC/bin/$f" ]; then
			# mxc-monitor is optional: without it mxc-runtime runs its
			# helpers itself (a bigger process per policy container).
			[ "$f" = mxc-monitor ] && { rm -f "$(h "$PREFIX/bin/$f")"; continue; }
			die "$SRC/bin/$f missing"
		fi
		mkdir -p "$(h "$PREFIX/bin")"
		# copy then rename: a running containerd never sees a half-written binary
		cp "$SRC/bin/$f" "$(h "$PREFIX/bin/.$f.new")" && mv -f "$(h "$PREFIX/bin/.$f.new")" "$(h "$PREFIX/bin/$f")"
	done
	mkdir -p "$(h /etc/mxc/policies)"
	for p in "$SRC"/mxc/policies/*.yaml; do
		[ -e "$p" ] || continue
		t=$(h "/etc/mxc/policies/$(basename "$p")")
		[ -e "$t" ] || cp "$p" "$t" # the node's edits win over the shipped file
	done
	log "installed $PREFIX/bin/mxc-runtime, $PREFIX/bin/containerd-shim-mxc-v2, $PREFIX/bin/mxc-monitor, /etc/mxc/policies"
}

do_install() {
	install_files
	v=$(containerd_version)
	if at_least "$v" 2 3; then
		mkdir -p "$(h "$DROPIN_DIR")"
		render "$SRC/containerd/mxc-shim.toml" >"$(h "$DROPIN").new" && mv "$(h "$DROPIN").new" "$(h "$DROPIN")"
		ensure_import
		log "containerd $v: handlers mxc, mxc-offline (io.containerd.mxc.v2) in $DROPIN"
	else
		remove_block
		{ echo; echo "$BEGIN"; render "$SRC/containerd/mxc-runc-shim.toml"; echo "$END"; } >>"$(h "$CONFIG")"
		log "containerd $v: handler mxc (io.containerd.runc.v2 + BinaryName) appended to $CONFIG"
	fi
	restart_containerd
	label on
}

do_uninstall() {
	label off
	rm -f "$(h "$DROPIN")"
	rmdir "$(h "$DROPIN_DIR")" 2>/dev/null || true
	cfg=$(h "$CONFIG") glob="$DROPIN_DIR/*.toml"
	if [ -f "$cfg" ] && grep -qF "$IMPORT_MARK" "$cfg"; then
		if [ "$(grep -cv -e '^version = 3$' -e "^$IMPORT_MARK\$" -e '^imports = ' "$cfg")" = 0 ]; then
			rm -f "$cfg" # we created it
		else
			sed -i "\|^$IMPORT_MARK\$|{N;d}" "$cfg"
		fi
	elif [ -f "$cfg" ]; then
		g=$(printf '%s' "$glob" | sed 's/[].*[\^$]/\\&/g')
		sed -i "/^imports *=/{s|, *\"$g\"||; s|\"$g\" *, *||; s|\"$g\"||}" "$cfg"
	fi
	rm -f "$cfg.mxc-backup"
	remove_block
	rm -f "$(h "$PREFIX/bin/mxc-runtime")" "$(h "$PREFIX/bin/containerd-shim-mxc-v2")" "$(h "$PREFIX/bin/mxc-monitor")"
	# the shim's spare (one per containerd) ends within 2 s of its binary's
	# removal; its lock files go with the directory
	rm -rf "$(h /run/mxc-shim)"
	log "removed mxc binaries and handlers (/etc/mxc kept)"
	restart_containerd
}

case $ACTION in
install) do_install ;;
uninstall) do_uninstall ;;
*) die "usage: install.sh install|uninstall" ;;
esac
