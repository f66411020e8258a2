#!/usr/bin/env python3
"""Parity check: every C function and every setting has a counterpart in every wrapper.

The references are the library itself:
  - the functions are the ones include/registrar.h declares (generated from src/ffi/);
  - the settings are the core's one list, read through the C API of the built library
    (registrar_setting_count / registrar_setting_name), never from a copy.
Against them it checks:
  - Python (bindings/python/src/registrar): each function is called (`lib.registrar_x`) by a
    module of the package; `registrar.settings()` returns exactly the library's list and
    `registrar.Config` accepts every name (run for real against the built library);
  - Go (bindings/go, non-test files): each function is called (`registrar_x(` in the cgo
    preamble or `C.registrar_x(`);
  - C++ (include/registrar.hpp, when it exists): each function is called;
  - every `REGISTRY_*` name written in a wrapper's source is a setting the core knows (no
    stale or misspelt name), so wrappers can only pass names through, never invent them;
  - README.md's configuration table lists exactly the core's settings.
A function a wrapper deliberately does without is listed in EXCEPTIONS with the reason; an
exception that is no longer needed (the wrapper now calls it, or the function is gone) fails
too, so the list stays true.

Usage: scripts/check-parity.py [--library target/release/libregistrar.so]
       scripts/check-parity.py --self-test   (also proves that each kind of gap is caught)
Prints one summary line: "parity: ok: ..." or "parity: FAILED: ...", and exits 1 on failure.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Deliberate gaps: (wrapper, C function) -> why. Keep each reason concrete; name the issue
# when the gap is work still to do.
EXCEPTIONS = {
    # Change notification: the wrappers wait in registrar_discovery_wait_change on a thread /
    # goroutine of their own (Python Discovery.on_change, Go Discovery.OnChange), so no Python
    # or Go code ever runs on the library's discovery thread and a slow callback cannot delay
    # a refresh. The C listener is for C and C++ callers.
    ("python", "registrar_discovery_set_listener"): "on_change waits with wait_change on its own thread",
    ("go", "registrar_discovery_set_listener"): "OnChange waits with wait_change on its own goroutine",
    # Wrappers copy a list's instances into their own values and free the list at once; the
    # URL is then formatted from the copy with the same rule (Python Instance.url, Go
    # Instance.URLWith; the Go test compares it with registrar_discovery_choose_url).
    ("python", "registrar_instance_list_url"): "Instance.url formats the copied instance",
    ("go", "registrar_instance_list_url"): "Instance.URLWith formats the copied instance",
    # The list version is the registry version the query saw; the wrappers return plain lists
    # and expose the same number as Discovery.info().version / Discovery.Version().
    ("python", "registrar_instance_list_version"): "version via Discovery.info()",
    ("go", "registrar_instance_list_version"): "version via Discovery.Version()",
    ("c++", "registrar_instance_list_version"): "version via Discovery::info().version",
    # Instance status names: Python's Status enum and Go's Status.String() carry the names of
    # the header's enum (registrar_instance_status) themselves; the C function is for C.
    ("python", "registrar_instance_status_str"): "Status is an IntEnum with the C names",
    ("go", "registrar_instance_status_str"): "Status.String() gives the C names",
    # Go's ConfigFromEnv reads the REGISTRY_* environment in Go (os.LookupEnv), through the
    # library's own list (Settings()): C's getenv is not safe against a concurrent os.Setenv
    # on another goroutine (bindings/go/README.md). Same names and precedence.
    ("go", "registrar_config_from_env"): "ConfigFromEnv reads the environment via Settings()",
}

WRAPPERS = ("python", "go", "c++")


# --- reading the sources --------------------------------------------------------------------


def header_functions(header_text: str) -> list[str]:
    """Names of the functions include/registrar.h declares (not typedefs, not macros)."""
    names = []
    for line in header_text.splitlines():
        if line.startswith((" ", "\t", "*", "/", "#", "typedef", "}")):
            continue
        m = re.match(r"^[A-Za-z_][\w \*]*?\b(registrar_[a-z0-9_]+)\s*\(", line)
        if m:
            names.append(m.group(1))
    return names


def strip_comments(text: str, style: str) -> str:
    """Removes comments so that a function named in a comment does not count as a call."""
    if style == "go":  # /* */ blocks are kept: Go's cgo preamble (C code) lives in one
        return re.sub(r"//[^\n]*", "", text)
    if style == "c++":
        text = re.sub(r"/\*[\s\S]*?\*/", "", text)
        return re.sub(r"//[^\n]*", "", text)
    if style == "python":
        text = re.sub(r'"""[\s\S]*?"""', "", text)
        return re.sub(r"#[^\n]*", "", text)
    raise ValueError(style)


def called_functions(sources: dict[str, str], language: str) -> set[str]:
    """Which registrar_* functions the sources call."""
    found: set[str] = set()
    for text in sources.values():
        code = strip_comments(text, language)
        if language == "python":
            found |= set(re.findall(r"\blib\.(registrar_[a-z0-9_]+)\b", code))
        elif language == "go":  # a call in the preamble, or C.registrar_x
            found |= set(re.findall(r"\b(registrar_[a-z0-9_]+)\s*\(", code))
            found |= set(re.findall(r"\bC\.(registrar_[a-z0-9_]+)\b", code))
        else:  # C++: called, or used as a value (a deleter: Handle<T, registrar_t_free>)
            found |= set(re.findall(r"\b(registrar_[a-z0-9_]+)\b", code))
    return found


def setting_names_in(sources: dict[str, str]) -> dict[str, set[str]]:
    """REGISTRY_* names written in each file (in code or docs: a stale one misleads either way)."""
    out = {}
    for path, text in sources.items():
        names = set(re.findall(r"\bREGISTRY_[A-Z0-9_]*[A-Z0-9]\b", text))
        if names:
            out[path] = names
    return out


def readme_settings(readme: str) -> set[str]:
    """The settings named in the first column of README.md's configuration table."""
    m = re.search(r"^## Configuration\n([\s\S]*?)(?=^## )", readme, re.M)
    if not m:
        return set()
    names: set[str] = set()
    for line in m.group(1).splitlines():
        if line.startswith("|"):
            first = line.split("|")[1]
            names |= set(re.findall(r"`(REGISTRY_[A-Z0-9_]+)`", first))
    return names


def read_sources() -> dict[str, dict[str, str]]:
    def files(pattern_root: Path, glob: str, skip=lambda p: False) -> dict[str, str]:
        return {
            str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for p in sorted(pattern_root.glob(glob))
            if p.is_file() and not skip(p)
        }

    python = files(ROOT / "bindings/python/src/registrar", "*.py")
    go = files(ROOT / "bindings/go", "*.go", skip=lambda p: p.name.endswith("_test.go"))
    hpp_path = ROOT / "include/registrar.hpp"
    cpp = {str(hpp_path.relative_to(ROOT)): hpp_path.read_text(encoding="utf-8")} if hpp_path.exists() else {}
    return {"python": python, "go": go, "c++": cpp}


# --- the settings, from the library -----------------------------------------------------------


def library_settings(library: str) -> list[str]:
    lib = ctypes.CDLL(library)
    lib.registrar_setting_count.restype = ctypes.c_size_t
    lib.registrar_setting_name.restype = ctypes.c_char_p
    lib.registrar_setting_name.argtypes = [ctypes.c_size_t]
    return [lib.registrar_setting_name(i).decode() for i in range(lib.registrar_setting_count())]


def python_runtime_settings(library: str) -> tuple[list[str], list[str]]:
    """Runs the Python package against the built library: the names registrar.settings()
    returns, and the names registrar.Config refuses (should be none)."""
    probe = (
        "import json, registrar\n"
        "names = [s.name for s in registrar.settings()]\n"
        "refused = []\n"
        "config = registrar.Config()\n"
        "for n in names:\n"
        "    try:\n"
        "        config.set(n, None)\n"
        "    except registrar.InvalidConfigError:\n"
        "        refused.append(n)\n"
        "print(json.dumps([names, refused]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings/python/src"), REGISTRAR_LIBRARY=library)
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"the Python package could not be run: {out.stderr.strip()[-400:]}")
    names, refused = json.loads(out.stdout)
    return names, refused


# --- the checks -------------------------------------------------------------------------------


def check(
    functions: list[str],
    settings: list[str],
    sources: dict[str, dict[str, str]],
    readme: str,
    python_settings: tuple[list[str], list[str]] | None,
) -> tuple[list[str], dict[str, int]]:
    """Returns (problems, figures). Pure: the self-test feeds it mutated inputs."""
    problems: list[str] = []
    figures = {"functions": len(functions), "settings": len(settings), "exceptions": 0}
    known = set(functions)
    used_exceptions = set()
    for wrapper in WRAPPERS:
        files = sources.get(wrapper, {})
        if not files:
            continue  # C++ header not there (yet)
        figures[wrapper] = 1
        called = called_functions(files, wrapper)
        for name in functions:
            excepted = (wrapper, name) in EXCEPTIONS
            if name in called and excepted:
                problems.append(f"{wrapper}: {name} is listed as an exception but is called now: remove the exception")
            elif name not in called and not excepted:
                problems.append(f"{wrapper}: no counterpart for {name} (call it, or list it in EXCEPTIONS with the reason)")
            if excepted:
                used_exceptions.add((wrapper, name))
        for path, names in setting_names_in(files).items():
            for name in sorted(names - set(settings)):
                problems.append(f"{wrapper}: {path} names {name}, which is not a setting of the core")
    for wrapper, name in EXCEPTIONS:
        if name not in known:
            problems.append(f"exception ({wrapper}, {name}): no such function in the header any more")
        elif sources.get(wrapper):
            figures["exceptions"] += 1
    # Python: the package's list is the library's, and every name is accepted.
    if python_settings is not None:
        names, refused = python_settings
        if names != settings:
            missing = [s for s in settings if s not in names]
            extra = [s for s in names if s not in settings]
            problems.append(f"python: registrar.settings() differs from the library's list (missing {missing}, extra {extra})")
        for name in refused:
            problems.append(f"python: registrar.Config refuses the setting {name}")
    # README: the configuration table lists exactly the core's settings.
    in_readme = readme_settings(readme)
    for name in settings:
        if name not in in_readme:
            problems.append(f"README.md: the configuration table lacks {name}")
    for name in sorted(in_readme - set(settings)):
        problems.append(f"README.md: the configuration table lists {name}, which is not a setting of the core")
    # The Go wrapper must take its list from the library, not re-list it.
    if sources.get("go") and "registrar_setting_name" not in called_functions(sources["go"], "go"):
        problems.append("go: the setting list is not read from the library (registrar_setting_name)")
    return problems, figures


def self_test(functions, settings, sources, readme, python_settings) -> list[str]:
    """Mutates the real inputs in memory, one gap at a time, and checks each is caught."""
    failures = []
    base = dict(functions=functions, settings=settings, sources=sources, readme=readme,
                python_settings=python_settings)
    baseline = set(check(**base)[0])

    def expect_caught(what: str, **changed) -> None:
        new = [p for p in check(**dict(base, **changed))[0] if p not in baseline]
        if not new:
            failures.append(f"self-test: not caught: {what}")
        else:
            print(f"parity self-test: caught {what}: {new[0]}")

    go_without_choose = {
        path: text.replace("registrar_discovery_choose(", "registrar_discovery_choose_REMOVED(")
        for path, text in sources["go"].items()
    }
    expect_caught("a function removed from the Go wrapper", sources=dict(sources, go=go_without_choose))
    py_without_validate = {
        path: text.replace("lib.registrar_config_validate", "lib.REMOVED")
        for path, text in sources["python"].items()
    }
    expect_caught("a function removed from the Python package", sources=dict(sources, python=py_without_validate))
    expect_caught("a new C function no wrapper has", functions=functions + ["registrar_new_feature"])
    expect_caught("a new setting missing from the README", settings=settings + ["REGISTRY_NEW_SETTING"])
    readme_without_port = "\n".join(l for l in readme.splitlines() if not l.startswith("| `REGISTRY_PORT`"))
    expect_caught("a README row removed", readme=readme_without_port)
    go_stale = dict(sources["go"])
    go_stale["bindings/go/stale.go"] = 'const x = "REGISTRY_NO_SUCH_SETTING"'
    expect_caught("a stale setting name in the Go wrapper", sources=dict(sources, go=go_stale))
    if python_settings is not None:
        expect_caught("a Python list that is not the library's",
                      python_settings=(python_settings[0][:-1], python_settings[1]))
    if sources.get("c++"):
        hpp = {p: re.sub(r"\bregistrar_config_set\b", "REMOVED", t) for p, t in sources["c++"].items()}
        expect_caught("a function removed from registrar.hpp", sources=dict(sources, **{"c++": hpp}))
    else:  # no registrar.hpp yet: a made-up one that uses every function but one
        made_up = "\n".join(f"auto f{i} = &{name};" for i, name in enumerate(functions[1:]))
        expect_caught("a function missing from a registrar.hpp",
                      sources=dict(sources, **{"c++": {"include/registrar.hpp": made_up}}))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default=os.environ.get("REGISTRAR_LIBRARY") or str(ROOT / "target/release/libregistrar.so"))
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--no-python-run", action="store_true", help="skip running the Python package")
    args = parser.parse_args()

    functions = header_functions((ROOT / "include/registrar.h").read_text(encoding="utf-8"))
    try:
        settings = library_settings(args.library)
        python_settings = None if args.no_python_run else python_runtime_settings(args.library)
    except (OSError, AttributeError, RuntimeError) as e:
        print(f"parity: FAILED: cannot read the settings from {args.library}: {e}")
        return 1
    sources = read_sources()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    problems, figures = check(functions, settings, sources, readme, python_settings)
    if args.self_test:
        problems += self_test(functions, settings, sources, readme, python_settings)
    for p in problems:
        print(f"parity: {p}")
    wrappers = ", ".join(w for w in WRAPPERS if sources.get(w)) or "none"
    summary = (
        f"{figures['functions']} C functions and {figures['settings']} settings checked against "
        f"{wrappers} and the README ({figures['exceptions']} deliberate exceptions)"
    )
    if problems:
        print(f"parity: FAILED: {len(problems)} problem(s); {summary}")
        return 1
    print(f"parity: ok: {summary}" + (" ; self-test: every mutation caught" if args.self_test else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
