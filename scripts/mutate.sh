#!/usr/bin/env bash
# `make mutate`: mutation testing with go-gremlins. For every package below,
# gremlins changes the code one small way at a time (a < becomes <=, a +
# becomes -, a condition is negated...) and runs that package's own tests:
# a mutant the tests fail on is KILLED, one they pass is LIVED. Efficacy is
# killed / (killed + lived). Mutants that make the tests run past their
# time are TIMED OUT and count in neither. docs/testing.md keeps the
# figures and the survivors that are equivalent mutants.
#
# Slow by nature (one `go test` per mutant): about an hour and a half on 2
# busy cores, most of it internal/web (~55 min).
#   MUTATE_PACKAGES   packages to test (default: the four below)
#   MUTATE_WORKERS    mutants tested at once (default 2)
#   MUTATE_TIMEOUT_COEFFICIENT  a mutant's test run may take this many times
#                     the package's first, clean run (default 10: the
#                     packages whose tests take a second spend most of a
#                     run compiling, which a busy machine stretches; at 4,
#                     58 of internal/config's 136 mutants timed out under
#                     load, at 10 none did)
#   MUTATE_OUT        where the reports go (default .cache/mutate)
set -euo pipefail
cd "$(dirname "$0")/.."

GREMLINS=(go run github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0)
PACKAGES=${MUTATE_PACKAGES:-internal/tasks internal/config internal/worker internal/web}
WORKERS=${MUTATE_WORKERS:-2}
COEFFICIENT=${MUTATE_TIMEOUT_COEFFICIENT:-10}
OUT=${MUTATE_OUT:-.cache/mutate}

# Never a cached test result: a mutant's timeout is a multiple of the clean
# run's time, which a cache hit would make near zero.
export GOFLAGS="${GOFLAGS:-} -count=1"

bash scripts/test-deps.sh # redis-server, which the worker and web tests start

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# gremlins copies the whole module once per worker: give it the tracked
# files only (not .cache, with its test binaries, or bin/).
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$src"

summary=()
status=0
for pkg in $PACKAGES; do
  name=${pkg//\//-}
  echo "== gremlins unleash $pkg (workers $WORKERS, timeout coefficient $COEFFICIENT)"
  # The report lists every mutant with its status; LIVED are the ones to read.
  (cd "$src/$pkg" && "${GREMLINS[@]}" unleash --workers "$WORKERS" --timeout-coefficient "$COEFFICIENT" \
    --output "$OUT/$name.json" "$src/$pkg") 2>&1 | tee "$OUT/$name.txt" | grep -E '^ *(LIVED|TIMED OUT|NOT VIABLE)|Killed:|Timed out:|efficacy|coverage:' || true
  killed=$(sed -nE 's/.*Killed: ([0-9]+), Lived: ([0-9]+).*/\1/p' "$OUT/$name.txt")
  lived=$(sed -nE 's/.*Killed: ([0-9]+), Lived: ([0-9]+).*/\2/p' "$OUT/$name.txt")
  timedout=$(sed -nE 's/.*Timed out: ([0-9]+),.*/\1/p' "$OUT/$name.txt")
  if [[ -z "$killed" || -z "$lived" ]]; then
    summary+=("$(printf '%-18s gremlins did not finish: see %s' "$pkg" "$OUT/$name.txt")")
    status=1
    continue
  fi
  efficacy=$(awk -v k="$killed" -v l="$lived" 'BEGIN { if (k + l == 0) print "n/a"; else printf "%.1f%%", 100 * k / (k + l) }')
  summary+=("$(printf '%-18s killed %4d  lived %3d  timed out %3d  efficacy %s' "$pkg" "$killed" "$lived" "${timedout:-0}" "$efficacy")")
done

echo
echo "== mutation efficacy, $(date -u +%Y-%m-%d) (reports in $OUT)"
printf '%s\n' "${summary[@]}"
exit $status
