#!/usr/bin/env bash
# `make fuzz`: run every fuzz target for FUZZTIME (default 10m), one after
# another with one worker each (the seed corpora in testdata/fuzz run in
# `make test` anyway), and print what each did. Figures for
# docs/reliability.md: grep '^FUZZ' of the output.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10m}

targets=(
  ./internal/tasks:FuzzPrepare
  ./internal/tasks:FuzzDecodeRequest
  ./internal/tasks:FuzzEchoPayload
  ./internal/tasks:FuzzFailPayload
  ./internal/config:FuzzParseQueues
  ./internal/redisconn:FuzzRedisURL
  ./internal/web:FuzzParseListQuery
  ./internal/store:FuzzIdempotencyKey
  ./internal/monitor:FuzzQueueFilter
  ./internal/monitor:FuzzMetricsParams
  ./internal/monitor:FuzzRootPath
)

status=0
for t in "${targets[@]}"; do
  pkg=${t%%:*} name=${t##*:}
  log=$(mktemp)
  start=$(date +%s)
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg" >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  execs=$(grep -a -oE 'execs: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  result=PASS
  if [[ $rc -ne 0 ]]; then
    result=FAIL status=1
    grep -a -E -- '--- FAIL|_test.go:|Failing input|go test -run' "$log" | head -20
  fi
  echo "FUZZ ${pkg#./}:${name} ${result} seconds=${secs} execs=${execs:-0}"
  rm -f "$log"
done
exit $status
