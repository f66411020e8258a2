#!/usr/bin/env bash
# The Go suite: go vet, go test -race and a GOGC=1 run of bindings/go (which also builds and
# runs examples/go end to end), plus link checks (static by default; -tags registrar_shared).
#
# Under scripts/test.sh it uses the shared Eureka servers that script exports
# (REGISTRAR_TEST_EUREKA_URL, REGISTRAR_TEST_EUREKA_AUTH_URL, REGISTRAR_TEST_RUN_DIR).
# Standalone it starts (and on exit stops) its own two servers. Exits non-zero on failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export REGISTRAR_TEST_PASSWORD=${REGISTRAR_TEST_PASSWORD:-s3cret-pw}
own_run_dir=""
started=()
cleanup() {
  for dir in "${started[@]}"; do scripts/test-eureka.sh stop "$dir"; done
  [ -n "$own_run_dir" ] && rm -rf "$own_run_dir"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v go >/dev/null || { echo "test-go: go is not installed (scripts/install-deps.sh)" >&2; exit 1; }
# bindings/go needs Go 1.24 (runtime.AddCleanup); Debian bookworm's golang package is 1.19.
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if ! [ "$go_minor" -ge 24 ] 2>/dev/null; then
  echo "test-go: $(go env GOVERSION) is too old: bindings/go needs Go 1.24 or newer" >&2
  exit 1
fi
if [ ! -f target/release/libregistrar.a ]; then
  echo "test-go: building the library (cargo build --release)"
  cargo build --release --locked || exit 1
fi

if [ -z "${REGISTRAR_TEST_RUN_DIR:-}" ]; then
  own_run_dir=$(mktemp -d /tmp/registrar-go-test.XXXXXX)
  export REGISTRAR_TEST_RUN_DIR=$own_run_dir
fi
if [ -z "${REGISTRAR_TEST_EUREKA_URL:-}" ] || [ -z "${REGISTRAR_TEST_EUREKA_AUTH_URL:-}" ]; then
  echo "test-go: starting two Eureka servers (plain and basic auth)"
  scripts/test-eureka.sh jar >/dev/null || exit 1
  started=("$REGISTRAR_TEST_RUN_DIR/go-shared" "$REGISTRAR_TEST_RUN_DIR/go-shared-auth")
  scripts/test-eureka.sh start "${started[0]}" >/dev/null & p1=$!
  scripts/test-eureka.sh start "${started[1]}" --auth >/dev/null & p2=$!
  wait $p1 && wait $p2 || { echo "test-go: a Eureka server did not start" >&2; exit 1; }
  export REGISTRAR_TEST_EUREKA_URL REGISTRAR_TEST_EUREKA_AUTH_URL
  REGISTRAR_TEST_EUREKA_URL=$(cat "${started[0]}/url")
  REGISTRAR_TEST_EUREKA_AUTH_URL=$(cat "${started[1]}/url")
fi
if [ -z "${REGISTRAR_TEST_EUREKA_TLS_URL:-}" ]; then
  echo "test-go: starting the https and mTLS Eureka servers"
  started+=("$REGISTRAR_TEST_RUN_DIR/shared-tls" "$REGISTRAR_TEST_RUN_DIR/shared-mtls")
  tls_env=$(scripts/test-tls-servers.sh "$REGISTRAR_TEST_RUN_DIR") || { echo "test-go: a TLS Eureka server did not start" >&2; exit 1; }
  eval "$tls_env"
fi

failures=()
step() {
  local name=$1; shift
  echo "--> go: $name"
  if "$@"; then :; else echo "<-- go: $name FAILED"; failures+=("$name"); fi
}

gofmt_clean() {
  local out; out=$(gofmt -l bindings/go examples/go $([ -d bench/go ] && echo bench/go))
  [ -z "$out" ] || { echo "gofmt needed: $out"; return 1; }
}
static_link() {
  # A default build links libregistrar.a: the binary needs no libregistrar.so.
  local bin; bin=$(mktemp -d)/register
  (cd examples/go && go build -o "$bin" ./register) || return 1
  if ldd "$bin" | grep -q libregistrar; then echo "register links libregistrar.so"; return 1; fi
  echo "examples/go/register: $(stat -c %s "$bin") bytes, no libregistrar.so needed"
  rm -rf "$(dirname "$bin")"
}
shared_link() {
  # -tags registrar_shared links libregistrar.so with an rpath.
  (cd bindings/go && go test -count=1 -tags registrar_shared -run 'TestLibraryVersionAndABI|TestCodesMatchTheCLibrary|TestConfigErrorsNameTheSetting' .)
}

step "module download" bash -c 'cd bindings/go && go mod download && cd ../../examples/go && go mod download'
step "gofmt" gofmt_clean
step "go vet" bash -c 'cd bindings/go && go vet ./... && cd ../../examples/go && go vet ./...'
step "go test -race" bash -c 'set -o pipefail; cd bindings/go && go test -count=1 -race -v -timeout 10m ./... 2>&1 | grep -v "^=== "'
# GOGC=1 collects at every allocation step: shakes out handle-lifetime bugs (the server
# restart test is skipped here: it only costs time and exercises no other Go code).
step "GOGC=1 go test" bash -c 'set -o pipefail; cd bindings/go && GOGC=1 go test -count=1 -v -timeout 10m -skip TestReRegistersAfterServerRestart ./... 2>&1 | grep -v "^=== "'
step "static link" static_link
step "shared link (-tags registrar_shared)" shared_link

if [ ${#failures[@]} -ne 0 ]; then
  echo "go: FAILED: ${failures[*]}"
  exit 1
fi
echo "go: all passed"
