#!/usr/bin/env bash
# The registrar command's suite, against the real Eureka server: `run` around a small HTTP
# service (tests/cli/server.js with Node.js, else tests/cli/server.py) - readiness, health
# flapping, signals forwarded, drain, crashes and exit statuses - `register`, the queries,
# basic auth, and bad input.
#
#   scripts/test-cli.sh          standalone: builds target/release/registrar if missing, starts
#                                its own Eureka servers and stops them at the end
#   (from scripts/test.sh)       uses REGISTRAR_TEST_EUREKA_URL / REGISTRAR_TEST_EUREKA_AUTH_URL
#
# REGISTRAR_BIN picks another binary. Prints `cli tests: N passed, N failed` last and exits
# non-zero if anything failed. Every process it starts is stopped on exit.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bin=${REGISTRAR_BIN:-$root/target/release/registrar}
password=${REGISTRAR_TEST_PASSWORD:-s3cret-pw}
export REGISTRAR_TEST_PASSWORD=$password
work=$(mktemp -d /tmp/registrar-cli-test.XXXXXX)

passed=0
failed=0
failures=()
pids=()
own_servers=()

cleanup() {
  local pid child dir
  for pid in "${pids[@]}"; do
    # The service a registrar supervises first, then registrar itself.
    for child in $(pgrep -P "$pid" 2>/dev/null); do kill -KILL "$child" 2>/dev/null; done
    kill -KILL "$pid" 2>/dev/null
  done
  for dir in "${own_servers[@]}"; do scripts/test-eureka.sh stop "$dir" >/dev/null 2>&1; done
  [ "$failed" -eq 0 ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { # check DESCRIPTION COMMAND...: one test result
  local what=$1; shift
  if "$@"; then
    passed=$((passed + 1)); echo "  ok   $what"
  else
    failed=$((failed + 1)); failures+=("$what"); echo "  FAIL $what"
  fi
}

if [ ! -x "$bin" ]; then
  cargo build --release --locked -p registrar-cli >&2 || { echo "cli tests: 0 passed, 1 failed"; exit 1; }
fi
if [ -z "${REGISTRAR_TEST_EUREKA_URL:-}" ]; then
  REGISTRAR_TEST_EUREKA_URL=$(scripts/test-eureka.sh start "$work/eureka") || exit 1
  own_servers+=("$work/eureka")
fi
if [ -z "${REGISTRAR_TEST_EUREKA_AUTH_URL:-}" ]; then
  REGISTRAR_TEST_EUREKA_AUTH_URL=$(scripts/test-eureka.sh start "$work/eureka-auth" --auth) || exit 1
  own_servers+=("$work/eureka-auth")
fi
eureka=$REGISTRAR_TEST_EUREKA_URL
# REGISTRAR_TEST_CLI_SERVER=python forces the Python service (what a machine without Node.js runs).
if [ "${REGISTRAR_TEST_CLI_SERVER:-}" != python ] && command -v node >/dev/null; then
  server=(node tests/cli/server.js)
else
  server=(python3 tests/cli/server.py)
fi
echo "registrar: $bin; service: ${server[*]}; registry: $eureka"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The status the registry holds for APP/ID (GET apps/APP/ID is never cached), or GONE.
status_of() {
  local body
  body=$(curl -sf -H 'Accept: application/json' "${eureka}apps/$1/$2") || { echo GONE; return; }
  grep -o '"status":"[A-Z_]*"' <<<"$body" | head -1 | cut -d'"' -f4
}

# wait_status APP ID STATUS [SECONDS]: polls until the registry shows STATUS.
wait_status() {
  local i
  for i in $(seq 1 $((${4:-10} * 10))); do
    [ "$(status_of "$1" "$2")" = "$3" ] && return 0
    sleep 0.1
  done
  echo "    $1/$2 is $(status_of "$1" "$2"), expected $3" >&2
  return 1
}

# wait_exit PID CODE [SECONDS]: waits for a background registrar and compares its exit status.
wait_exit() {
  local i code
  for i in $(seq 1 $((${3:-15} * 10))); do
    if ! kill -0 "$1" 2>/dev/null; then
      wait "$1"; code=$?
      [ "$code" = "$2" ] && return 0
      echo "    exit status $code, expected $2" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "    still running after ${3:-15} s" >&2
  return 1
}

# Common settings of the instances under test: fast heartbeats and health checks, loopback.
instance_env() { # instance_env APP PORT
  export REGISTRY_URL=$eureka REGISTRY_APP_NAME=$1 REGISTRY_PORT=$2 REGISTRY_INSTANCE_ID="$1-$2" \
    REGISTRY_HOSTNAME=localhost REGISTRY_IP_ADDRESS=127.0.0.1 REGISTRY_HEARTBEAT_INTERVAL=1 \
    REGISTRY_LEASE_DURATION=5 REGISTRY_TIMEOUT=2 REGISTRY_HEALTH_INTERVAL=0.2 REGISTRY_HEALTH_THRESHOLD=2
}
clear_env() {
  unset REGISTRY_URL REGISTRY_APP_NAME REGISTRY_PORT REGISTRY_INSTANCE_ID REGISTRY_HOSTNAME \
    REGISTRY_IP_ADDRESS REGISTRY_HEARTBEAT_INTERVAL REGISTRY_LEASE_DURATION REGISTRY_TIMEOUT \
    REGISTRY_HEALTH_INTERVAL REGISTRY_HEALTH_THRESHOLD REGISTRY_HEALTH_URL REGISTRY_DRAIN_SECONDS \
    LISTEN_DELAY_MS
}

# start_run NAME [registrar options...]: `registrar run` around the test service in the
# background; @PORT@ in an option becomes the service's port. Sets $rpid (registrar), $state
# (the service's state dir), $app, $port, $id.
start_run() {
  local name=$1; shift
  app="CLI-$name-$$"; port=$(free_port); id="$app-$port"
  state="$work/$name"; mkdir -p "$state"
  instance_env "$app" "$port"
  "$bin" run "${@//@PORT@/$port}" -- "${server[@]}" "$port" "$state" >"$state/out" 2>"$state/err" &
  rpid=$!; pids+=("$rpid")
}

signalled() { grep -qx "$2" "$1/signals" 2>/dev/null; }
wait_signalled() { # wait_signalled DIR SIGNAL: the service noted SIGNAL within 5 s
  local i
  for i in $(seq 1 50); do signalled "$1" "$2" && return 0; sleep 0.1; done
  return 1
}
quiet() { "$@" >/dev/null; }
has() { grep -q -- "$2" "$1"; }
wait_listening() { # wait_listening PORT: the test service answers within 10 s
  local i
  for i in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done
  return 1
}
gone() { test "$(status_of "$1" "$2")" = GONE; }
query_fails_with() { # query_fails_with CODE TEXT registrar-args...: exit CODE, TEXT on stderr
  local want=$1 text=$2 code; shift 2
  "$bin" "$@" >/dev/null 2>"$work/err"; code=$?
  [ "$code" = "$want" ] && grep -q -- "$text" "$work/err" && return 0
  echo "    exit $code (expected $want); stderr: $(cat "$work/err")" >&2
  return 1
}

echo "--- run: readiness by health URL, health flapping, queries, SIGHUP, SIGTERM"
LISTEN_DELAY_MS=1500 start_run health --health-url "http://127.0.0.1:@PORT@/health"
check "registers as STARTING before the command is ready" wait_status "$app" "$id" STARTING 5
check "turns UP when the health URL answers 2xx" wait_status "$app" "$id" UP 10
touch "$state/unhealthy"
check "turns DOWN after the failing checks (threshold 2)" wait_status "$app" "$id" DOWN 5
rm -f "$state/unhealthy"
check "turns UP again when health passes" wait_status "$app" "$id" UP 5
touch "$state/unhealthy"
check "flaps DOWN a second time" wait_status "$app" "$id" DOWN 5
rm -f "$state/unhealthy"
check "and UP again" wait_status "$app" "$id" UP 5
"$bin" discover "$app" >"$work/discover.txt"
check "discover prints a table with the instance" has "$work/discover.txt" "$id *UP *localhost *127.0.0.1 *$port"
"$bin" discover "$app" --json >"$work/discover.json"
check "discover --json lists the instance" python3 -c "
import json; d=json.load(open('$work/discover.json'))
assert [i['instanceId'] for i in d]==['$id'] and d[0]['status']=='UP' and d[0]['port']==$port, d"
"$bin" apps --json >"$work/apps.json"
check "apps --json counts the app" python3 -c "
import json; d=json.load(open('$work/apps.json'))
assert {'app':'${app^^}','up':1,'instances':1} in d, d"
"$bin" apps >"$work/apps.txt"
check "apps prints a table" has "$work/apps.txt" "^${app^^} *1 *1$"
"$bin" instance "$app" "$id" >"$work/instance.txt"
check "instance prints the fields" has "$work/instance.txt" "^healthCheckUrl *http://localhost:$port/healthcheck"
"$bin" instance "$app" "$id" --json >"$work/instance.json"
check "instance --json is the instance" python3 -c "
import json; d=json.load(open('$work/instance.json')); assert d['instanceId']=='$id' and d['app']=='${app^^}', d"
check "instance of an unknown id exits 4 and names it" query_fails_with 4 "no-such-id" instance "$app" no-such-id
kill -HUP "$rpid"
check "SIGHUP is passed to the command" wait_signalled "$state" SIGHUP
check "SIGHUP leaves the instance UP" wait_status "$app" "$id" UP 1
echo 7 >"$state/term-exit"
kill -TERM "$rpid"
check "SIGTERM: registrar exits with the command's status (7)" wait_exit "$rpid" 7
check "SIGTERM was passed to the command" signalled "$state" SIGTERM
check "the instance is deregistered" gone "$app" "$id"
clear_env

echo "--- run: discover --all shows instances that are not UP"
start_run down --health-url "http://127.0.0.1:@PORT@/health"
touch "$state/unhealthy"
check "a service unhealthy from the start stays STARTING" wait_status "$app" "$id" STARTING 5
"$bin" discover "$app" --json >"$work/up-only.json"
"$bin" discover "$app" --all --json >"$work/all.json"
check "discover lists UP only by default, --all every status" python3 -c "
import json
assert json.load(open('$work/up-only.json'))==[]
d=json.load(open('$work/all.json')); assert [i['status'] for i in d]==['STARTING'], d"
kill -INT "$rpid"
check "SIGINT: exit status 130 (the command's)" wait_exit "$rpid" 130
check "SIGINT was passed to the command" signalled "$state" SIGINT
check "the instance is deregistered" gone "$app" "$id"
clear_env

echo "--- run: readiness by port, then the command crashes (exit 3)"
LISTEN_DELAY_MS=1500 start_run crash
check "STARTING while nothing listens on REGISTRY_PORT" wait_status "$app" "$id" STARTING 5
check "UP once the port accepts connections" wait_status "$app" "$id" UP 10
curl -s "http://127.0.0.1:$port/crash" >/dev/null
check "registrar exits with the crashed command's status (3)" wait_exit "$rpid" 3
check "the crashed command's instance is deregistered" gone "$app" "$id"
clear_env

echo "--- run: the command is killed by SIGKILL"
start_run killed --ready now
check "--ready now: UP at once" wait_status "$app" "$id" UP 5
check "the service answers" wait_listening "$port"
curl -s "http://127.0.0.1:$port/die" >/dev/null
check "killed by signal 9: exit status 137" wait_exit "$rpid" 137
check "the killed command's instance is deregistered" gone "$app" "$id"
clear_env

echo "--- run: drain before the signal reaches the command"
start_run drain --drain-seconds 2 --ready now
check "UP" wait_status "$app" "$id" UP 5
kill -TERM "$rpid"
check "DOWN at once on SIGTERM" wait_status "$app" "$id" DOWN 2
sleep 0.5
check "the command still runs during the drain (no SIGTERM yet)" test ! -e "$state/signals"
check "after the drain: SIGTERM passed on, exit 0" wait_exit "$rpid" 0 10
check "SIGTERM reached the command" signalled "$state" SIGTERM
check "the drained instance is deregistered" gone "$app" "$id"
clear_env

echo "--- run: a command that exits by itself, and one that cannot start"
app="CLI-short-$$"; port=$(free_port); id="$app-$port"
instance_env "$app" "$port"
"$bin" run --ready now -- sh -c 'sleep 1; exit 5' 2>"$work/short.err" &
rpid=$!; pids+=("$rpid")
check "UP while the command runs" wait_status "$app" "$id" UP 5
check "exit status 5 (the command's)" wait_exit "$rpid" 5
check "deregistered when the command ended" gone "$app" "$id"
check "the command starts with no signal blocked (it can receive what is passed on)" bash -c "
  '$bin' run -q --ready now -- grep -x 'SigBlk:[[:space:]]*0*' /proc/self/status >/dev/null 2>&1"
check "a command that does not exist: exit 127, named" query_fails_with 127 "/no/such-command" run -- /no/such-command
check "nothing registered for it" gone "$app" "$id"
clear_env

echo "--- register: a service running elsewhere"
app="CLI-register-$$"; port=$(free_port); id="$app-$port"; state="$work/register"; mkdir -p "$state"
"${server[@]}" "$port" "$state" & spid=$!; pids+=("$spid")
instance_env "$app" "$port"
"$bin" register --health-url "http://127.0.0.1:$port/health" 2>"$state/err" &
rpid=$!; pids+=("$rpid")
check "register: UP when the health URL answers" wait_status "$app" "$id" UP 10
touch "$state/unhealthy"
check "register: DOWN while the health check fails" wait_status "$app" "$id" DOWN 5
rm -f "$state/unhealthy"
check "register: UP again" wait_status "$app" "$id" UP 5
kill -TERM "$rpid"
check "register: SIGTERM deregisters and exits 0" wait_exit "$rpid" 0
check "register: the instance is gone" gone "$app" "$id"
check "register: the service itself was left alone" kill -0 "$spid"
kill -TERM "$spid"; wait "$spid" 2>/dev/null
clear_env

echo "--- register --ready port; run while the registry is unreachable"
app="CLI-regport-$$"; port=$(free_port); id="$app-$port"; state="$work/regport"; mkdir -p "$state"
instance_env "$app" "$port"
LISTEN_DELAY_MS=1500 "${server[@]}" "$port" "$state" & spid=$!; pids+=("$spid")
"$bin" register --ready port 2>"$state/err" &
rpid=$!; pids+=("$rpid")
check "register --ready port: STARTING until REGISTRY_IP_ADDRESS:REGISTRY_PORT accepts" wait_status "$app" "$id" STARTING 5
check "register --ready port: then UP" wait_status "$app" "$id" UP 10
kill -INT "$rpid"
check "register: SIGINT deregisters and exits 0" wait_exit "$rpid" 0
check "register: gone" gone "$app" "$id"
kill -TERM "$spid"; wait "$spid" 2>/dev/null
"$bin" run --url http://127.0.0.1:1/eureka/ --timeout 0.5 --ready now -- sh -c 'sleep 0.5; exit 4' \
  2>"$work/unreachable.err"; code=$?
check "registry unreachable: the command still runs, its status (4) is registrar's" test "$code" = 4
check "...and the failures are logged, naming the registry" has "$work/unreachable.err" "127.0.0.1:1"
clear_env

echo "--- the container entrypoint example (examples/cli/entrypoint.sh + server.js)"
if command -v node >/dev/null; then
  app="CLI-entrypoint-$$"; port=$(free_port); id="$app-$port"
  instance_env "$app" "$port"
  export REGISTRY_HEALTH_URL="http://127.0.0.1:$port/health" REGISTRY_DRAIN_SECONDS=0.5
  PATH="$(dirname "$bin"):$PATH" examples/cli/entrypoint.sh node examples/cli/server.js \
    >"$work/entrypoint.out" 2>"$work/entrypoint.err" &
  rpid=$!; pids+=("$rpid")
  check "entrypoint example: UP when the service answers its health URL" wait_status "$app" "$id" UP 10
  kill -TERM "$rpid"
  check "entrypoint example: SIGTERM drains, stops the service, exits 0" wait_exit "$rpid" 0
  check "entrypoint example: deregistered" gone "$app" "$id"
  clear_env
else
  echo "  (skipped: needs Node.js)"
fi

echo "--- basic auth"
auth_url=${REGISTRAR_TEST_EUREKA_AUTH_URL}
check "apps with --user/--password answers" quiet "$bin" apps --url "$auth_url" --user registrar --password "$password"
check "a wrong password: exit 2, the message names the settings, not the password" \
  query_fails_with 2 "REGISTRY_USER / REGISTRY_PASSWORD" apps --url "$auth_url" --user registrar --password wrong-pw-x
check "the password is not echoed" bash -c "! grep -q wrong-pw-x '$work/err'"

echo "--- bad input"
check "no command: exit 2" query_fails_with 2 "unknown command" fly
check "run without a command: exit 2" query_fails_with 2 "after --" run
check "an unknown option is named" query_fails_with 2 "--colour" apps --colour red
check "a bad option value names the option" \
  query_fails_with 2 "REGISTRY_PORT (option --port) '70000'" run --url "$eureka" --app-name x --port 70000 -- true
check "a bad variable is named" \
  env REGISTRY_HEARTBEAT_INTERVAL=fast REGISTRY_URL="$eureka" REGISTRY_APP_NAME=x \
  bash -c "'$bin' run -- true >/dev/null 2>&1; test \$? = 2" 
check "...and the message says which" \
  bash -c "REGISTRY_HEARTBEAT_INTERVAL=fast REGISTRY_URL='$eureka' REGISTRY_APP_NAME=x '$bin' run -- true 2>&1 | grep -q \"REGISTRY_HEARTBEAT_INTERVAL 'fast'\""
check "REGISTRY_URL missing: exit 2, named" query_fails_with 2 "REGISTRY_URL is not set" apps
check "an https health URL is refused, named" \
  query_fails_with 2 "REGISTRY_HEALTH_URL" register --url "$eureka" --app-name x --health-url https://127.0.0.1:1/
check "--ready health without a health URL" query_fails_with 2 "REGISTRY_HEALTH_URL" register --url "$eureka" --app-name x --ready health
check "a registry that does not answer: exit 3" query_fails_with 3 "unreachable" apps --url http://127.0.0.1:1/eureka/
check "config errors start nothing: the command did not run" \
  bash -c "'$bin' run --url '$eureka' --app-name x --port 0 -- touch '$work/ran' 2>/dev/null; test ! -e '$work/ran'"
check "--help lists every setting of the core (src/config.rs SETTINGS)" bash -c "
  diff <(awk '/^pub const SETTINGS/,/^];/' src/config.rs | grep -o '\"REGISTRY_[A-Z_]*\"' | tr -d '\"') \\
       <('$bin' --help | grep -o 'VALUE  REGISTRY_[A-Z_]*' | cut -c8-)"

echo
if [ "$failed" -gt 0 ]; then
  printf '  failed: %s\n' "${failures[@]}"
  echo "logs kept in $work"
fi
echo "cli tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
