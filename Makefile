# mxc — OCI runtime for AI agents.
GO        ?= go
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.1.0-dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null)
# Static, with libseccomp: the same binary also runs inside containers as the
# agent's last step before exec (Landlock), where no host libc exists.
TAGS      ?= seccomp netgo osusergo urfave_cli_no_docs
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.gitCommit=$(COMMIT) -extldflags -static
GOFLAGS_B := -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)"

.PHONY: all build build-windows deps test vet bench install demo clean

all: build

build:
	$(GO) build $(GOFLAGS_B) -o bin/mxc-runtime ./cmd/mxc-runtime

build-windows:
	GOOS=windows $(GO) build -trimpath -ldflags "-X main.version=$(VERSION) -X main.gitCommit=$(COMMIT)" -o bin/mxc-runtime.exe ./cmd/mxc-runtime

vet:
	$(GO) vet -tags "$(TAGS)" ./...
	GOOS=windows $(GO) build ./...
	GOOS=windows $(GO) vet ./...

install: build
	install -D -m 0755 bin/mxc-runtime $(DESTDIR)$(BINDIR)/mxc-runtime

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
