#!/usr/bin/env bash
# Runs the discovery benchmark (README.md next to this file): registrar's parse + index of a
# 10,000-instance registry side by side with py-eureka-client's, then lookup timings.
# py-eureka-client is installed in a venv under /tmp (DISCOVERY_BENCH_VENV to change it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${DISCOVERY_BENCH_VENV:-/tmp/registrar-bench-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'py-eureka-client==0.13.3'
fi
export DISCOVERY_BENCH_PYTHON="$venv/bin/python"
cd "$root"
cargo test --release --test discovery_bench -- --ignored --nocapture 2>&1 \
  | grep -vE '^(running [0-9]+ test|test result:|test discovery_benchmark|\s*Running|\s*Finished|\s*Compiling)' \
  | sed '/^$/N;/^\n$/D'
