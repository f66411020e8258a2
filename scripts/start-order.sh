#!/usr/bin/env bash
# Regenerates link/start-order.ld (the functions that start and run a client, placed first in
# libregistrar.so's code; see scripts/start-order.py): builds the release library, runs
# section 1 of bench/core/bench.c under callgrind against a dedicated test Eureka server
# (or REGISTRAR_BENCH_EUREKA_URL) and writes the linker script from the functions that ran.
# Run it by hand when bench/core's first-client RSS figure drifts up, then rebuild.
set -euo pipefail
# shellcheck source=scripts/bench-setup.sh
source "$(dirname "$0")/bench-setup.sh"
# Three runs: a few functions run only when threads happen to meet (a lock's slow path).
for run in 1 2 3; do
  valgrind --tool=callgrind --dump-instr=yes --compress-pos=no --compress-strings=no \
    --callgrind-out-file="$work/cg.$run.out" "$work/bench" "$url" --memory >/dev/null 2>"$work/cg.log"
done
python3 scripts/start-order.py "$lib/libregistrar.so" link/start-order.ld "$work"/cg.*.out
