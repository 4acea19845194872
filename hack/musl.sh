#!/usr/bin/env bash
# musl.sh - the C side of mxc's musl build (`make build`, LIBC=musl): a
# static libseccomp built with musl-gcc, and an include directory that gives
# musl-gcc the kernel's uapi headers (linux/, asm/, asm-generic/), which
# Debian ships for glibc only.
#
#   hack/musl.sh DIR     build into DIR (idempotent: quick when DIR is current)
#
# Why musl: every mxc-runtime process (the runtime, the container's init, the
# agent's last step, each fast exec, start and delete) starts faster. A static
# glibc binary spends ~0.25 ms before main in glibc's CPU feature and cache
# detection (dozens of CPUID instructions, each a trap to the hypervisor on a
# VM); musl does none of that (docs/benchmarks.md, "musl").
#
# libseccomp is Debian bookworm's: the 2.5.4 release tarball from Debian's
# archive (SHA-256 checked) plus the one patch Debian's 2.5.4-1+deb12u1
# applies (upstream commit 53267af, the syscall table of Linux 6.7; kept in
# hack/musl/), so the musl build knows the syscalls the glibc build (with
# Debian's libseccomp-dev) knows. Needs musl-tools, gperf, patch and curl
# (hack/deps.sh installs them).
set -euo pipefail

VERSION=2.5.4
SHA256=d82902400405cf0068574ef3dc1fe5f5926207543ba1ae6f8e7a1576351dcbdb
MIRROR=${MXC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TARBALL=libseccomp_${VERSION}.orig.tar.gz
URL=$MIRROR/pool/main/libs/libseccomp/$TARBALL

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
patchfile=$here/musl/libseccomp-2.5.4-syscalls-linux-6.7.patch
die() { printf 'musl.sh: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: hack/musl.sh DIR"
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# What the build in DIR was made from; a different one is rebuilt.
want="libseccomp $VERSION $SHA256 patch $(sha256sum "$patchfile" | cut -d' ' -f1) cc $(musl-gcc -dumpversion 2>/dev/null || echo none)"
if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] && [ -f "$dir/lib/libseccomp.a" ]; then
	# Current: newer than this script now, so make stops asking.
	touch "$dir/.stamp"
	exit 0
fi

for t in musl-gcc gperf patch curl make; do
	command -v "$t" >/dev/null || die "$t not found: run hack/deps.sh (apt-get install musl-tools gperf patch curl), or build with glibc: make build LIBC=glibc"
done

# The kernel's uapi headers where musl-gcc looks (-isystem DIR/include).
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
mkdir -p "$dir/include"
for h in linux asm-generic; do
	[ -d "/usr/include/$h" ] || die "/usr/include/$h missing (apt-get install linux-libc-dev)"
	ln -sfn "/usr/include/$h" "$dir/include/$h"
done
[ -d "/usr/include/$multiarch/asm" ] || die "/usr/include/$multiarch/asm missing (apt-get install linux-libc-dev)"
ln -sfn "/usr/include/$multiarch/asm" "$dir/include/asm"

mkdir -p "$dir/dl"
tb=$dir/dl/$TARBALL
if ! [ -f "$tb" ] || [ "$(sha256sum "$tb" | cut -d' ' -f1)" != "$SHA256" ]; then
	rm -f "$tb"
	curl -fsSL --retry 3 -o "$tb.part" "$URL" ||
		die "cannot download $URL: set MXC_DEBIAN_MIRROR, or put $TARBALL (SHA-256 $SHA256) in $dir/dl/, or build with glibc: make build LIBC=glibc"
	got=$(sha256sum "$tb.part" | cut -d' ' -f1)
	[ "$got" = "$SHA256" ] || { rm -f "$tb.part"; die "$URL: SHA-256 $got, want $SHA256"; }
	mv "$tb.part" "$tb"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tb" -C "$work"
src=$work/libseccomp-$VERSION
patch -d "$src" -p1 -s <"$patchfile"
rm -rf "$dir/lib" "$dir/share" "$dir/bin" "$dir/seccomp-include"
(
	cd "$src"
	CC=musl-gcc CFLAGS="-O2 -isystem $dir/include" ./configure -q --prefix="$dir" \
		--includedir="$dir/seccomp-include" --enable-static --disable-shared >"$work/configure.log" 2>&1 ||
		{ tail -20 "$work/configure.log" >&2; exit 1; }
	make -s -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log" >&2; exit 1; }
	make -s install >"$work/install.log" 2>&1 || { tail -20 "$work/install.log" >&2; exit 1; }
) || die "building libseccomp $VERSION with musl-gcc failed"
# Only the library, its headers and its .pc file are used (cgo finds them
# through PKG_CONFIG_LIBDIR=DIR/lib/pkgconfig).
rm -rf "$dir/bin" "$dir/share"
echo "$want" >"$dir/.stamp"
echo "musl.sh: libseccomp $VERSION for musl in $dir" >&2
