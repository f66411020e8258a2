#!/usr/bin/env bash
# Coverage-guided fuzzing of everything registrar parses from outside the process
# (cargo-fuzz / libFuzzer on the nightly toolchain; targets in fuzz/fuzz_targets/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 12: test.sh's run)
#   scripts/fuzz.sh --runs N [TARGET...]    each target for N executions (the long runs)
#   FUZZ_LOGS=DIR scripts/fuzz.sh ...       also keep each target's libFuzzer log in DIR
#
# The committed corpus fuzz/corpus/TARGET is read, never written: new inputs go to a scratch
# directory (fold them in with `cargo +nightly fuzz cmin`, see the README). Each target runs
# from a copy of its binary, so rebuilding during a long run does not disturb it. A crash,
# hang (-timeout) or memory blow-up (-rss_limit_mb) leaves its input in fuzz/artifacts/TARGET/
# and fails the run; reproduce it with
#   cd fuzz && cargo +nightly fuzz run -s none TARGET artifacts/TARGET/crash-...
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

limit=(-max_total_time=12)
if [ "${1:-}" = "--runs" ]; then
  limit=(-runs="$2"); shift 2
elif [ -n "${1:-}" ] && [ "$1" -eq "$1" ] 2>/dev/null; then
  limit=(-max_total_time="$1"); shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(read_registry registry_roundtrip config redaction paths)

# The nightly toolchain and cargo-fuzz (scripts/install-deps.sh installs both; this covers a
# direct call on a machine that ran only part of it).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: installing the nightly toolchain (cargo-fuzz needs it)"
  rustup toolchain install nightly --profile minimal || { echo "fuzz: FAILED: no nightly toolchain (rustup toolchain install nightly)"; exit 1; }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || { echo "fuzz: FAILED: cargo-fuzz could not be installed"; exit 1; }
fi

# No sanitizer: the code under test is safe Rust (memory errors cannot happen there), and
# without ASan's slowdown each target runs about twice as many inputs. Debug assertions
# (integer overflow checks) stay on.
build_log=$(mktemp /tmp/registrar-fuzz-build.XXXXXX)
cargo +nightly fuzz build -s none >"$build_log" 2>&1 || { tail -30 "$build_log"; echo "fuzz: FAILED: build"; exit 1; }
rm -f "$build_log"

bin_dir="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
scratch=$(mktemp -d /tmp/registrar-fuzz.XXXXXX)
# Where the config target writes the certificate/key files it fuzzes (in memory if possible).
files=$(mktemp -d /dev/shm/registrar-fuzz.XXXXXX 2>/dev/null || mktemp -d /tmp/registrar-fuzz-files.XXXXXX)
export REGISTRAR_FUZZ_FILES="$files"
trap 'rm -rf "$scratch" "$files"' EXIT
total_runs=0 failed=()
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target" "artifacts/$target" "corpus/$target"
  dict=()
  [ -f "dicts/$target.dict" ] && dict=(-dict="dicts/$target.dict")
  # Inputs larger than this add no new shapes, only time per run (as the corpus grows the
  # fuzzer lengthens its inputs up to max_len): JSON bodies get more room than the
  # structured inputs, whose 4 KiB already hold dozens of URLs, settings or instances.
  max_len=4096
  [ "$target" = read_registry ] && max_len=8192
  log="$scratch/$target.log"
  cp "$bin_dir/$target" "$scratch/$target.bin"
  "$scratch/$target.bin" "$scratch/$target" "corpus/$target" \
    "${limit[@]}" -timeout=10 -rss_limit_mb=1024 -max_len=$max_len "${dict[@]}" \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  # libFuzzer's own last status line: runs, coverage, features, corpus, exec/s.
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  [ -n "${FUZZ_LOGS:-}" ] && mkdir -p "$FUZZ_LOGS" && cp "$log" "$FUZZ_LOGS/$target.log"
  if [ $status -eq 0 ]; then
    echo "fuzz $target: ${runs:-?} runs in ${secs:-?} s, no crash (${done_line:-no DONE line})"
    total_runs=$((total_runs + ${runs:-0}))
  else
    grep -E "panicked|ERROR: libFuzzer|SUMMARY|Test unit written|==[0-9]+==" "$log" | head -12
    echo "fuzz $target: FAILED (log above; input in fuzz/artifacts/$target/)"
    failed+=("$target")
  fi
done
echo "fuzz: ${#targets[@]} targets, $total_runs runs, ${#failed[@]} failed ${failed[*]:-}"
[ ${#failed[@]} -eq 0 ]
