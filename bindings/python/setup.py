"""Build step of the registrar Python package: builds the Rust library and ships it inside.

``pip install ./bindings/python`` runs ``cargo build --release --locked`` in the repository
root (found by walking up to the ``Cargo.toml`` of the registrar crate) and copies
``target/release/libregistrar.so`` into the package as ``registrar/_lib/libregistrar.so``, so
nothing else is needed at run time (no copy step, no LD_LIBRARY_PATH).

Environment:
  REGISTRAR_CARGO_ROOT   the crate's directory, if the package is built outside the repository
  REGISTRAR_CARGO        the cargo executable (default: cargo)
The wheel is tagged py3-none-<platform>: the library does not depend on the Python version.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore

HERE = Path(__file__).resolve().parent

if sys.platform == "darwin":
    LIBRARY_FILE = "libregistrar.dylib"
elif sys.platform == "win32":
    LIBRARY_FILE = "registrar.dll"
else:
    LIBRARY_FILE = "libregistrar.so"


def crate_root() -> Path:
    configured = os.environ.get("REGISTRAR_CARGO_ROOT")
    if configured:
        return Path(configured).resolve()
    for directory in [HERE, *HERE.parents]:
        manifest = directory / "Cargo.toml"
        if manifest.is_file() and 'name = "registrar"' in manifest.read_text():
            return directory
    raise SystemExit(
        "registrar: cannot find the registrar crate (Cargo.toml) above "
        f"{HERE}; build from the repository, or set REGISTRAR_CARGO_ROOT"
    )


def build_library() -> Path:
    root = crate_root()
    cargo = os.environ.get("REGISTRAR_CARGO", "cargo")
    command = [cargo, "build", "--release"]
    if (root / "Cargo.lock").is_file():
        command.append("--locked")
    print(f"registrar: running {' '.join(command)} in {root}", flush=True)
    try:
        subprocess.run(command, cwd=root, check=True)
    except FileNotFoundError:
        raise SystemExit(
            "registrar: cargo was not found; install Rust (https://rustup.rs) to build the "
            "native library, or set REGISTRAR_CARGO"
        )
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"registrar: cargo build failed with exit code {e.returncode}")
    target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
    if not target.is_absolute():
        target = root / target
    library = target / "release" / LIBRARY_FILE
    if not library.is_file():
        raise SystemExit(f"registrar: cargo finished but {library} does not exist")
    return library


class BuildPyWithLibrary(build_py):
    """build_py + cargo build + copy the shared library into registrar/_lib/."""

    def run(self) -> None:
        super().run()
        library = build_library()
        destination = Path(self.build_lib) / "registrar" / "_lib"
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, destination / LIBRARY_FILE)


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """A platform wheel that works with any Python 3 (the library is loaded with ctypes)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):  # type: ignore[no-untyped-def]
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
    distclass=BinaryDistribution,
)
