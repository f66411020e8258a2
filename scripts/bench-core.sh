#!/usr/bin/env bash
# The core benchmark (by hand, not part of scripts/test.sh): builds bench/core/bench.c against
# the release library, starts a dedicated Eureka server on loopback (or uses
# REGISTRAR_BENCH_EUREKA_URL), and prints memory, threads, CPU per heartbeat, connection reuse,
# start->UP and stop->gone latencies, instruction counts (callgrind, if valgrind is installed)
# and library sizes. Method and recorded figures: bench/core/README.md.
#
#   scripts/bench-core.sh [ROUNDS]     (default 9 rounds for the latency medians)
set -euo pipefail
rounds=${1:-9}
# shellcheck source=scripts/bench-setup.sh
source "$(dirname "$0")/bench-setup.sh"

echo "== machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/bench" "$url" "$rounds"

echo
echo "## 6. instructions per heartbeat (callgrind: all threads, user space, 20 vs 120 heartbeats)"
if command -v valgrind >/dev/null; then
  count() { # count N -> "instructions heartbeats"
    local log="$work/cg.$1.log" out
    out=$(valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1.out" \
      "$work/bench" "$url" --heartbeats "$1" 2>"$log")
    echo "$(grep -o 'Collected : [0-9]*' "$log" | grep -o '[0-9]*$') $(echo "$out" | sed -n 's/^heartbeats=\([0-9]*\).*/\1/p')"
  }
  read -r i1 h1 < <(count 20)
  read -r i2 h2 < <(count 120)
  echo "$h1 heartbeats: $i1 instructions; $h2 heartbeats: $i2 instructions"
  echo "RESULT instructions_per_heartbeat=$(( (i2 - i1) / (h2 - h1) ))"
else
  echo "valgrind not installed: skipped"
fi

echo
echo "## 7. library size (bytes)"
cp "$lib/libregistrar.so" "$work/so"; strip "$work/so"
cp "$lib/libregistrar.a" "$work/a"; strip --strip-debug "$work/a"
# What a static link adds to a program: the register example, stripped, minus an empty program.
cc -O2 -Iinclude examples/c/register.c -o "$work/reg-static" "$lib/libregistrar.a" -lpthread -ldl -lm
cc -O2 -Iinclude examples/c/register.c -o "$work/reg-static-gc" "$lib/libregistrar.a" -lpthread -ldl -lm \
  -Wl,--gc-sections
echo 'int main(void){return 0;}' >"$work/empty.c"; cc -O2 "$work/empty.c" -o "$work/empty"
strip "$work/reg-static" "$work/reg-static-gc" "$work/empty"
size_of() { stat -c %s "$1"; }
echo "libregistrar.so: $(size_of "$lib/libregistrar.so") as built, $(size_of "$work/so") stripped"
echo "libregistrar.a:  $(size_of "$lib/libregistrar.a") as built, $(size_of "$work/a") with debug info stripped"
echo "register example linked statically, stripped: $(size_of "$work/reg-static"), with -Wl,--gc-sections: $(size_of "$work/reg-static-gc") (empty C program: $(size_of "$work/empty"))"
echo "RESULT stripped_so_bytes=$(size_of "$work/so") static_link_adds_bytes=$(( $(size_of "$work/reg-static") - $(size_of "$work/empty") )) with_gc_sections=$(( $(size_of "$work/reg-static-gc") - $(size_of "$work/empty") ))"
