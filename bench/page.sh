#!/usr/bin/env bash
# Runs the page benchmark (bench/cmd/pagebench) against the seed's Flask+RQ
# app (bench/seed/app.py). It needs hey, redis-server and Debian's Python 3
# with Flask, RQ and gevent; as root it installs them with apt-get, otherwise
# it says what to install. Arguments go to pagebench (see `go run
# ./bench/cmd/pagebench -h`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v hey >/dev/null || missing+=(hey)
command -v redis-server >/dev/null || missing+=(redis-server)
/usr/bin/python3 -c 'import flask' 2>/dev/null || missing+=(python3-flask)
/usr/bin/python3 -c 'import rq' 2>/dev/null || missing+=(python3-rq)
/usr/bin/python3 -c 'import gevent' 2>/dev/null || missing+=(python3-gevent)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench-page: missing ${missing[*]}. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "bench-page: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

exec ${GO:-go} run ./bench/cmd/pagebench -python /usr/bin/python3 "$@"
