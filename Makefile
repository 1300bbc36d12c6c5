# deaddrop: make demo | make test | make bench | make fuzz
GO        ?= go
BIN       := $(CURDIR)/bin/deaddrop
PKGS      := ./...
TESTFLAGS ?= -count=1 -timeout 40m

.PHONY: all build demo demo-swarm demo-ipfs test check unit bench fuzz fuzz-short stress clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/deaddrop

## demo: alice and bob on the embedded store, two processes, no servers.
demo: build
	DEADDROP_BIN=$(BIN) bash scripts/demo.sh

## demo-swarm, demo-ipfs: the same demo against a real Bee dev node or a
## private Kubo node started on loopback (built on first use).
demo-swarm: build
	DEADDROP_BIN=$(BIN) $(GO) run ./internal/devnode/withnode bee -- bash scripts/demo.sh

demo-ipfs: build
	DEADDROP_BIN=$(BIN) $(GO) run ./internal/devnode/withnode kubo -- bash scripts/demo.sh

## test: static checks, then every test, including those against real Bee
## and Kubo nodes (built from the Go module proxy and cached outside the repo
## on first use).
test: check fuzz-short
	DEADDROP_BEE=$$(bash scripts/bee.sh) DEADDROP_KUBO=$$(bash scripts/kubo.sh) DEADDROP_GETH=$$(bash scripts/geth.sh) \
		$(GO) test $(TESTFLAGS) $(PKGS)

## stress: the crash-consistency harness with ten times the trials.
stress:
	DEADDROP_CRASH_TRIALS=2000 DEADDROP_BEE=$$(bash scripts/bee.sh) \
		$(GO) test -count=1 -timeout 120m -run CrashConsistency -v ./cmd/deaddrop/ | grep -E 'trials:|^(ok|FAIL|---)'

check:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff

## unit: the fast tests only (no Bee or Kubo).
unit:
	$(GO) test -short $(PKGS)

bench:
	DEADDROP_BEE=$$(bash scripts/bee.sh) DEADDROP_KUBO=$$(bash scripts/kubo.sh) \
		$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m $(PKGS)

## fuzz: every fuzz target for FUZZTIME each; fuzz-short: a few seconds
## each, part of make test.
FUZZTIME ?= 60s
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

fuzz-short:
	bash scripts/fuzz.sh 3s

clean:
	rm -rf bin
