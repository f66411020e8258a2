#!/usr/bin/env bash
# Runs bench/python/bench.py by hand: a venv with registrar (pip install ./bindings/python,
# which builds the library) and py-eureka-client, a real Eureka server on loopback (stopped on
# exit, also on failure), then the side-by-side benchmark. Arguments go to bench.py.
#   bench/python/run.sh [--rounds 3] [--interval 0.1] [--heartbeats 50]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv=${REGISTRAR_BENCH_VENV:-$root/.cache/bench-venv}
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install "py-eureka-client==0.13.3"
"${pip[@]}" install --force-reinstall --no-deps ./bindings/python

dir=$(mktemp -d /tmp/registrar-bench.XXXXXX)
trap 'scripts/test-eureka.sh stop "$dir/server"; rm -rf "$dir"' EXIT
url=$(scripts/test-eureka.sh start "$dir/server")
# Warm the server up (its JIT) so that neither client pays for the first requests it serves:
# reads, and a few registrations, heartbeats and deletions of a dummy instance.
body='{"instance":{"instanceId":"warmup:1","hostName":"localhost","app":"BENCH-WARMUP","ipAddr":"127.0.0.1","status":"UP","port":{"$":1,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"},"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"vipAddress":"warmup","lastDirtyTimestamp":"1"}}'
for _ in $(seq 1 20); do
  curl -fsS -o /dev/null -H 'Accept: application/json' "${url}apps"
  curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d "$body" "${url}apps/BENCH-WARMUP"
  curl -fsS -o /dev/null -X PUT "${url}apps/BENCH-WARMUP/warmup:1?status=UP&lastDirtyTimestamp=1"
  curl -fsS -o /dev/null -X DELETE "${url}apps/BENCH-WARMUP/warmup:1"
done
env -u REGISTRAR_LIBRARY "$venv/bin/python" bench/python/bench.py --url "$url" "$@"
