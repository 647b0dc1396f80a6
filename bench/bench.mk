# Benchmarks: not part of `make test`.
#
#   make bench                       full run (~12 min on 2 cores), rewrites docs/benchmarks.md
#   make bench BENCH_FLAGS="-runs 1 -aof-runs 0 -http 5s -tasks 5000"
#                                    a quick look; docs untouched unless BENCH_DOCS is set
#   make bench-go                    Go benchmarks of the hot paths (decode, enqueue, middleware)
#   make bench-page                  the page against the seed's Flask+RQ app (~8 min), rewrites its block of docs/benchmarks.md
#   make bench-page BENCH_PAGE_FLAGS="-runs 1 -post 5s -get 5s -hold 10s"
#                                    a quick look; docs untouched unless BENCH_PAGE_DOCS is set
BENCH_FLAGS ?=
BENCH_DOCS ?= $(if $(strip $(BENCH_FLAGS)),,docs/benchmarks.md)
BENCH_GO_FLAGS ?= -benchtime 2s -count 3
BENCH_PAGE_FLAGS ?=
BENCH_PAGE_DOCS ?= $(if $(strip $(BENCH_PAGE_FLAGS)),,docs/benchmarks.md)

.PHONY: bench bench-go bench-page

## bench: taskstack vs raw asynq, same run: HTTP enqueue, processing, latency, idle cost, RSS, sizes
bench:
	GO=$(GO) bash bench/bench.sh $(if $(BENCH_DOCS),-docs $(BENCH_DOCS)) -command 'make bench$(if $(strip $(BENCH_FLAGS)), BENCH_FLAGS="$(BENCH_FLAGS)")' $(BENCH_FLAGS)

## bench-go: Go benchmarks (-benchmem) of request decode+validation, enqueue against real Redis, worker middleware
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_GO_FLAGS) ./internal/web ./internal/tasks ./internal/worker

## bench-page: the page vs the seed's Flask+RQ form (hey -c 32): POST /tasks, GET / at 0 and 100k tasks, Redis cost of 1 vs 200 live viewers
bench-page:
	GO=$(GO) bash bench/page.sh $(if $(BENCH_PAGE_DOCS),-docs $(BENCH_PAGE_DOCS)) -command 'make bench-page$(if $(strip $(BENCH_PAGE_FLAGS)), BENCH_PAGE_FLAGS="$(BENCH_PAGE_FLAGS)")' $(BENCH_PAGE_FLAGS)
