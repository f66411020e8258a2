# Sourced by scripts/bench-core.sh and scripts/start-order.sh (after `set -euo pipefail`):
# builds the release library and bench/core/bench.c in a scratch directory and starts a
# dedicated test Eureka server on loopback, unless REGISTRAR_BENCH_EUREKA_URL names one. The
# scratch directory and the server go away on exit, however the script ends.
# Sets: root (the repository), lib (target/release), work (scratch; the program is
# $work/bench), url (the registry's service URL).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
lib="$root/target/release"
work=$(mktemp -d /tmp/registrar-bench.XXXXXX)
server_dir=""
cleanup() {
  [ -n "$server_dir" ] && scripts/test-eureka.sh stop "$server_dir" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== build" >&2
cargo build --release --locked -q
cc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude -Itests/c bench/core/bench.c -o "$work/bench" \
  -pthread -L"$lib" -lregistrar -Wl,-rpath,"$lib"

url=${REGISTRAR_BENCH_EUREKA_URL:-}
if [ -z "$url" ]; then
  echo "== starting a dedicated Eureka server" >&2
  server_dir="$work/server"
  url=$(scripts/test-eureka.sh start "$server_dir")
fi
