# mxc — OCI runtime for AI agents.
GO        ?= go
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.1.0-dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null)
# Static, with libseccomp: the same binary also runs inside containers as the
# agent's last step before exec (Landlock), where no host libc exists.
TAGS      ?= seccomp netgo osusergo urfave_cli_no_docs
# STRIP= keeps the symbols (for perf: bench/run.sh's CPU profile).
STRIP     ?= -s -w
LDFLAGS   := $(STRIP) -X main.version=$(VERSION) -X main.gitCommit=$(COMMIT) -extldflags -static
GOFLAGS_B := -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)"
# BIN: where build and shim put the binaries.
BIN       ?= bin
# LIBC: the C library the static binaries are linked with. musl (the
# default) starts every process ~0.25 ms sooner than glibc, whose start-up
# runs dozens of CPUID instructions (a hypervisor trap each on a VM): that is
# every mxc-runtime process (runtime, init, the agent's last step, fast exec,
# start and delete) and every shim. hack/musl.sh builds libseccomp for musl
# into .cache/musl once. LIBC=glibc links Debian's glibc and libseccomp.
LIBC      ?= musl
MUSL_DIR  := $(CURDIR)/.cache/musl
ifeq ($(LIBC),musl)
CGO_ENV   := CC=musl-gcc CGO_CFLAGS="-O2 -g -isystem $(MUSL_DIR)/include" PKG_CONFIG_LIBDIR=$(MUSL_DIR)/lib/pkgconfig
LIBC_DEP  := $(MUSL_DIR)/.stamp
else ifeq ($(LIBC),glibc)
CGO_ENV   :=
LIBC_DEP  :=
else
$(error LIBC must be musl or glibc, not "$(LIBC)")
endif
# The shim speaks ttrpc only; no_grpc leaves gRPC out of it as containerd's
# own runc shim does (a third smaller binary, ~2 ms less per start, and
# containerd starts a shim binary three times per container). Static with
# cgo for its C clean-up (shim/fastcleanup); netgo and osusergo keep glibc's
# resolver and user lookups, and their start-up cost, out of it.
SHIM_TAGS ?= urfave_cli_no_docs no_grpc netgo osusergo

.PHONY: all build shim build-windows deps test vet bench install demo clients clean

all: build

# mxc-monitor: the per-container helper (policy monitor, egress gate) that
# mxc-runtime starts from its own directory; pure Go, half mxc-runtime's size.
build: $(LIBC_DEP)
	$(CGO_ENV) $(GO) build $(GOFLAGS_B) -o $(BIN)/mxc-runtime ./cmd/mxc-runtime
	CGO_ENABLED=0 $(GO) build -trimpath -tags "netgo osusergo" -ldflags "$(STRIP) -X main.version=$(VERSION) -X main.gitCommit=$(COMMIT)" -o $(BIN)/mxc-monitor ./cmd/mxc-monitor

# The containerd shim (io.containerd.mxc.v2); it drives mxc-runtime.
shim: $(LIBC_DEP)
	$(CGO_ENV) CGO_ENABLED=1 $(GO) build -trimpath -tags "$(SHIM_TAGS)" -ldflags "$(STRIP) -X github.com/containerd/containerd/v2/version.Version=$(VERSION) -extldflags -static" -o $(BIN)/containerd-shim-mxc-v2 ./cmd/containerd-shim-mxc-v2

# libseccomp and the kernel headers for musl-gcc (LIBC=musl); rebuilt when
# the script or its patch changes.
$(MUSL_DIR)/.stamp: hack/musl.sh hack/musl/libseccomp-2.5.4-syscalls-linux-6.7.patch
	bash hack/musl.sh $(MUSL_DIR)

build-windows:
	GOOS=windows $(GO) build -trimpath -ldflags "-X main.version=$(VERSION) -X main.gitCommit=$(COMMIT)" -o bin/mxc-runtime.exe ./cmd/mxc-runtime

vet:
	$(GO) vet -tags "$(TAGS)" ./...
	GOOS=windows $(GO) build ./...
	GOOS=windows $(GO) vet ./...

install: build shim
	install -D -m 0755 bin/mxc-runtime $(DESTDIR)$(BINDIR)/mxc-runtime
	install -D -m 0755 bin/mxc-monitor $(DESTDIR)$(BINDIR)/mxc-monitor
	install -D -m 0755 bin/containerd-shim-mxc-v2 $(DESTDIR)$(BINDIR)/containerd-shim-mxc-v2

# docker, containerd (ctr, CRI + critest), podman, each started by the scripts (root).
clients: deps build shim
	MXC_RUNTIME=$(CURDIR)/bin/mxc-runtime MXC_SHIM=$(CURDIR)/bin/containerd-shim-mxc-v2 integration/clients/run-all.sh

clean:
	rm -rf bin

deps:
	hack/deps.sh

# The whole test run (root): what CI runs.
test: deps
	hack/test.sh

# Benchmarks against runc and crun, side by side (root); records docs/benchmarks.md.
bench: deps build
	MXC_RUNTIME=$(CURDIR)/bin/mxc-runtime bench/run.sh
	go run ./bench/egress
	go run ./bench/enforce -runs 30

# The main job: a policy enforced on a real container (root).
demo: deps
	hack/demo.sh
