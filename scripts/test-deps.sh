#!/usr/bin/env bash
# Installs the system packages the test suite runs for real: redis-server,
# redis-sentinel and redis-cli (the fault suite), prometheus (with promtool) and chromium. As root it uses
# apt-get; otherwise it says exactly what to install and fails.
#
# It never stops a process by name: the tests start their own servers on
# free ports and stop them by PID. Debian's packages would start system
# services on install; a policy-rc.d keeps them from starting instead, so a
# developer's own Redis or Prometheus is never touched.
set -euo pipefail

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
command -v redis-cli >/dev/null || missing+=(redis-tools)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
{ command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } || missing+=(chromium)

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "test-deps: missing ${missing[*]}. Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  # Exit 101: "action forbidden"; invoke-rc.d then starts no service.
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
