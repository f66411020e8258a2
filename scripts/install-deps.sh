#!/usr/bin/env bash
# Installs what the build and tests need on a fresh machine (idempotent; quick when present).
set -euo pipefail
need() { command -v "$1" >/dev/null 2>&1; }
missing=()
# openssl: the TLS tests make their certificates with it (scripts/test-certs.sh); the
# library itself uses rustls, never OpenSSL.
for tool in cargo java mvn go python3 cc curl git openssl; do need "$tool" || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing tools: ${missing[*]}; installing what Debian packages provide" >&2
  apt-get update -qq && apt-get install -y -qq maven openjdk-17-jdk-headless golang python3 gcc curl git \
    openssl ca-certificates >&2
fi
cargo fetch --locked >/dev/null

# The fuzz targets (scripts/fuzz.sh, fuzz/): cargo-fuzz on the nightly toolchain. Both are
# per-user (~/.rustup, ~/.cargo/bin): the stable toolchain that builds the library is untouched.
if command -v rustup >/dev/null 2>&1; then
  rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal >&2
else
  echo "rustup not found: cannot install the nightly toolchain the fuzz targets need" >&2
fi
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked >&2
(cd "$(dirname "$0")/../fuzz" && cargo fetch --locked >/dev/null)
