# Benchmarks: not part of `make test`.
#
#   make bench                       full run (~12 min on 2 cores), rewrites docs/benchmarks.md
#   make bench BENCH_FLAGS="-runs 1 -aof-runs 0 -http 5s -tasks 5000"
#                                    a quick look; docs untouched unless BENCH_DOCS is set
#   make bench-go                    Go benchmarks of the hot paths (decode, enqueue, middleware)
BENCH_FLAGS ?=
BENCH_DOCS ?= $(if $(strip $(BENCH_FLAGS)),,docs/benchmarks.md)
BENCH_GO_FLAGS ?= -benchtime 2s -count 3

.PHONY: bench bench-go

## bench: taskstack vs raw asynq, same run: HTTP enqueue, processing, latency, idle cost, RSS, sizes
bench:
	GO=$(GO) bash bench/bench.sh $(if $(BENCH_DOCS),-docs $(BENCH_DOCS)) -command 'make bench$(if $(strip $(BENCH_FLAGS)), BENCH_FLAGS="$(BENCH_FLAGS)")' $(BENCH_FLAGS)

## bench-go: Go benchmarks (-benchmem) of request decode+validation, enqueue against real Redis, worker middleware
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_GO_FLAGS) ./internal/web ./internal/tasks ./internal/worker
