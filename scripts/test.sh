#!/usr/bin/env bash
# `make test`: the whole suite, as CI runs it. Real redis-server, prometheus
# and chromium; no mocks, no skips (with CI=true a skipped test fails the run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh

unformatted=$(git ls-files -co --exclude-standard '*.go' | grep -v '^third_party/' | xargs gofmt -l 2>/dev/null || true)
if [[ -n "$unformatted" ]]; then
  echo "gofmt: these files need formatting:" >&2
  echo "$unformatted" >&2
  exit 1
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Every test binary (one per package) gets its own -timeout, well under the
# 15 minutes CI gives the whole run: a test that hangs fails its package with
# a goroutine dump, not the run. Each wait inside a test has a bound of its
# own, of seconds (docs/testing.md); these are the backstop, with room for a
# busy machine. Measured on 2 cores at a load of ~18: most packages take
# under a minute (internal/web ~45 s); e2e, e2e/faults and the compose
# checks, which run the real binaries (and Prometheus), ~3 minutes each.
PACKAGE_TIMEOUT=${PACKAGE_TIMEOUT:-5m}
E2E_TIMEOUT=${E2E_TIMEOUT:-10m}

echo "== go vet + staticcheck"
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The filters below print failures as they happen; the exit status is go
# test's own (PIPESTATUS[0]), never the filter's.
filter() { grep --line-buffered -E '^(--- (FAIL|SKIP)|FAIL|ok|PASS|panic:|\s+--- (FAIL|SKIP))|_test\.go:' || true; }

# One timeout per go test: the long packages run in a go test of their own,
# at the same time as the others (go test runs up to GOMAXPROCS packages at
# once in each), so the run takes as long as its longest group, not the sum.
e2e_pkgs=$(go list ./e2e/...)
other_pkgs=$(go list ./... | grep -vxF "$e2e_pkgs")
echo "== go test -race ./e2e/... (timeout ${E2E_TIMEOUT} per package), in the background"
# shellcheck disable=SC2086 # package lists split on whitespace
go test -race -count=1 -timeout "$E2E_TIMEOUT" -v $e2e_pkgs >"$logs/e2e.log" 2>&1 &
e2e_pid=$!
# Interrupted or failed early: stop it too (by PID; its own cleanups and
# the processes' Pdeathsig stop what it started).
trap '[[ -z $e2e_pid ]] || kill "$e2e_pid" 2>/dev/null || true; rm -rf "$logs"' EXIT
echo "== go test -race, the other packages (timeout ${PACKAGE_TIMEOUT} per package)"
set +o pipefail
# shellcheck disable=SC2086
go test -race -count=1 -timeout "$PACKAGE_TIMEOUT" -v $other_pkgs 2>&1 | tee "$logs/other.log" | filter
other_status=${PIPESTATUS[0]}
set -o pipefail

checks_status=0
if [[ -f deploy/checks/go.mod ]]; then
  echo "== deploy checks (compose, images, prometheus rules, grafana, kubernetes)"
  (
    cd deploy/checks
    go vet ./... || exit 1
    # compose runs the real binaries and Prometheus; k8s only renders.
    go test -count=1 -timeout "$E2E_TIMEOUT" -v ./compose/ >"$logs/compose.log" 2>&1 &
    compose_pid=$!
    go test -count=1 -timeout "$PACKAGE_TIMEOUT" -v ./k8s/ >"$logs/k8s.log" 2>&1 && k8s=0 || k8s=$?
    wait "$compose_pid" && compose=0 || compose=$?
    exit $((compose | k8s))
  ) && checks_status=0 || checks_status=$?
  filter <"$logs/k8s.log"
  filter <"$logs/compose.log"
fi

echo "== waiting for ./e2e/..."
wait "$e2e_pid" && e2e_status=0 || e2e_status=$?
e2e_pid=
filter <"$logs/e2e.log"
root_status=$((other_status | e2e_status))
cat "$logs"/*.log >"$logs/all"
log=$logs/all

skips=$(grep -cE -- '--- SKIP' "$log" || true)
passed=$(grep -cE -- '^\s*--- PASS' "$log" || true)
failed=$(grep -cE -- '^\s*--- FAIL' "$log" || true)
echo "tests: ${passed} passed, ${failed} failed, ${skips} skipped"

if [[ $root_status -ne 0 || $checks_status -ne 0 ]]; then
  echo "FAIL: go test exited with ${root_status} (module) / ${checks_status} (deploy checks)" >&2
  exit 1
fi
if [[ "${CI:-}" == "true" && "$skips" != "0" ]]; then
  echo "FAIL: ${skips} test(s) skipped; with CI=true a skip is a failure (a missing dependency must not pass silently):" >&2
  grep -E -- '--- SKIP' "$log" >&2
  exit 1
fi
echo "PASS"
