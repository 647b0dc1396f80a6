#!/usr/bin/env bash
# Runs taskstack's benchmark harness (bench/cmd/harness). It needs wrk and
# redis-server; as root it installs them with apt-get, otherwise it says
# what to install. Arguments go to the harness (see `go run
# ./bench/cmd/harness -h`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench: missing ${missing[*]}. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "bench: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

exec ${GO:-go} run ./bench/cmd/harness "$@"
