#!/usr/bin/env bash
# The Python suite: installs the package (its build step builds the Rust library with cargo)
# into a virtualenv, then runs pytest against real Eureka servers.
#
# Under scripts/test.sh the shared servers come from REGISTRAR_TEST_EUREKA_URL and
# REGISTRAR_TEST_EUREKA_AUTH_URL, and REGISTRAR_TEST_RUN_DIR holds every server a test starts.
# Run on its own, it starts (and, through a trap, always stops) its own two servers.
#
# Environment: PYTHON (default python3), REGISTRAR_PY_VENV (default .cache/python-venv),
# extra pytest arguments are passed through: scripts/test-python.sh -k fork -x
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
eureka="$root/scripts/test-eureka.sh"

python=${PYTHON:-python3}
venv=${REGISTRAR_PY_VENV:-$root/.cache/python-venv}

own_run_dir=""
started=()
cleanup() {
  local status=$?
  for dir in "${started[@]}"; do "$eureka" stop "$dir" || true; done
  if [ -n "$own_run_dir" ]; then
    # also any dedicated server a test started and could not stop (e.g. pytest was killed)
    local left=0
    for dir in "$own_run_dir"/*/; do
      [ -f "$dir/pid" ] && { "$eureka" stop "$dir" || left=1; }
    done
    # keep the directory (pid files, logs) if a server could not be stopped
    [ $left -eq 0 ] && rm -rf "$own_run_dir"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${REGISTRAR_TEST_RUN_DIR:-}" ]; then
  own_run_dir=$(mktemp -d /tmp/registrar-python.XXXXXX)
  export REGISTRAR_TEST_RUN_DIR=$own_run_dir
fi
export REGISTRAR_TEST_PASSWORD=${REGISTRAR_TEST_PASSWORD:-s3cret-pw}

echo "--- python environment ($venv)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade "pytest>=7" "gunicorn>=21" "mypy>=1.5"
# The package's own build step runs cargo build --release and ships the library in the wheel.
echo "--- pip install ./bindings/python"
"${pip[@]}" install --force-reinstall --no-deps ./bindings/python

# Shared servers: from scripts/test.sh, or our own (started side by side to save time).
if [ -z "${REGISTRAR_TEST_EUREKA_URL:-}" ] || [ -z "${REGISTRAR_TEST_EUREKA_AUTH_URL:-}" ]; then
  echo "--- starting two Eureka servers for this run"
  plain="$REGISTRAR_TEST_RUN_DIR/python-shared" auth="$REGISTRAR_TEST_RUN_DIR/python-shared-auth"
  started+=("$plain" "$auth")
  "$eureka" jar >/dev/null
  "$eureka" start "$plain" >"$REGISTRAR_TEST_RUN_DIR/python-shared.url" &
  p1=$!
  "$eureka" start "$auth" --auth >"$REGISTRAR_TEST_RUN_DIR/python-shared-auth.url" &
  p2=$!
  wait $p1 && wait $p2 || { echo "cannot start the Eureka servers" >&2; exit 1; }
  REGISTRAR_TEST_EUREKA_URL=$(cat "$REGISTRAR_TEST_RUN_DIR/python-shared.url")
  REGISTRAR_TEST_EUREKA_AUTH_URL=$(cat "$REGISTRAR_TEST_RUN_DIR/python-shared-auth.url")
  export REGISTRAR_TEST_EUREKA_URL REGISTRAR_TEST_EUREKA_AUTH_URL
fi

echo "--- pytest"
# Run from the tests directory: the installed package is imported, not bindings/python/src.
# REGISTRAR_LIBRARY and REGISTRY_* from the caller's environment would change what is tested.
(
  cd bindings/python/tests
  env -u REGISTRAR_LIBRARY $(env | sed -n 's/^\(REGISTRY_[A-Z_]*\)=.*/-u \1/p') \
    "$venv/bin/python" -m pytest -p no:cacheprovider -rfEs "$@"
)
