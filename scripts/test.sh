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

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Every test binary (one per package) gets PACKAGE_TIMEOUT: a test that hangs
# fails its package in minutes, with a goroutine dump, not the whole run.
PACKAGE_TIMEOUT=${PACKAGE_TIMEOUT:-8m}

echo "== go vet + staticcheck"
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The filters below print failures as they happen; the exit status is go
# test's own (PIPESTATUS[0]), never the filter's.
filter() { grep -E '^(--- (FAIL|SKIP)|FAIL|ok|PASS|panic:|\s+--- (FAIL|SKIP))|_test\.go:' || true; }

echo "== go test -race ./... (timeout ${PACKAGE_TIMEOUT} per package)"
set +o pipefail
go test -race -count=1 -timeout "$PACKAGE_TIMEOUT" -v ./... 2>&1 | tee -a "$log" | filter
root_status=${PIPESTATUS[0]}
set -o pipefail

checks_status=0
if [[ -f deploy/checks/go.mod ]]; then
  echo "== deploy checks (compose, images, prometheus rules, grafana, kubernetes)"
  set +o pipefail
  (cd deploy/checks && go vet ./... && go test -count=1 -timeout "$PACKAGE_TIMEOUT" -v ./...) 2>&1 | tee -a "$log" | filter
  checks_status=${PIPESTATUS[0]}
  set -o pipefail
fi

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
