#!/usr/bin/env bash
# build-containerd.sh - containerd $CONTAINERD_VERSION (default v2.4.2) built from its Go
# module: containerd, ctr and containerd-shim-runc-v2 into
# $MXC_TOOLS_DIR/containerd-$CONTAINERD_VERSION/bin (cached; rebuilt only when missing).
# Debian's containerd 1.6 refuses shims built on containerd v2.4, so the mxc shim is
# tested against this daemon.  Takes a few minutes on 2 cores the first time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need go jq
V=$CONTAINERD_VERSION
out=$CTD2_BIN
if [ -x "$out/containerd" ] && [ -x "$out/ctr" ] && [ -x "$out/containerd-shim-runc-v2" ] &&
	"$out/containerd" --version 2>/dev/null | qgrep " ${V} "; then
	echo "containerd $V cached in $out"; exit 0
fi
src=$(timeout 600 go mod download -json "github.com/containerd/containerd/v2@$V" | jq -r .Dir)
[ -d "$src" ] || die "go mod download github.com/containerd/containerd/v2@$V failed"
mkdir -p "$out"
tmp=$(mktemp -d "$out/.build.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
pkg=github.com/containerd/containerd/v2
ld="-X $pkg/version.Version=$V -X $pkg/version.Revision=mxc-it -X $pkg/version.Package=$pkg"
# Built inside the module's own directory, so its go.mod/go.sum pin every dependency as
# the containerd release does; the same tags as its Makefile (btrfs needs kernel headers).
cd "$src"
export GOFLAGS=-mod=readonly
timeout 1800 go build -trimpath -tags "urfave_cli_no_docs no_btrfs" -ldflags "$ld" -o "$tmp/containerd" ./cmd/containerd
timeout 900 go build -trimpath -tags "urfave_cli_no_docs" -ldflags "$ld" -o "$tmp/ctr" ./cmd/ctr
CGO_ENABLED=0 timeout 900 go build -trimpath -tags "urfave_cli_no_docs no_grpc" -ldflags "$ld" \
	-o "$tmp/containerd-shim-runc-v2" ./cmd/containerd-shim-runc-v2
mv "$tmp"/containerd "$tmp"/ctr "$tmp"/containerd-shim-runc-v2 "$out/"
"$out/containerd" --version
