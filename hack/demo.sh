#!/usr/bin/env bash
# demo.sh - mxc's main job on a real container: an agent policy enforced by
# the kernel. Builds mxc-runtime, makes a busybox bundle, runs the demos.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
for d in demo/*.sh; do
	[ -e "$d" ] || continue
	echo
	echo "######## $d"
	bash "$d"
done
