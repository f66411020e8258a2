#!/usr/bin/env bash
# Memory of `registrar run` while it supervises a command: VmRSS / VmHWM (and the anonymous vs
# file-backed split, threads) of the registrar process itself - not of its command - read from
# /proc/PID/status once registered and UP, then every second while it heartbeats (every 1 s) and
# polls the command's health URL (every 0.5 s). Prints figures; asserts nothing.
#
#   bench/cli/rss.sh [SECONDS]      default 10 s of sampling
#   REGISTRAR_BENCH_EUREKA_URL=...  use a running registry instead of starting one
#   REGISTRAR_BIN=...               another binary (default target/release/registrar, built if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
seconds=${1:-10}
bin=${REGISTRAR_BIN:-$root/target/release/registrar}
work=$(mktemp -d /tmp/registrar-cli-bench.XXXXXX)
rpid=""
cleanup() {
  [ -n "$rpid" ] && kill -TERM "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
  [ -f "$work/eureka/pid" ] && scripts/test-eureka.sh stop "$work/eureka" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

[ -x "$bin" ] || cargo build --release --locked -p registrar-cli >&2
url=${REGISTRAR_BENCH_EUREKA_URL:-$(scripts/test-eureka.sh start "$work/eureka")}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
app="RSS-BENCH-$$"
id="$app-$port"

REGISTRY_URL=$url REGISTRY_APP_NAME=$app REGISTRY_INSTANCE_ID=$id REGISTRY_PORT=$port \
REGISTRY_HOSTNAME=localhost REGISTRY_IP_ADDRESS=127.0.0.1 REGISTRY_HEARTBEAT_INTERVAL=1 \
REGISTRY_HEALTH_URL="http://127.0.0.1:$port/" REGISTRY_HEALTH_INTERVAL=0.5 \
  "$bin" run --quiet -- python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>"$work/err" &
rpid=$!

for _ in $(seq 1 100); do
  curl -sf -H 'Accept: application/json' "${url}apps/$app/$id" | grep -q '"status":"UP"' && break
  sleep 0.1
done
curl -sf -H 'Accept: application/json' "${url}apps/$app/$id" | grep -q '"status":"UP"' \
  || { echo "the instance did not turn UP; registrar's log:"; cat "$work/err"; exit 1; }

field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$rpid/status"; }
echo "registrar $("$bin" --version | cut -d' ' -f2) ($(stat -c %s "$bin") bytes), pid $rpid, UP; sampling for $seconds s"
printf '%6s %10s %10s %10s %10s %8s\n' t VmRSS_KiB VmHWM_KiB RssAnon RssFile Threads
max=0
for t in $(seq 0 "$seconds"); do
  rss=$(field VmRSS)
  printf '%6s %10s %10s %10s %10s %8s\n' "$t" "$rss" "$(field VmHWM)" "$(field RssAnon)" "$(field RssFile)" "$(field Threads)"
  [ "$rss" -gt "$max" ] && max=$rss
  [ "$t" -lt "$seconds" ] && sleep 1
done
hwm=$(field VmHWM)
echo "RESULT registrar run: max VmRSS $max KiB ($(awk "BEGIN{printf \"%.2f\", $max/1024}") MiB), VmHWM $hwm KiB ($(awk "BEGIN{printf \"%.2f\", $hwm/1024}") MiB); target < 5 MiB"
