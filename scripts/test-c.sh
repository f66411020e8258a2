#!/usr/bin/env bash
# The C suite: the header as C and C++, the C test programs (tests/c/) linked against the .so,
# against the .a, and once under AddressSanitizer + UndefinedBehaviorSanitizer (leaks
# included), and the C example (examples/c/register.c) end to end against a real Eureka server.
#
#   scripts/test-c.sh            standalone: builds the library, starts its own Eureka servers
#                                (plain and basic-auth) and stops them at the end
#   (from scripts/test.sh)       uses REGISTRAR_TEST_EUREKA_URL / REGISTRAR_TEST_EUREKA_AUTH_URL
#
# REGISTRAR_TEST_VERBOSE=1 shows every check; REGISTRAR_TEST_KEEP=1 keeps target/c-tests/run.* of a
# passing run (a failing run always keeps it). Prints `c tests: N passed, N failed` last and
# exits non-zero if anything failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# One directory per run (binaries, logs): several runs may share this work tree.
mkdir -p "$root/target/c-tests"
out=$(mktemp -d "$root/target/c-tests/run.XXXXXX")
lib="$root/target/release"
password=${REGISTRAR_TEST_PASSWORD:-s3cret-pw}
export REGISTRAR_TEST_PASSWORD=$password

passed=0
failed=0
failures=()
own_servers=()
pids=()

cleanup() {
  local pid dir
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for dir in "${own_servers[@]}"; do scripts/test-eureka.sh stop "$dir" >/dev/null 2>&1; done
  [ -n "${own_run_dir:-}" ] && rm -rf "$own_run_dir"
  # Keep the logs of a failed run; a clean run leaves nothing behind.
  if [ "$failed" -eq 0 ] && [ "${REGISTRAR_TEST_KEEP:-0}" = 0 ]; then rm -rf "$out"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check NAME CMD...: one test; its output goes to $out/NAME.log, shown when it fails.
check() {
  local name=$1; shift
  local log="$out/$name.log" t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "  ok    $name$(summary_of "$log") [$((SECONDS - t0)) s]"
    [ "${REGISTRAR_TEST_VERBOSE:-0}" = 0 ] || sed 's/^/        /' "$log"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "  FAIL  $name (log: $log)"
    tail -40 "$log" | sed 's/^/        /'
  fi
}
die() { # a step the rest cannot run without failed
  echo "$1"; failed=$((failed + 1)); failures+=("$1")
  echo "c tests: $passed passed, $failed failed"
  exit 1
}
wait_exit() { # wait_exit PID SECONDS -> the process's exit status, or 124 after killing it
  local i
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  local rc=0
  if kill -0 "$1" 2>/dev/null; then kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; rc=124
  else wait "$1" || rc=$?; fi
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
  return $rc
}
summary_of() { # the "...: N checks passed, M failed" line of a test program, if any
  local line; line=$(grep -E 'checks passed' "$1" | tail -1)
  [ -n "$line" ] && echo " ($line)"
}

CFLAGS=(-std=c11 -O1 -g -Wall -Wextra -Werror -I"$root/include" -I"$root/tests/c")
SHARED=(-L"$lib" -lregistrar -Wl,-rpath,"$lib" -lpthread)
STATIC=("$lib/libregistrar.a" -lpthread -ldl -lm)
SANITIZE=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# A Rust std artifact, not a registrar leak, would be listed here (none needed so far).
export LSAN_OPTIONS=${LSAN_OPTIONS:-}

echo "==> building"
# cargo decides whether anything changed; on a fresh machine this builds the .so and the .a.
cargo build --release --locked -q || die "cargo build --release failed"
for tool in cc c++ curl; do
  command -v $tool >/dev/null || die "missing tool: $tool"
done
asan_works() {
  echo 'int main(void){return 0;}' >"$out/asan-probe.c"
  cc -fsanitize=address,undefined "$out/asan-probe.c" -o "$out/asan-probe" 2>/dev/null && "$out/asan-probe"
}
if ! asan_works; then
  # The sanitizer runtimes ship with gcc's libgcc-N-dev on Debian/Ubuntu; install only if absent.
  echo "AddressSanitizer runtime missing: installing it"
  gccv=$(cc -dumpversion | cut -d. -f1)
  (apt-get update -qq && apt-get install -y -qq "libgcc-$gccv-dev" "libasan*" "libubsan*") >/dev/null 2>&1 || true
fi

build() { # build NAME SOURCE FLAGS... (compile errors become a failed test)
  local name=$1 src=$2; shift 2
  check "build-$name" cc "${CFLAGS[@]}" "$src" -o "$out/$name" "$@"
}
build test_api tests/c/test_api.c "${SHARED[@]}"
build test_api-static tests/c/test_api.c "${STATIC[@]}"
build test_api-asan tests/c/test_api.c "${SANITIZE[@]}" "${STATIC[@]}"
build test_live tests/c/test_live.c "${SHARED[@]}"
build test_live-static tests/c/test_live.c "${STATIC[@]}"
build test_live-asan tests/c/test_live.c "${SANITIZE[@]}" "${STATIC[@]}"
build test_events tests/c/test_events.c "${SHARED[@]}"
build test_events-asan tests/c/test_events.c "${SANITIZE[@]}" "${STATIC[@]}"
build test_faults tests/c/test_faults.c "${SHARED[@]}"
build test_tls tests/c/test_tls.c "${SHARED[@]}"
build test_metrics tests/c/test_metrics.c "${SHARED[@]}"
build test_metrics-asan tests/c/test_metrics.c "${SANITIZE[@]}" "${STATIC[@]}"
build register examples/c/register.c "${SHARED[@]}"
build register-static examples/c/register.c "${STATIC[@]}"
# Every C example compiles warning-free against both libraries (discover also runs below).
for example in examples/c/*.c; do
  name=$(basename "$example" .c)
  [ "$name" = register ] && continue
  build "example-$name" "$example" "${SHARED[@]}"
  build "example-$name-static" "$example" "${STATIC[@]}"
done
check header-as-c99 cc -x c -std=c99 -pedantic -fsyntax-only -Wall -Wextra -Werror include/registrar.h
check header-as-c++ c++ -x c++ -fsyntax-only -Wall -Wextra -Werror include/registrar.h
check build-cpp_smoke c++ -std=c++11 -Wall -Wextra -Werror -Iinclude tests/c/cpp_smoke.cpp \
  -o "$out/cpp_smoke" "${SHARED[@]}"

# ---- registries -------------------------------------------------------------------------
url=${REGISTRAR_TEST_EUREKA_URL:-}
auth_url=${REGISTRAR_TEST_EUREKA_AUTH_URL:-}
if [ -z "$url" ]; then
  echo "==> starting Eureka servers (plain and basic auth)"
  # Server directories sit directly in the run dir, where scripts/test.sh's cleanup looks too.
  if [ -n "${REGISTRAR_TEST_RUN_DIR:-}" ]; then
    run_dir=$REGISTRAR_TEST_RUN_DIR
  else
    own_run_dir=$(mktemp -d /tmp/registrar-c.XXXXXX); run_dir=$own_run_dir
  fi
  plain_dir=$(mktemp -d "$run_dir/c-plain.XXXXXX"); auth_dir=$(mktemp -d "$run_dir/c-auth.XXXXXX")
  own_servers=("$plain_dir" "$auth_dir")
  scripts/test-eureka.sh jar >/dev/null || die "cannot build the test Eureka server"
  scripts/test-eureka.sh start "$plain_dir" >"$out/plain.url" 2>"$out/plain.err" &
  p1=$!
  scripts/test-eureka.sh start "$auth_dir" --auth >"$out/auth.url" 2>"$out/auth.err" &
  p2=$!
  pids+=("$p1" "$p2") # interrupted while starting: stop the starters before the servers
  wait_exit "$p1" 120 || true; wait_exit "$p2" 120 || true
  url=$(cat "$out/plain.url"); auth_url=$(cat "$out/auth.url")
  [ -n "$url" ] || { cat "$out/plain.err"; die "the test Eureka server did not start"; }
  [ -n "$auth_url" ] || { cat "$out/auth.err"; die "the test Eureka server (auth) did not start"; }
fi
export REGISTRAR_TEST_EUREKA_URL=$url REGISTRAR_TEST_EUREKA_AUTH_URL=$auth_url
echo "==> registry $url${auth_url:+ (auth: $auth_url)}"
if [ -z "${REGISTRAR_TEST_EUREKA_TLS_URL:-}" ]; then
  echo "==> starting the https and mTLS Eureka servers"
  tls_run=${REGISTRAR_TEST_RUN_DIR:-${own_run_dir:-}}
  [ -n "$tls_run" ] || { own_run_dir=$(mktemp -d /tmp/registrar-c.XXXXXX); tls_run=$own_run_dir; }
  own_servers+=("$tls_run/shared-tls" "$tls_run/shared-mtls")
  tls_env=$(scripts/test-tls-servers.sh "$tls_run" 2>"$out/tls.err") ||
    { cat "$out/tls.err"; die "the TLS Eureka servers did not start"; }
  eval "$tls_env"
fi

# ---- test programs -----------------------------------------------------------------------
# The library prints nothing by itself: test_api's stderr must stay empty.
quiet_stderr() {
  "$@" 2>"$out/stderr.txt"; local rc=$?
  if [ -s "$out/stderr.txt" ]; then echo "unexpected stderr:"; cat "$out/stderr.txt"; return 1; fi
  return $rc
}
echo "==> C test programs"
check run-test_api quiet_stderr timeout 120 "$out/test_api"
check run-test_api-static timeout 120 "$out/test_api-static"
check run-test_api-asan timeout 180 "$out/test_api-asan"
check run-test_live timeout 120 "$out/test_live"
check run-test_live-static timeout 120 "$out/test_live-static"
check run-test_live-asan timeout 180 "$out/test_live-asan"
check run-test_events timeout 120 "$out/test_events"
check run-test_events-asan timeout 180 "$out/test_events-asan"
check run-test_metrics timeout 120 "$out/test_metrics"
check run-test_metrics-asan timeout 180 "$out/test_metrics-asan"
check run-cpp_smoke timeout 30 "$out/cpp_smoke"
# Wrong-host and expired certificates come from two small TLS listeners (they exit by
# themselves after 120 s; cleanup stops them sooner).
for name in wrong-host expired; do
  python3 tests/c/tls_listener.py "$REGISTRAR_TEST_TLS_CERTS/$name.pem" \
    "$REGISTRAR_TEST_TLS_CERTS/$name.key" "$out/$name.port" 120 >/dev/null 2>&1 &
  pids+=("$!")
done
for ((i = 0; i < 50; i++)); do [ -s "$out/wrong-host.port" ] && [ -s "$out/expired.port" ] && break; sleep 0.1; done
export REGISTRAR_TEST_TLS_WRONG_HOST_URL="https://127.0.0.1:$(cat "$out/wrong-host.port")/eureka/"
export REGISTRAR_TEST_TLS_EXPIRED_URL="https://127.0.0.1:$(cat "$out/expired.port")/eureka/"
check run-test_tls timeout 120 "$out/test_tls"
# Registries that misbehave (500/503/429, redirects, hangs, endless and stalled bodies, a
# refused DELETE) come from one small stub, which exits by itself after 150 s.
python3 tests/c/fault_registry.py "$out/faults.port" 150 >/dev/null 2>&1 &
pids+=("$!")
for ((i = 0; i < 50; i++)); do [ -s "$out/faults.port" ] && break; sleep 0.1; done
check run-test_faults env REGISTRAR_FAULT_STUB="http://127.0.0.1:$(cat "$out/faults.port")/" \
  timeout 120 "$out/test_faults"

# ---- the example, end to end --------------------------------------------------------------
get_code() { # get_code BASE APP ID [user:pass] -> HTTP status of GET apps/APP/ID
  local creds=(); [ -n "${4:-}" ] && creds=(-u "$4")
  curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' "${creds[@]}" \
    -H 'Accept: application/json' "$1apps/$2/$3"
}
get_body() {
  local creds=(); [ -n "${4:-}" ] && creds=(-u "$4")
  curl -s --noproxy '*' --max-time 5 "${creds[@]}" -H 'Accept: application/json' "$1apps/$2/$3"
}
wait_for() { # wait_for FILE REGEX SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
# run_example BIN TAG [VAR=value...]: starts the example in the background with a clean
# REGISTRY_* environment plus the given settings; sets $ex_pid, files $out/TAG.{out,err}.
run_example() {
  local bin=$1 tag=$2; shift 2
  env $(env | grep -o '^REGISTRY_[A-Z_]*' | sed 's/^/-u /') "$@" \
    "$bin" >"$out/$tag.out" 2>"$out/$tag.err" &
  ex_pid=$!
  pids+=("$ex_pid")
}

# The seed's scenario: registered APP/ID on stdout, UP in the registry, a signal, gone, exit 0.
example_lifecycle() { # BIN SIGNAL REGISTRY [user:password]
  local bin=$1 sig=$2 base=$3 creds=${4:-} app=MY_AWSOME_GO_MS
  local tag="example-$sig${creds:+-auth}" id="c-example-$$-$sig${creds:+-auth}"
  local extra=()
  [ -n "$creds" ] && extra=(REGISTRY_USER="${creds%%:*}" REGISTRY_PASSWORD="${creds#*:}")
  run_example "$bin" "$tag" REGISTRY_URL="$base" REGISTRY_APP_NAME="$app" \
    REGISTRY_INSTANCE_ID="$id" REGISTRY_HEARTBEAT_INTERVAL=1 REGISTRY_LOG=1 "${extra[@]}"
  local pid=$ex_pid o="$out/$tag.out" e="$out/$tag.err"
  wait_for "$o" '^registered ' 15 || { echo "no 'registered' line"; cat "$e"; return 1; }
  echo "stdout: $(cat "$o")"
  [ "$(cat "$o")" = "registered $app/$id" ] || { echo "unexpected stdout"; return 1; }
  [ "$(get_code "$base" "$app" "$id" "$creds")" = 200 ] || { echo "not in the registry"; return 1; }
  get_body "$base" "$app" "$id" "$creds" | grep -q '"status":"UP"' || { echo "not UP"; return 1; }
  echo "registry: UP"
  sleep 1.5 # a heartbeat or two
  kill "-$sig" "$pid"
  local rc=0; wait_exit "$pid" 15 || rc=$?
  echo "exit status after SIG$sig: $rc"
  [ "$rc" = 0 ] || { cat "$e"; return 1; }
  local code; code=$(get_code "$base" "$app" "$id" "$creds")
  echo "registry after exit: HTTP $code"
  [ "$code" = 404 ] || return 1
  grep -q "registrar INFO" "$e" || { echo "REGISTRY_LOG=1 showed no library log"; return 1; }
  if [ -n "$creds" ] && grep -q -- "${creds#*:}" "$e" "$o"; then echo "password printed"; return 1; fi
  echo "stderr:"; cat "$e"
}
# Bad configuration: non-zero exit, the library's message naming the variable, nothing on stdout.
example_bad_config() { # NAME-IN-MESSAGE VAR=value...
  local want=$1; shift
  run_example "$out/register" example-bad "$@"
  local rc=0; wait_exit "$ex_pid" 10 || rc=$?
  echo "exit status $rc; stderr: $(cat "$out/example-bad.err")"
  [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "$want" "$out/example-bad.err" &&
    [ ! -s "$out/example-bad.out" ]
}
# Not registered: the reason on stderr once (not once per retry), still stoppable, exit 0.
example_not_registered() { # TAG EXPECTED-REGEX FORBIDDEN VAR=value...
  local tag=$1 want=$2 forbidden=$3; shift 3
  run_example "$out/register" "$tag" REGISTRY_APP_NAME=MY_AWSOME_GO_MS \
    REGISTRY_INSTANCE_ID="c-example-$$-$tag" REGISTRY_TIMEOUT=2 "$@"
  local pid=$ex_pid e="$out/$tag.err"
  wait_for "$e" "$want" 10 || { echo "no '$want' on stderr"; cat "$e"; return 1; }
  sleep 3 # several retries (backoff 0.1, 0.2, 0.4, 0.8, 1.6 s)
  kill -TERM "$pid"
  local rc=0; wait_exit "$pid" 10 || rc=$?
  echo "exit status $rc; stderr:"; cat "$e"
  local n; n=$(grep -cE "$want" "$e")
  [ "$rc" = 0 ] && [ "$n" = 1 ] && [ ! -s "$out/$tag.out" ] && ! grep -q -- "$forbidden" "$e"
}

echo "==> C example"
check example-sigterm example_lifecycle "$out/register" TERM "$url"
check example-static-sigint example_lifecycle "$out/register-static" INT "$url"
# Signals acted on within 100 ms in every phase, exit 1 when deregistration failed: the
# driver shared with the Python and Go suites.
check example-signals python3 tests/example_signals.py --registry "$url" -- "$out/register"
check example-no-url example_bad_config REGISTRY_URL REGISTRY_APP_NAME=MY_AWSOME_GO_MS
check example-bad-port example_bad_config REGISTRY_PORT REGISTRY_URL="$url" \
  REGISTRY_APP_NAME=MY_AWSOME_GO_MS REGISTRY_PORT=80x
check example-bad-type example_bad_config NETFLIX_EUREKA REGISTRY_URL="$url" \
  REGISTRY_APP_NAME=MY_AWSOME_GO_MS REGISTRY_TYPE=CONSUL
check example-unreachable example_not_registered unreachable 'not registered yet: registry unreachable' \
  '-never-' REGISTRY_URL=http://127.0.0.1:1/eureka/
# 400 with the server's reason: a real Eureka server only says that to a broken payload, so a
# stub answers every request with it.
example_rejected() {
  python3 tests/c/stub_registry.py 400 "Missing instanceId (stub)" "$out/stub.port" 60 &
  local stub=$! i
  pids+=("$stub")
  for ((i = 0; i < 50; i++)); do [ -s "$out/stub.port" ] && break; sleep 0.1; done
  local rc=0
  example_not_registered rejected 'not registered yet: .*400.*Missing instanceId \(stub\)' '-never-' \
    REGISTRY_URL="http://127.0.0.1:$(cat "$out/stub.port")/eureka/" || rc=$?
  kill -TERM "$stub" 2>/dev/null; wait_exit "$stub" 5 >/dev/null || true
  return $rc
}
check example-rejected-400 example_rejected
if [ -n "$auth_url" ]; then
  check example-wrong-password example_not_registered wrongpw 'not registered yet: .*401' \
    wrong-pw-secret REGISTRY_URL="$auth_url" REGISTRY_USER=registrar REGISTRY_PASSWORD=wrong-pw-secret
  check example-auth example_lifecycle "$out/register" TERM "$auth_url" "registrar:$password"
fi

# discover: the UP instances of an app, one per line as "INSTANCE_ID host:port STATUS".
example_discover() {
  local app="C-DISCOVER-$$" id="c-discover-$$"
  run_example "$out/register" discover-reg REGISTRY_URL="$url" REGISTRY_APP_NAME="$app" \
    REGISTRY_INSTANCE_ID="$id" REGISTRY_HOSTNAME=127.0.0.1 REGISTRY_PORT=8123
  local reg=$ex_pid
  wait_for "$out/discover-reg.out" '^registered ' 15 || { cat "$out/discover-reg.err"; return 1; }
  local rc=0
  env REGISTRY_URL="$url" timeout 30 "$out/example-discover" "$app" >"$out/discover.out" \
    2>"$out/discover.err" || rc=$?
  kill -TERM "$reg"; wait_exit "$reg" 10 >/dev/null || true
  echo "exit status $rc; stdout: $(cat "$out/discover.out")"
  [ "$rc" = 0 ] && [ "$(cat "$out/discover.out")" = "$id 127.0.0.1:8123 UP" ]
}
check example-discover example_discover

echo
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]} (logs in $out)"
echo "c tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
