#!/usr/bin/env bash
# build-cri-tools.sh VERSION... - crictl + critest of sigs.k8s.io/cri-tools from the Go
# module proxy into $MXC_TOOLS_DIR/cri-tools-VERSION/bin (cached).  v1.37.0 goes with
# containerd 2.x, v1.34.0 with Debian's containerd 1.6 (the proxy serves only these two).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need go jq
[ $# -gt 0 ] || set -- v1.37.0
for V in "$@"; do
	out=$(cri_tools_bin "$V")
	if [ -x "$out/crictl" ] && [ -x "$out/critest" ] && "$out/crictl" --version 2>/dev/null | qgrep "${V#v}"; then
		echo "cri-tools $V cached in $out"; continue
	fi
	src=$(timeout 600 go mod download -json "sigs.k8s.io/cri-tools@$V" | jq -r .Dir)
	[ -d "$src" ] || die "go mod download sigs.k8s.io/cri-tools@$V failed"
	mkdir -p "$out"
	tmp=$(mktemp -d "$out/.build.XXXXXX")
	ld="-X sigs.k8s.io/cri-tools/pkg/version.Version=$V"
	# built in the module's own directory: its go.mod/go.sum pin the dependencies
	(cd "$src" && export GOFLAGS=-mod=readonly CGO_ENABLED=0 &&
		timeout 900 go build -trimpath -ldflags "$ld" -o "$tmp/crictl" ./cmd/crictl &&
		timeout 900 go test -c -trimpath -ldflags "$ld" -o "$tmp/critest" ./cmd/critest) || { rm -rf "$tmp"; exit 1; }
	mv "$tmp/crictl" "$tmp/critest" "$out/" && rm -rf "$tmp"
	"$out/crictl" --version
done
