# taskstack — the two commands a new user needs: `make dev` and `make test`.
SHELL := /bin/bash
GO ?= go
ENV ?= dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: dev test test-deps chaos fuzz mutate build lint vet fmt-check bench clean

## dev: run app + worker + monitor in one process; no Docker, no Redis needed (embedded, dev only). Open http://localhost:8080
dev:
	$(GO) run ./cmd/devstack

## test: install what the suite needs (as root), then vet, lint and run every test with -race
test:
	bash scripts/test.sh

## chaos: the long fault scenarios and the 60 s soak (real processes, ~5 min); prints FIGURE and SERIES lines (docs/reliability.md)
chaos:
	bash scripts/test-deps.sh
	$(GO) test -tags chaos -count=1 -timeout 30m -v ./e2e/faults/ 2>&1 | tee chaos.out | grep -E '^(--- |ok|FAIL|PASS)|\s+--- |FIGURE|SERIES|_test\.go:[0-9]+: [^{]'; exit $${PIPESTATUS[0]}

## fuzz: run every fuzz target for FUZZTIME each (default 10m), one after another
FUZZTIME ?= 10m
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

## mutate: mutation testing (go-gremlins) of internal/tasks, config, worker and web against their own tests; prints each package's efficacy (slow: ~1.5 h on 2 busy cores; docs/testing.md)
mutate:
	bash scripts/mutate.sh

## test-deps: only install the suite's system packages (redis-server, redis-sentinel, redis-tools, prometheus, chromium)
test-deps:
	bash scripts/test-deps.sh

## build: static binaries in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

## clean: remove built binaries, including those the tests build (.cache/testbin)
clean:
	rm -rf bin dist .cache

-include bench/bench.mk
-include deploy/compose/compose.mk
-include deploy/k8s/k8s.mk
