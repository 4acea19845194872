#!/usr/bin/env bash
# make-images.sh [base|critest]... - the test images, built offline (no registry access):
#   base     $IMAGES_DIR/busybox-rootfs.tar  plain rootfs (docker/podman import)
#            $IMAGES_DIR/busybox-local.tar   OCI+docker archive, $BUSYBOX_REF
#            $IMAGES_DIR/pause.tar           OCI+docker archive, $PAUSE_REF, entrypoint /pause
#   critest  offline stand-ins of every image critest (cri-tools v1.34/v1.37) pulls,
#            pushed to the local registry $REGISTRY (start it with registry.sh up)
# Needs busybox-static, jq, tar, sha256sum; catatonit (static) as pause, else a Go one.
# Idempotent: archives are rebuilt only when missing (FORCE=1 rebuilds).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$IT_HERE/lib-oci.sh"
need jq tar sha256sum
[ $# -gt 0 ] || set -- base
mkdir -p "$IMAGES_DIR"
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT

# pause_rootfs DIR: catatonit (static) in pause mode, else a tiny Go pause; sets PAUSE_EP
pause_rootfs() {
	mkdir -p "$1"
	if command -v catatonit >/dev/null && file -L "$(command -v catatonit)" | qgrep 'statically linked'; then
		cp "$(command -v catatonit)" "$1/pause"; PAUSE_EP='["/pause","-P"]' # -P: pause mode
		return
	fi
	mkdir -p "$w/gopause"
	cat >"$w/gopause/main.go" <<'GO'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

// Minimal pause: PID 1 of a pod sandbox. Exits on INT/TERM, reaps zombies.
func main() {
	c := make(chan os.Signal, 4)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range c {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				if pid, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
GO
	(cd "$w/gopause" && echo 'module pause' >go.mod && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$1/pause" .)
	PAUSE_EP='["/pause"]'
}
pause_config() { echo ".Entrypoint=$PAUSE_EP | .Cmd=null | .User=\"65535:65535\"${1:+ | $1}"; }

base() {
	if [ "${FORCE:-0}" != 1 ] && [ -s "$IMAGES_DIR/busybox-local.tar" ] && [ -s "$IMAGES_DIR/pause.tar" ] &&
		[ -s "$IMAGES_DIR/busybox-rootfs.tar" ] && [ "$(cat "$IMAGES_DIR/refs" 2>/dev/null)" = "$BUSYBOX_REF $PAUSE_REF" ]; then
		echo "base images cached in $IMAGES_DIR"; return
	fi
	oci_busybox_rootfs "$w/bb"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$w/bb" -cf "$IMAGES_DIR/busybox-rootfs.tar" .
	oci_build "$BUSYBOX_REF" "$w/bb" "$IMAGES_DIR/busybox-local.tar" '.Cmd=["sh"]'
	pause_rootfs "$w/pause"
	oci_build "$PAUSE_REF" "$w/pause" "$IMAGES_DIR/pause.tar" "$(pause_config)"
	echo "$BUSYBOX_REF $PAUSE_REF" >"$IMAGES_DIR/refs"
}

# critest pulls e2e images from registry.k8s.io / gcr.io; containerd's hosts.toml
# mirrors those to $REGISTRY, which serves these rebuilds under the same paths.
critest() {
	curl -fsS -m 3 "http://$REGISTRY/v2/" >/dev/null || die "registry $REGISTRY not up (registry.sh up)"
	local stamp=$IMAGES_DIR/critest/.pushed-v2-$REGISTRY
	if [ "${FORCE:-0}" != 1 ] && [ -f "$stamp" ] && curl -fs -o /dev/null \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$REGISTRY/v2/library/busybox-local/manifests/latest"; then
		echo "critest images already in $REGISTRY"; return
	fi
	local out=$IMAGES_DIR/critest
	mkdir -p "$out"
	# Debian's busybox-static runs applets via /proc/self/exe (FEATURE_SH_STANDALONE), so
	# critest's MaskedPaths test (mask /bin/ls, expect "Permission denied") cannot fail
	# as it should; Debian's dynamic "busybox" package is not standalone, like the real
	# e2e busybox image: `apt-get download` it (no install: it conflicts with
	# busybox-static) and use it, with its libc.  BUSYBOX_BIN overrides.
	if [ -z "${BUSYBOX_BIN:-}" ]; then
		local cache=$IMAGES_DIR/cache
		if [ ! -x "$cache/busybox-deb/bin/busybox" ]; then
			mkdir -p "$cache" && chmod 777 "$cache" # apt's _apt user downloads into it
			(cd "$cache" && rm -f busybox_*.deb && timeout 120 apt-get download busybox >/dev/null 2>&1 &&
				dpkg-deb -x busybox_*.deb busybox-deb) ||
				echo "note: apt-get download busybox failed; busybox-static used (critest MaskedPaths fails)" >&2
		fi
		[ -x "$cache/busybox-deb/bin/busybox" ] && export BUSYBOX_BIN=$cache/busybox-deb/bin/busybox
	fi
	oci_busybox_rootfs "$w/bb"
	b() { local f; f="$out/$(echo "$1" | tr '/:@' '___').tar"; oci_build "$1" "$2" "$f" "${3:-.}" >/dev/null; echo "$f"; }
	p() { oci_push "$1" "$REGISTRY" "$2" >/dev/null; }
	local K=registry.k8s.io/e2e-test-images G=gcr.io/k8s-staging-cri-tools
	p "$(b $K/busybox:1.29-2 "$w/bb" '.Cmd=["sh"]')" e2e-test-images/busybox:1.29-2
	# web servers (status 200 on GET /).  "nginx": a Go stand-in whose process is named
	# nginx, whose argv reads "master process", that writes /var/run/nginx.pid (critest's
	# HostPID/PodPID/ContainerPID tests check exactly these); httpd's log says "httpd"
	mkdir -p "$w/web/usr/share/nginx/html" "$w/ngx"; cp -a "$w/bb/." "$w/web/"
	echo '<h1>Welcome to nginx!</h1>' | tee "$w/web/var/www/index.html" >"$w/web/usr/share/nginx/html/index.html"
	cat >"$w/ngx/main.go" <<'GO'
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

const argv0 = "nginx: master process nginx"

func main() {
	if os.Args[0] != argv0 { // re-exec so /proc/self/cmdline reads like nginx's master
		exe, _ := os.Executable()
		log.Fatal(syscall.Exec(exe, []string{argv0, "-g", "daemon off;"}, os.Environ()))
	}
	_ = os.MkdirAll("/var/run", 0o755)
	_ = os.WriteFile("/var/run/nginx.pid", []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
	port := os.Getenv("NGINX_PORT")
	if port == "" {
		port = "80"
	}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
		<-c
		os.Exit(0)
	}()
	log.Fatal(http.ListenAndServe(":"+port, http.FileServer(http.Dir("/usr/share/nginx/html"))))
}
GO
	(cd "$w/ngx" && echo 'module nginx' >go.mod && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$w/web/usr/sbin/nginx" .)
	p "$(b $K/nginx:1.14-2 "$w/web" '.Cmd=["nginx","-g","daemon off;"] | .ExposedPorts={"80/tcp":{}}')" e2e-test-images/nginx:1.14-2
	p "$(b $K/httpd:2.4.39-4 "$w/web" '.Cmd=["sh","-c","echo httpd starting; exec httpd -f -v -p 80 -h /var/www"]')" e2e-test-images/httpd:2.4.39-4
	p "$(b $G/hostnet-nginx-amd64:latest "$w/web" '.Cmd=["nginx","-g","daemon off;"] | .Env += ["NGINX_PORT=12003"]')" k8s-staging-cri-tools/hostnet-nginx-amd64:latest
	# nonewprivs: a setuid-root program printing "Effective uid: N"
	mkdir -p "$w/nnp/src" "$w/nnp/root"; cp -a "$w/bb/." "$w/nnp/root/"
	cat >"$w/nnp/src/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
)

func main() { fmt.Printf("Effective uid: %d\n", os.Geteuid()) }
GO
	(cd "$w/nnp/src" && echo 'module nnp' >go.mod && CGO_ENABLED=0 go build -ldflags='-s -w' -o "$w/nnp/root/usr/local/bin/nnp" .)
	chmod 4755 "$w/nnp/root/usr/local/bin/nnp"
	p "$(b $K/nonewprivs:1.3 "$w/nnp/root" '.Cmd=["/usr/local/bin/nnp"]')" e2e-test-images/nonewprivs:1.3
	# image-user variants
	p "$(b $G/test-image-user-uid:latest "$w/bb" '.User="1002"')" k8s-staging-cri-tools/test-image-user-uid:latest
	p "$(b $G/test-image-user-username:latest "$w/bb" '.User="www-data"')" k8s-staging-cri-tools/test-image-user-username:latest
	p "$(b $G/test-image-user-uid-group:latest "$w/bb" '.User="1003:1003"')" k8s-staging-cri-tools/test-image-user-uid-group:latest
	p "$(b $G/test-image-user-username-group:latest "$w/bb" '.User="www-data:www-data"')" k8s-staging-cri-tools/test-image-user-username-group:latest
	mkdir -p "$w/pg"; cp -a "$w/bb/." "$w/pg/"
	echo 'default-user:x:1000:1000::/home/default-user:/bin/sh' >>"$w/pg/etc/passwd"
	printf 'default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' >>"$w/pg/etc/group"
	p "$(b $G/test-image-predefined-group:latest "$w/pg" '.User="1000"')" k8s-staging-cri-tools/test-image-predefined-group:latest
	# tag tests
	p "$(b $G/test-image-latest:latest "$w/bb")" k8s-staging-cri-tools/test-image-latest:latest
	p "$(b $G/test-image-tag:test "$w/bb")" k8s-staging-cri-tools/test-image-tag:test
	p "$(b $G/test-image-tag:all "$w/bb")" k8s-staging-cri-tools/test-image-tag:all
	local i same
	for i in 1 2 3; do p "$(b $G/test-image-$i:latest "$w/bb")" k8s-staging-cri-tools/test-image-$i:latest; done
	same=$(b $G/test-image-tags:1 "$w/bb")
	for i in 1 2 3; do p "$same" k8s-staging-cri-tools/test-image-tags:$i; done
	# the sandbox image (a test may remove it and pull it again)
	base >/dev/null
	p "$IMAGES_DIR/pause.tar" "${PAUSE_REF#*/}"
	# critest v1.37 pulls {registry.k8s.io,k8s.gcr.io}/pause:3.9 and expects exactly those
	# two tags on that image: a pause that differs from the sandbox image (a label)
	pause_rootfs "$w/pause39"
	p "$(b registry.k8s.io/pause:3.9 "$w/pause39" "$(pause_config '.Labels["mxc.dev/critest"]="1"')")" pause:3.9
	# the smoke tests' image, as docker.io/library/busybox-local through the mirror
	p "$IMAGES_DIR/busybox-local.tar" library/busybox-local:latest
	touch "$stamp"
	echo "critest images pushed to $REGISTRY"
}

for what in "$@"; do
	case $what in
	base) base ;;
	critest) critest ;;
	*) die "usage: make-images.sh [base|critest]..." ;;
	esac
done
