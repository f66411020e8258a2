#!/usr/bin/env bash
# The release suite: builds dist/ with scripts/dist.sh (unless REGISTRAR_DIST_SKIP_BUILD=1),
# then uses every artifact the way a user without this repository would, against a real Eureka
# server:
#   - C: the unpacked archive, `pkg-config --cflags --libs registrar` (shared) and
#     registrar-static; C++17: CMake find_package(registrar), registrar::registrar and
#     registrar::registrar_static, through include/registrar.hpp (-Wall -Wextra -Werror)
#   - `scripts/dist.sh --install PREFIX` gives the same, relocatable, tree
#   - portability: SONAME and links; the highest GLIBC symbol version the .so, the wheel and a
#     program linked from the .a against glibc 2.17 need (must be <= 2.28); sizes
#   - Python: the wheel in a fresh virtualenv with no cargo/rustc on PATH runs
#     examples/python/register.py; the sdist builds from source (Rust present) and registers
#   - Go: a consumer module outside the repository, `go build` against dist/go with no
#     cargo/rustc on PATH, runs; an arm64 build links when dist/go carries arm64
#   - one version: every artifact carries Cargo.toml's version
# Prints "dist tests: N passed, N failed" last; exits non-zero on any failure.
#
# Environment: REGISTRAR_DIST_ARCHES (default: the host's; "x86_64 aarch64" adds the cross
# build), REGISTRAR_TEST_EUREKA_URL (else it starts its own server), REGISTRAR_TEST_RUN_DIR.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

out=$(mktemp -d /tmp/registrar-dist-test.XXXXXX)
passed=0
failed=0
failures=()
own_server=""
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  [ -n "$own_server" ] && scripts/test-eureka.sh stop "$own_server" >/dev/null 2>&1
  if [ "$failed" -eq 0 ]; then rm -rf "$out"; else echo "(logs kept in $out)"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { # NAME CMD...: one test; output in $out/NAME.log, shown when it fails
  local name=$1; shift
  local log="$out/$name.log" t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "  ok    $name [$((SECONDS - t0)) s]"
    grep -E '^(info|size|glibc):' "$log" | sed 's/^/        /'
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "  FAIL  $name (log: $log)"
    tail -40 "$log" | sed 's/^/        /'
  fi
}
finish() {
  echo
  [ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
  echo "dist tests: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

host_arch=$(uname -m)
arches=${REGISTRAR_DIST_ARCHES:-$host_arch}
version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "registrar"))')
abi=$(sed -n 's/^#define REGISTRAR_ABI_VERSION \([0-9]*\)$/\1/p' include/registrar.h)
tools="$root/.cache/dist-tools/bin"

# A PATH without cargo and rustc: what a user without Rust has.
no_rust_path=$(
  IFS=:
  keep=()
  for d in $PATH; do [ -x "$d/cargo" ] || [ -x "$d/rustc" ] || keep+=("$d"); done
  echo "${keep[*]}"
)

echo "==> scripts/dist.sh --arch \"$arches\""
if [ "${REGISTRAR_DIST_SKIP_BUILD:-0}" != 1 ]; then
  t0=$SECONDS
  check dist.sh scripts/dist.sh --arch "$arches"
  echo "        (dist.sh took $((SECONDS - t0)) s)"
  [ "$failed" -eq 0 ] || finish
fi

# ---- registry ------------------------------------------------------------------------------
url=${REGISTRAR_TEST_EUREKA_URL:-}
if [ -z "$url" ]; then
  run_dir=${REGISTRAR_TEST_RUN_DIR:-$out}
  own_server=$(mktemp -d "$run_dir/dist-eureka.XXXXXX")
  scripts/test-eureka.sh jar >/dev/null && url=$(scripts/test-eureka.sh start "$own_server")
  [ -n "$url" ] || { failed=$((failed + 1)); failures+=("start Eureka"); finish; }
fi
echo "==> registry $url"
registry_code() { # APP ID -> HTTP status of GET apps/APP/ID
  curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' -H 'Accept: application/json' \
    "${url}apps/$1/$2"
}
# Runs CMD with a clean REGISTRY_* environment registering as APP/ID against $url (exec: a
# background as_instance is the program itself, so a signal reaches it).
as_instance() { # APP ID CMD...
  local app=$1 id=$2; shift 2
  exec env $(env | grep -o '^REGISTRY_[A-Z_]*' | sed 's/^/-u /') REGISTRY_URL="$url" \
    REGISTRY_APP_NAME="$app" REGISTRY_INSTANCE_ID="$id" REGISTRY_HOSTNAME=127.0.0.1 "$@"
}
# Runs a consumer that registers, checks and deregisters by itself; then the registry must
# no longer list it.
consumer_run() { # NAME BINARY [ARGS...]
  local name=$1; shift
  local id="dist-$name-$$"
  (as_instance DIST-TEST "$id" timeout 120 "$@") || return 1
  local code; code=$(registry_code DIST-TEST "$id")
  echo "registry after exit: HTTP $code"
  [ "$code" = 404 ]
}

# ---- C and C++ against the unpacked archive ------------------------------------------------
sdk="$out/sdk"
mkdir -p "$sdk"
tar -C "$sdk" -xzf "dist/registrar-$version-linux-$host_arch.tar.gz" || { failures+=("unpack"); finish; }
prefix="$sdk/registrar-$version-linux-$host_arch"
echo "==> C/C++ SDK ($prefix)"

archive_layout() {
  local f
  for f in include/registrar.h include/registrar.hpp lib/libregistrar.a lib/pkgconfig/registrar.pc \
    lib/pkgconfig/registrar-static.pc lib/cmake/registrar/registrarConfig.cmake \
    lib/cmake/registrar/registrarConfigVersion.cmake "lib/libregistrar.so.$version"; do
    [ -f "$prefix/$f" ] || { echo "missing $f"; return 1; }
  done
  [ "$(readlink "$prefix/lib/libregistrar.so")" = "libregistrar.so.$abi" ] &&
    [ "$(readlink "$prefix/lib/libregistrar.so.$abi")" = "libregistrar.so.$version" ] ||
    { echo "links:"; ls -l "$prefix/lib"; return 1; }
  local soname
  soname=$(readelf -d "$prefix/lib/libregistrar.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  echo "info: SONAME $soname"
  [ "$soname" = "libregistrar.so.$abi" ]
}
check archive-layout archive_layout

# The highest GLIBC_x.y symbol version FILE needs; fails above 2.28.
glibc_at_most_2_28() { # LABEL FILE
  local v
  v=$(readelf --dyn-syms -W "$2" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  echo "glibc: $1 needs GLIBC_$v at most"
  [ -n "$v" ] && [ "$(printf '%s\n' "$v" 2.28 | sort -V | tail -1)" = 2.28 ]
}
sizes() {
  local f
  for f in "$prefix/lib/libregistrar.so.$version" "$prefix/lib/libregistrar.a" dist/*.whl dist/*.tar.gz \
    dist/go/lib/*/libregistrar.a; do
    echo "size: $(du -k "$f" | cut -f1) KiB ${f#"$root"/}"
  done
  [ -e "$prefix/bin/registrar" ] && echo "size: $(du -k "$prefix/bin/registrar" | cut -f1) KiB bin/registrar"
  return 0
}
check sizes sizes
check glibc-shared-library glibc_at_most_2_28 libregistrar.so "$prefix/lib/libregistrar.so.$version"
[ -e "$prefix/bin/registrar" ] && check glibc-command glibc_at_most_2_28 bin/registrar "$prefix/bin/registrar"

c_pkgconfig() { # shared and static, both run against the registry
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
  [ "$(pkg-config --modversion registrar)" = "$version" ] || { echo "pkg-config version"; return 1; }
  local libdir; libdir=$(pkg-config --variable=libdir registrar)
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror tests/dist/c_consumer.c -o "$out/c_consumer" \
    $(pkg-config --cflags --libs registrar) -Wl,-rpath,"$libdir" || return 1
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror tests/dist/c_consumer.c -o "$out/c_consumer_static" \
    $(pkg-config --cflags --libs registrar-static) || return 1
  ldd "$out/c_consumer" | grep "libregistrar.so.$abi => $prefix" || { ldd "$out/c_consumer"; return 1; }
  if ldd "$out/c_consumer_static" | grep -q libregistrar; then echo "static binary needs the .so"; return 1; fi
  consumer_run c-shared "$out/c_consumer" && consumer_run c-static "$out/c_consumer_static"
}
check c-pkg-config c_pkgconfig

cpp_cmake() {
  local build="$out/cmake-build"
  cmake -S tests/dist -B "$build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    >"$out/cmake-configure.log" 2>&1 || { cat "$out/cmake-configure.log"; return 1; }
  cmake --build "$build" -- -j2 || return 1
  consumer_run cpp-shared "$build/cpp_consumer_shared" && consumer_run cpp-static "$build/cpp_consumer_static"
}
check cpp-cmake cpp_cmake

# The static library needs nothing newer than glibc 2.17: a program linked from it against
# zig's glibc 2.17 stubs links (a newer symbol would be undefined there) and runs.
static_glibc() {
  local cc_target="$host_arch-linux-gnu.2.17"
  "$tools/python-zig" cc -target "$cc_target" -std=c11 -I"$prefix/include" tests/dist/c_consumer.c \
    "$prefix/lib/libregistrar.a" $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --libs-only-l registrar-static) -o "$out/c_consumer_2_17" ||
    return 1
  glibc_at_most_2_28 "c_consumer linked from libregistrar.a (zig cc -target $cc_target)" \
    "$out/c_consumer_2_17" && consumer_run c-static-glibc-2-17 "$out/c_consumer_2_17"
}
check glibc-static-library static_glibc

install_prefix() { # scripts/dist.sh --install into a prefix, moved afterwards (relocatable)
  local p="$out/install/usr/local"
  scripts/dist.sh --install "$p" >"$out/install.log" 2>&1 || { cat "$out/install.log"; return 1; }
  mv "$out/install" "$out/moved"
  PKG_CONFIG_PATH="$out/moved/usr/local/lib/pkgconfig" pkg-config --cflags --libs registrar
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Werror tests/dist/c_consumer.c -o "$out/c_consumer_installed" \
    $(PKG_CONFIG_PATH="$out/moved/usr/local/lib/pkgconfig" pkg-config --cflags --libs registrar-static) &&
    consumer_run c-installed "$out/c_consumer_installed"
}
check install-prefix install_prefix

# ---- Python --------------------------------------------------------------------------------
echo "==> Python"
wheel=$(ls dist/registrar_eureka-"$version"-*manylinux*"$host_arch".whl 2>/dev/null | head -1)
python_wheel() {
  [ -n "$wheel" ] || { echo "no manylinux wheel for $host_arch in dist/"; ls dist; return 1; }
  echo "info: $(basename "$wheel")"
  "$tools/auditwheel" show "$wheel" || return 1
  local venv="$out/venv-wheel"
  python3 -m venv "$venv" && "$venv/bin/pip" -q --disable-pip-version-check install --no-index "$wheel" || return 1
  local so; so=$(find "$venv" -name 'libregistrar*.so*' | head -1)
  glibc_at_most_2_28 "the wheel's $(basename "$so")" "$so" || return 1
  # No Rust on PATH from here on, and nothing of the repository on the import path.
  (
    export PATH="$no_rust_path"
    ! command -v cargo && ! command -v rustc || { echo "cargo still on PATH"; exit 1; }
    cd "$out"
    "$venv/bin/python" -c "import registrar, sys; print('info: registrar', registrar.__version__, 'from', registrar.library_path()); sys.exit(registrar.__version__ != '$version' or not registrar.library_path().startswith('$venv'))" ||
      exit 1
    register_py "$venv/bin/python"
  )
}
register_py() { # PYTHON: examples/python/register.py registers, SIGTERM deregisters, exit 0
  local id="dist-python-$$" app=DIST-PY
  (as_instance "$app" "$id" "$1" "$root/examples/python/register.py") >"$out/register.out" 2>"$out/register.err" &
  local pid=$! i
  pids+=("$pid")
  for ((i = 0; i < 200; i++)); do grep -q '^registered ' "$out/register.out" && break; sleep 0.1; done
  echo "stdout: $(cat "$out/register.out")"
  [ "$(registry_code "$app" "$id")" = 200 ] || { cat "$out/register.err"; kill "$pid"; return 1; }
  kill -TERM "$pid"
  local rc=0
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null && echo "still running 15 s after SIGTERM"
  wait "$pid" || rc=$?
  echo "exit status $rc, registry after exit: HTTP $(registry_code "$app" "$id")"
  [ "$rc" = 0 ] && [ "$(registry_code "$app" "$id")" = 404 ]
}
check python-wheel-without-rust python_wheel

python_sdist() { # pip builds the sdist from source (cargo inside), then the package registers
  local sdist="dist/registrar_eureka-$version.tar.gz" venv="$out/venv-sdist"
  tar -tzf "$sdist" >"$out/sdist.list" || return 1
  grep -qx "registrar_eureka-$version/crate/Cargo.toml" "$out/sdist.list" &&
    grep -qx "registrar_eureka-$version/crate/src/lib.rs" "$out/sdist.list" || { echo "the sdist lacks the crate"; return 1; }
  python3 -m venv "$venv" || return 1
  # pip installs the unpacked sdist; its crate builds into the repository's target dir, where
  # the dependencies are built already (this suite runs last). Touching the crate's files
  # makes cargo compile the registrar crate from the sdist's copy: same relative paths, so
  # otherwise it would take the repository's build as up to date.
  tar -C "$out" -xzf "$sdist" && find "$out/registrar_eureka-$version/crate" -type f -exec touch {} + ||
    return 1
  (cd "$out" && CARGO_TARGET_DIR="$root/target" "$venv/bin/pip" -v --disable-pip-version-check \
    install "$out/registrar_eureka-$version" >"$out/sdist-pip.log" 2>&1) || { tail -30 "$out/sdist-pip.log"; return 1; }
  grep -E 'Compiling registrar v|Finished' "$out/sdist-pip.log" | sed 's/^ */info: cargo: /'
  grep -q 'Compiling registrar v' "$out/sdist-pip.log" || { echo "cargo compiled nothing"; return 1; }
  (cd "$out" && "$venv/bin/python" -c "import registrar; print('info: sdist build', registrar.__version__, registrar.library_path()); assert registrar.__version__ == '$version'") &&
    register_py "$venv/bin/python"
}
check python-sdist-from-source python_sdist

# ---- Go ------------------------------------------------------------------------------------
echo "==> Go"
go_consumer() {
  local mod="$out/go-consumer"
  mkdir -p "$mod"
  cp tests/dist/go-consumer/main.go "$mod/"
  cat >"$mod/go.mod" <<EOF
module example.com/consumer

go 1.24

require github.com/registrar/registrar-go v$version

replace github.com/registrar/registrar-go => $root/dist/go
EOF
  (
    export PATH="$no_rust_path" GOFLAGS=-mod=mod GOPROXY=off GOWORK=off
    ! command -v cargo || { echo "cargo still on PATH"; exit 1; }
    cd "$mod" && go build -o "$out/go_consumer" . || exit 1
    if ldd "$out/go_consumer" | grep -q libregistrar; then echo "links libregistrar.so"; exit 1; fi
    consumer_run go "$out/go_consumer"
  )
}
check go-module-without-rust go_consumer

go_arm64() { # the arm64 library is picked by the constraints and links (cross: zig cc)
  local mod="$out/go-consumer"
  (
    export PATH="$no_rust_path" GOFLAGS=-mod=mod GOPROXY=off GOWORK=off CGO_ENABLED=1 GOOS=linux \
      GOARCH=arm64 CC="$tools/python-zig cc -target aarch64-linux-gnu.2.17"
    cd "$mod" && go build -o "$out/go_consumer_arm64" . || exit 1
    readelf -h "$out/go_consumer_arm64" | grep Machine
    readelf -h "$out/go_consumer_arm64" | grep -q AArch64
  )
}
[ -d dist/go/lib/linux-arm64 ] && check go-module-arm64-links go_arm64

# ---- one version ---------------------------------------------------------------------------
one_version() {
  local bad=0 got
  got=$(sed -n 's/^#define REGISTRAR_VERSION "\(.*\)"$/\1/p' include/registrar.h)
  echo "Cargo.toml $version; header $got"
  [ "$got" = "$version" ] || bad=1
  got=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion registrar-static)
  echo "pkg-config $got"; [ "$got" = "$version" ] || bad=1
  got=$(sed -n 's/^set(registrar_VERSION "\(.*\)")$/\1/p' "$prefix/lib/cmake/registrar/registrarConfig.cmake")
  echo "cmake $got"; [ "$got" = "$version" ] || bad=1
  got=$(unzip -p "$wheel" "registrar_eureka-$version.dist-info/METADATA" 2>/dev/null | sed -n 's/^Version: //p')
  echo "wheel $got"; [ "$got" = "$version" ] || bad=1
  got=$(sed -n 's/^const ModuleVersion = "\(.*\)"$/\1/p' dist/go/version.go)
  echo "go $got"; [ "$got" = "$version" ] || bad=1
  got=$(python3 -c "import ctypes,sys; lib = ctypes.CDLL(sys.argv[1]); lib.registrar_version.restype = ctypes.c_char_p; print(lib.registrar_version().decode())" \
    "$prefix/lib/libregistrar.so.$version")
  echo "library $got"; [ "$got" = "$version" ] || bad=1
  # Every workspace member (the library, the registrar command) has the same version.
  got=$(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json,sys; print(" ".join(sorted({p["version"] for p in json.load(sys.stdin)["packages"]})))')
  echo "workspace members: $got"; [ "$got" = "$version" ] || bad=1
  if [ -x "$prefix/bin/registrar" ]; then
    got=$("$prefix/bin/registrar" --version 2>&1 | head -1)
    echo "bin/registrar --version: $got"; case $got in *"$version"*) ;; *) bad=1 ;; esac
  fi
  # No copy of the version may be written anywhere but Cargo.toml.
  if git grep -nE "^(version = |__version__ = |#define REGISTRAR_VERSION )\"[0-9]" -- \
    ':!Cargo.toml' ':!Cargo.lock' ':!include/registrar.h' ':!**/Cargo.toml' ':!**/Cargo.lock'; then
    echo "a hand-written version outside Cargo.toml"; bad=1
  fi
  return $bad
}
check one-version one_version

finish
