#!/usr/bin/env bash
# The one test command (README, .ci/run): builds everything from nothing, starts real Eureka
# servers on loopback, runs every suite (Rust, C, Python, Go), stops every process it started
# (also on failure or Ctrl-C), and exits non-zero if anything failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export REGISTRAR_TEST_RUN_DIR=${REGISTRAR_TEST_RUN_DIR:-$(mktemp -d /tmp/registrar-test.XXXXXX)}
export REGISTRAR_TEST_PASSWORD=${REGISTRAR_TEST_PASSWORD:-s3cret-pw}

cleanup() {
  # Every server any suite started lives in a subdirectory of the run dir: stop them all.
  for dir in "$REGISTRAR_TEST_RUN_DIR"/*/; do
    [ -f "$dir/pid" ] && scripts/test-eureka.sh stop "$dir"
  done
  # Anything else still in our process group (a stray example, a hung test) goes too.
  pkill -P $$ 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failures=()
run() {
  local name=$1; shift
  echo "==> $name"
  if "$@"; then echo "<== $name: ok"; else echo "<== $name: FAILED"; failures+=("$name"); fi
}

run "install toolchains and dependencies" scripts/install-deps.sh || true
[ ${#failures[@]} -eq 0 ] || { echo "cannot continue without dependencies"; exit 1; }

run "build the library (release)" cargo build --release --locked
run "header is up to date (include/registrar.h committed)" git diff --exit-code -- include/
run "parity: every C function and setting has a counterpart in each wrapper and the README" \
  python3 scripts/check-parity.py --self-test
run "build the test Eureka server" scripts/test-eureka.sh jar
run "build the test Eureka server, Spring Cloud 2025.0 line (Boot 3.5)" \
  env REGISTRAR_TEST_EUREKA_LINE=boot3 scripts/test-eureka.sh jar

# Shared registries for the suites; tests that restart or stop a server start their own.
# The https and mTLS ones (scripts/test-tls-servers.sh) start alongside the plain ones.
scripts/test-tls-servers.sh "$REGISTRAR_TEST_RUN_DIR" >"$REGISTRAR_TEST_RUN_DIR/tls.env" & tls_pid=$!
REGISTRAR_TEST_EUREKA_URL=$(scripts/test-eureka.sh start "$REGISTRAR_TEST_RUN_DIR/shared") || failures+=("start shared Eureka")
REGISTRAR_TEST_EUREKA_AUTH_URL=$(scripts/test-eureka.sh start "$REGISTRAR_TEST_RUN_DIR/shared-auth" --auth) || failures+=("start shared Eureka (auth)")
export REGISTRAR_TEST_EUREKA_URL REGISTRAR_TEST_EUREKA_AUTH_URL
if wait $tls_pid; then eval "$(cat "$REGISTRAR_TEST_RUN_DIR/tls.env")"; else failures+=("start shared Eureka (https, mTLS)"); fi

run "cargo test" cargo test --release --locked -- --test-threads=2
# The older line still in wide use (Spring Cloud 2025.0, Boot 3.5, Eureka 4.3): the core
# lifecycle (register, heartbeat, status change, deregister, restart and 404 re-register,
# failover) against servers of that line, started by the tests themselves.
run "cargo test lifecycle against Spring Cloud 2025.0 / Boot 3.5" \
  env -u REGISTRAR_TEST_EUREKA_URL -u REGISTRAR_TEST_EUREKA_AUTH_URL REGISTRAR_TEST_EUREKA_LINE=boot3 \
  cargo test --release --locked --test lifecycle -- --test-threads=2 --skip basic_auth --skip many_threads
run "fuzz targets, 12 s each (scripts/fuzz.sh)" scripts/fuzz.sh 12
run "the README's main job (scripts/demo.sh) end to end" env REGISTRY_URL="$REGISTRAR_TEST_EUREKA_URL" scripts/demo.sh --for 2
for suite in c python go cli; do
  [ -x "scripts/test-$suite.sh" ] && run "$suite tests" "scripts/test-$suite.sh"
done
# Last: its sdist check rebuilds the registrar crate into target/release from the sdist's copy.
# On x86_64 the arm64 release build is included (a cross build, a few minutes).
dist_arches=$(uname -m)
[ "$dist_arches" = x86_64 ] && dist_arches="x86_64 aarch64"
run "release artifacts (scripts/dist.sh) used as a user would" \
  env REGISTRAR_DIST_ARCHES="$dist_arches" scripts/test-dist.sh

echo
if [ ${#failures[@]} -eq 0 ]; then
  echo "registrar: all suites passed"
else
  echo "registrar: FAILED: ${failures[*]}"
  exit 1
fi
