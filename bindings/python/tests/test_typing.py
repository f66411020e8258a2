"""The package is typed (mypy --strict passes) and light to import."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

import registrar

from conftest import PYTHON, python_env

PACKAGE = Path(registrar.__file__).parent


def test_import_pulls_in_nothing_heavy():
    code = (
        "import sys; before = set(sys.modules); import registrar; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=python_env())
    assert result.returncode == 0, result.stderr
    added = set(result.stdout.split())
    heavy = {"typing", "dataclasses", "logging", "pathlib", "inspect", "asyncio", "ssl", "json"}
    assert not added & heavy, sorted(added & heavy)


def test_setting_value_alias_is_available_on_demand():
    assert "Union" in repr(registrar.SettingValue) or "|" in repr(registrar.SettingValue)
    with pytest.raises(AttributeError):
        registrar.NoSuchThing  # noqa: B018


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_strict_passes_on_the_package(tmp_path):
    # a copy of the installed package, alone in its directory (site-packages holds others)
    source = tmp_path / "src"
    shutil.copytree(PACKAGE, source / "registrar", ignore=shutil.ignore_patterns("_lib", "__pycache__"))
    result = subprocess.run(
        [PYTHON, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), "-p", "registrar"],
        capture_output=True,
        text=True,
        env=python_env(),
        cwd=source,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
