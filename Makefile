# havpn. `make demo` and `make test` are the two commands that matter.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/havpn/havpn/internal/buildinfo.Version=$(VERSION)
BIN     := bin/havpn

.PHONY: all build test test-deps demo man bench bench-go bench-tunnel bench-bgp fuzz lint clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/havpn

# Installs missing Debian packages (as root), fetches Go modules, runs every
# test with the race detector. Root-only tests skip unless run as root; with
# HAVPN_REQUIRE_ROOT=1 (CI) they fail instead of skipping.
test: test-deps
	$(GO) mod download
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -timeout 25m $$($(GO) list ./... | grep -v /internal/bgp$$)
	# GoBGP v4.8.0 races inside its own table code (TableManager,
	# Path.MarkStale); internal/bgp runs without -race until that is fixed.
	$(GO) test -timeout 10m ./internal/bgp

test-deps:
	./scripts/test-deps.sh

# Builds, brings the lab up and shows what works so far (scripts/demo.sh).
demo: build
	./scripts/demo.sh

man: build
	$(BIN) man docs/man

bench: bench-go

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

bench-tunnel: build test-deps
	./bench/tunnel/run.sh

bench-bgp: build test-deps
	./bench/bgp/run.sh

lint:
	test -z "$$(gofmt -l .)"
	$(GO) vet ./...

clean:
	rm -rf bin
