#!/usr/bin/env bash
# test-installer.sh - deploy/node/install.sh (what the DaemonSet runs) against fake node
# roots: containerd 2.4 config (mxc-shim.toml drop-in + imports), containerd 1.6 config
# (mxc-runc-shim.toml block appended), no config at all; each install is checked by the
# real containerd of that version parsing the result (`containerd config dump`, with
# the fake /etc/containerd bind-mounted in a private mount namespace), run twice
# (idempotent), and uninstalled back to the byte-identical original.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
"$IT_HERE/build-containerd.sh" >/dev/null || die "containerd build failed"
W=$MXC_IT_DIR/installer
rm -rf "$W"; mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
# the payload the image carries: deploy/ plus bin/
P=$W/payload
mkdir -p "$P/bin"
cp -r "$DEPLOY_DIR/." "$P/"
printf '#!/bin/sh\necho fake\n' >"$P/bin/mxc-runtime"; cp "$P/bin/mxc-runtime" "$P/bin/containerd-shim-mxc-v2"; cp "$P/bin/mxc-runtime" "$P/bin/mxc-monitor"
chmod +x "$P/bin/"*
export SRC=$P RESTART=none
inst() { HOST_ROOT=$1 CONTAINERD_VERSION=$2 sh "$P/node/install.sh" "$3"; }
# dump ROOT CONTAINERD_BIN: the merged config as that containerd reads it
dump() {
	unshare -m sh -c "mount --bind '$1/etc/containerd' /etc/containerd && '$2' --config /etc/containerd/config.toml config dump" 2>"$W/dump.err"
}
export -f inst dump; export P W

# containerd 2.4: drop-in + imports
r=$W/n24; mkdir -p "$r/etc/containerd"
"$CTD2_BIN/containerd" config default >"$r/etc/containerd/config.toml" 2>/dev/null
cp "$r/etc/containerd/config.toml" "$W/orig24"
step "2.4: install"                     "inst $r 2.4.2 install"
step "2.4: binaries + node policy laid out" "test -x $r/usr/local/bin/mxc-runtime && test -x $r/usr/local/bin/containerd-shim-mxc-v2 && test -x $r/usr/local/bin/mxc-monitor && test -f $r/etc/mxc/policies/offline-node.yaml"
step "2.4: containerd reads handlers mxc + mxc-offline" "
	dump $r $CTD2_BIN/containerd >$W/d24 || { cat $W/dump.err; exit 1; }
	grep -A12 \"runtimes.mxc\\]\" $W/d24 | qgrep \"runtime_type = 'io.containerd.mxc.v2'\" &&
	grep -A12 \"runtimes.mxc\\]\" $W/d24 | qgrep \"pod_annotations = \\['io.mxc.\\*'\\]\" &&
	grep -q \"runtimes.mxc-offline.options\\]\" $W/d24 &&
	grep -q \"MxcConfig = '/etc/mxc/policies/offline-node.yaml'\" $W/d24 &&
	grep -q \"runtimes.runc\\]\" $W/d24"
step "2.4: install again is a no-op"    "cp $r/etc/containerd/config.toml $W/c1 && inst $r 2.4.2 install && cmp $W/c1 $r/etc/containerd/config.toml"
step "2.4: uninstall restores config"   "inst $r 2.4.2 uninstall && cmp $W/orig24 $r/etc/containerd/config.toml && ! test -e $r/etc/containerd/conf.d && ! test -e $r/usr/local/bin/mxc-runtime && ! test -e $r/usr/local/bin/mxc-monitor"

# containerd 1.6: block appended to config.toml
r=$W/n16; mkdir -p "$r/etc/containerd"
containerd config default >"$r/etc/containerd/config.toml" 2>/dev/null
cp "$r/etc/containerd/config.toml" "$W/orig16"
step "1.6: install"                     "inst $r 1.6.20 install"
step "1.6: containerd 1.6 reads handler mxc, runc kept" "
	dump $r /usr/bin/containerd >$W/d16 || { cat $W/dump.err; exit 1; }
	grep -A14 'runtimes.mxc\\]' $W/d16 | qgrep 'runtime_type = \"io.containerd.runc.v2\"' &&
	grep -A14 'runtimes.mxc\\]' $W/d16 | qgrep 'pod_annotations = \\[\"io.mxc.\\*\"\\]' &&
	grep -A6 'runtimes.mxc.options\\]' $W/d16 | qgrep 'BinaryName = \"/usr/local/bin/mxc-runtime\"' &&
	grep -q 'runtimes.runc\\]' $W/d16"
step "1.6: install again keeps one block" "inst $r 1.6.20 install && [ \$(grep -c '^# BEGIN mxc' $r/etc/containerd/config.toml) = 1 ]"
step "1.6: uninstall restores config"   "inst $r 1.6.20 uninstall && cmp $W/orig16 $r/etc/containerd/config.toml"

# no containerd config yet (2.x): one is written with the imports line
r=$W/n0; mkdir -p "$r/etc"
step "none: install writes a config"   "inst $r 2.4.2 install && dump $r $CTD2_BIN/containerd | qgrep \"runtimes.mxc\\]\""
step "none: uninstall removes it"      "inst $r 2.4.2 uninstall && ! test -e $r/etc/containerd/config.toml"
# a config with its own imports list: ours is appended to it, and removed again
r=$W/n2; mkdir -p "$r/etc/containerd"
printf 'version = 3\nimports = ["/etc/containerd/other.toml"]\n' >"$r/etc/containerd/config.toml"
cp "$r/etc/containerd/config.toml" "$W/orig2"
step "imports: appended to an existing list" "inst $r 2.4.2 install && grep -qx 'imports = \\[\"/etc/containerd/other.toml\", \"/etc/containerd/conf.d/\\*.toml\"\\]' $r/etc/containerd/config.toml"
step "imports: uninstall restores the list"  "inst $r 2.4.2 uninstall && cmp $W/orig2 $r/etc/containerd/config.toml"
summary "test-installer"
