#!/usr/bin/env bash
# `make test`: the whole suite, as CI runs it. Real redis-server, prometheus
# and chromium; no mocks, no skips (with CI=true a skipped test fails the run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/test-deps.sh

unformatted=$(gofmt -l cmd internal deploy/checks bench e2e third_party 2>/dev/null || true)
if [[ -n "$unformatted" ]]; then
  echo "gofmt: these files need formatting:" >&2
  echo "$unformatted" >&2
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== go vet + staticcheck"
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go test -race ./..."
go test -race -count=1 -timeout 15m -v ./... 2>&1 | tee -a "$log" | grep -E '^(=== RUN|--- (FAIL|SKIP)|FAIL|ok|PASS|panic:|\s+--- (FAIL|SKIP))|_test\.go:' | grep -v '^=== RUN' || true
root_status=${PIPESTATUS[0]}

checks_status=0
if [[ -f deploy/checks/go.mod ]]; then
  echo "== deploy checks (compose, images, prometheus rules, grafana, kubernetes)"
  (cd deploy/checks && go vet ./... && go test -count=1 -timeout 15m -v ./...) 2>&1 | tee -a "$log" | grep -E '^(--- (FAIL|SKIP)|FAIL|ok|PASS|panic:|\s+--- (FAIL|SKIP))|_test\.go:' || true
  checks_status=${PIPESTATUS[0]}
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
