#!/usr/bin/env bash
# The main job, on a fresh machine: build registrar, start a local Eureka server when
# REGISTRY_URL is not set, run the C `register` example (the seed's MY_AWSOME_GO_MS), show the
# instance UP in the registry, and after Ctrl-C (or --for SECONDS) show it gone.
#
#   scripts/demo.sh             runs until Ctrl-C
#   scripts/demo.sh --for 5     stops by itself after 5 seconds (used by the tests)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
run_for=""
[ "${1:-}" = "--for" ] && run_for=${2:?--for needs a number of seconds}

work=$(mktemp -d /tmp/registrar-demo.XXXXXX)
example_pid=""
cleanup() {
  [ -n "$example_pid" ] && kill "$example_pid" 2>/dev/null || true
  scripts/test-eureka.sh stop "$work/eureka" 2>/dev/null || true
}
trap cleanup EXIT

echo "==> building libregistrar (release) and the C example"
cargo build --release --quiet
cc -std=c11 -Wall -Wextra -Werror -Iinclude examples/c/register.c \
  -Ltarget/release -lregistrar -Wl,-rpath,"$root/target/release" -o "$work/register"

if [ -z "${REGISTRY_URL:-}" ]; then
  echo "==> REGISTRY_URL is not set: starting a local Eureka server (first time: a Maven build)"
  REGISTRY_URL=$(scripts/test-eureka.sh start "$work/eureka")
  export REGISTRY_URL
fi
export REGISTRY_TYPE=${REGISTRY_TYPE:-NETFLIX_EUREKA}
export REGISTRY_APP_NAME=${REGISTRY_APP_NAME:-MY_AWSOME_GO_MS}
base=${REGISTRY_URL%/}; base=${base%/apps}/
curl_auth=()
[ -n "${REGISTRY_USER:-}" ] && curl_auth=(-u "$REGISTRY_USER:${REGISTRY_PASSWORD:-}")
show() {
  curl -sS "${curl_auth[@]}" -H 'Accept: application/json' -o "$work/app.json" -w '%{http_code}' \
    "${base}apps/$REGISTRY_APP_NAME" || true
}

echo "==> registering $REGISTRY_APP_NAME with ${base}"
"$work/register" >"$work/out" &
example_pid=$!
for _ in $(seq 1 300); do
  grep -q '^registered ' "$work/out" 2>/dev/null && break
  kill -0 "$example_pid" 2>/dev/null || { echo "the example exited early"; exit 1; }
  sleep 0.1
done
line=$(cat "$work/out")
echo "example says: $line"
if [ "$(show)" = 200 ]; then
  echo "registry has $REGISTRY_APP_NAME:"
  python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["application"]; i=a["instance"]; i=i if isinstance(i,list) else [i]; [print("   ", x["instanceId"], x["status"]) for x in i]' "$work/app.json"
fi

interrupted=false
trap 'interrupted=true' INT
if [ -n "$run_for" ]; then
  sleep "$run_for"
else
  echo "==> heartbeating; press Ctrl-C to stop"
  wait "$example_pid" || true
fi
kill -TERM "$example_pid" 2>/dev/null || true
rc=0; wait "$example_pid" || rc=$?
example_pid=""
echo "==> the example exited with status $rc"
code=$(show)
if [ "$code" = 404 ]; then
  echo "registry: $REGISTRY_APP_NAME is gone (HTTP 404)"
else
  echo "registry still answers $code for $REGISTRY_APP_NAME"; exit 1
fi
exit "$rc"
