"""The ctypes declarations against include/registrar.h, and loading the library."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import registrar
from registrar import _native

from conftest import PYTHON, REPO, python_env

HEADER = REPO / "include" / "registrar.h"


def header_text() -> str:
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def header_functions() -> Dict[str, Tuple[str, List[str]]]:
    """name -> (return type, [parameter types]) for every function prototype in the header."""
    functions = {}
    for m in re.finditer(
        r"^([A-Za-z_][\w \t\*]*?)\s*\b(registrar_\w+)\s*\(([^)]*)\)\s*;", header_text(), re.M
    ):
        ret, name, params = m.group(1).strip(), m.group(2), m.group(3)
        types = []
        for p in [p.strip() for p in params.split(",") if p.strip()]:
            if p == "void":
                continue
            # drop the parameter name: the last identifier
            types.append(re.sub(r"\s*\b\w+$", "", " ".join(p.split())).strip())
        functions[name] = (ret, types)
    return functions


C_TO_CTYPES: Dict[str, Any] = {
    "void": None,
    "registrar_status": _native.c_enum,
    "const char *": ctypes.c_char_p,
    "char *": ctypes.POINTER(ctypes.c_char),
    "size_t": ctypes.c_size_t,
    "size_t *": ctypes.POINTER(ctypes.c_size_t),
    "uint32_t": ctypes.c_uint32,
    "int32_t": ctypes.c_int32,
    "void *": ctypes.c_void_p,
    "registrar_config *": ctypes.c_void_p,
    "const registrar_config *": ctypes.c_void_p,
    "registrar_config **": ctypes.POINTER(ctypes.c_void_p),
    "registrar_client *": ctypes.c_void_p,
    "const registrar_client *": ctypes.c_void_p,
    "registrar_client **": ctypes.POINTER(ctypes.c_void_p),
    "registrar_client_info *": ctypes.POINTER(_native.ClientInfo),
    "registrar_log_callback": _native.LOG_CALLBACK,
    "registrar_free_callback": _native.FREE_CALLBACK,
    "registrar_health_check": _native.HEALTH_CHECK,
    "registrar_discovery_listener": _native.DISCOVERY_LISTENER,
    "registrar_event_callback": _native.EVENT_CALLBACK,
    "registrar_discovery *": ctypes.c_void_p,
    "const registrar_discovery *": ctypes.c_void_p,
    "registrar_discovery **": ctypes.POINTER(ctypes.c_void_p),
    "registrar_discovery_info *": ctypes.POINTER(_native.DiscoveryInfo),
    "registrar_instance_list *": ctypes.c_void_p,
    "const registrar_instance_list *": ctypes.c_void_p,
    "registrar_instance_list **": ctypes.POINTER(ctypes.c_void_p),
    "const registrar_instance *": ctypes.POINTER(_native.Instance),
    "uint64_t": ctypes.c_uint64,
    "uint64_t *": ctypes.POINTER(ctypes.c_uint64),
}


def normalize(c_type: str) -> str:
    return re.sub(r"\s*\*", " *", c_type).replace("* *", "**").strip()


def test_header_was_parsed():
    functions = header_functions()
    assert len(functions) >= 20, sorted(functions)
    assert "registrar_client_new" in functions


def test_every_header_function_is_declared():
    functions = header_functions()
    missing = sorted(set(functions) - set(_native.FUNCTIONS))
    assert not missing, f"declare these in registrar/_native.py: {missing}"
    extra = sorted(set(_native.FUNCTIONS) - set(functions))
    assert not extra, f"declared but not in registrar.h: {extra}"


@pytest.mark.parametrize("name", sorted(header_functions()))
def test_declaration_matches_the_header(name):
    ret, params = header_functions()[name]
    restype, argtypes = _native.FUNCTIONS[name]
    assert normalize(ret) in C_TO_CTYPES, f"unknown C type {ret!r}: extend the test's map"
    assert restype is C_TO_CTYPES[normalize(ret)], f"{name}: restype for {ret!r}"
    assert len(argtypes) == len(params), f"{name}: {params}"
    for i, (declared, c_type) in enumerate(zip(argtypes, params)):
        c_type = normalize(c_type)
        assert c_type in C_TO_CTYPES, f"unknown C type {c_type!r}: extend the test's map"
        assert declared is C_TO_CTYPES[c_type], f"{name} argument {i}: {c_type}"
    # and the loaded library really has them with these declarations
    function = getattr(_native.lib, name)
    assert function.restype is restype
    assert list(function.argtypes) == list(argtypes)


def enum_values(prefix: str) -> Dict[str, int]:
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(rf"\b{prefix}(\w+)\s*=\s*(\d+)", header_text())
    }


def test_enums_match_the_header():
    statuses = {k: v for k, v in enum_values("REGISTRAR_").items() if k == "OK"}
    statuses.update(enum_values("REGISTRAR_ERR_"))
    assert statuses == {c.name: c.value for c in registrar.ErrorCode}
    assert enum_values("REGISTRAR_INSTANCE_") == {s.name: s.value for s in registrar.Status}
    assert enum_values("REGISTRAR_STATE_") == {s.name: s.value for s in registrar.State}
    assert enum_values("REGISTRAR_LOG_") == {s.name: s.value for s in registrar.LogLevel}
    discovery = enum_values("REGISTRAR_DISCOVERY_")
    assert discovery == {s.name: s.value for s in registrar.DiscoveryState}


def test_discovery_constants_match_the_header():
    from registrar import discovery

    defines = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"#define REGISTRAR_(\w+) (\d+)\s*$", HEADER.read_text(), re.M)
    }
    assert defines["LOOKUP_APP"] == discovery._LOOKUP_APP
    assert defines["LOOKUP_VIP"] == discovery._LOOKUP_VIP
    assert defines["LOOKUP_SECURE_VIP"] == discovery._LOOKUP_SECURE_VIP
    assert defines["CHOICE_ROUND_ROBIN"] == discovery._CHOICE_ROUND_ROBIN
    assert defines["CHOICE_RANDOM"] == discovery._CHOICE_RANDOM
    assert defines["QUERY_ALL_STATUSES"] == discovery._QUERY_ALL_STATUSES
    assert defines["URL_SECURE"] == discovery._URL_SECURE
    assert defines["URL_USE_IP"] == discovery._URL_USE_IP


def test_instance_status_names():
    for status in registrar.Status:
        assert _native.lib.registrar_instance_status_str(status).decode() == status.name


STRUCTS = {
    "registrar_client_info": _native.ClientInfo,
    "registrar_discovery_info": _native.DiscoveryInfo,
    "registrar_metadata_entry": _native.MetadataEntry,
    "registrar_instance": _native.Instance,
    "registrar_event": _native.EventStruct,
}
FIELD_TYPES: Dict[str, Any] = {
    "registrar_client_state": _native.c_enum,
    "registrar_discovery_state": _native.c_enum,
    "registrar_instance_status": _native.c_enum,
    "registrar_status": _native.c_enum,
    "registrar_event_kind": _native.c_enum,
    "registrar_event_cause": _native.c_enum,
    "uint64_t": ctypes.c_uint64,
    "int64_t": ctypes.c_int64,
    "int32_t": ctypes.c_int32,
    "uint16_t": ctypes.c_uint16,
    "size_t": ctypes.c_size_t,
    "const char *": ctypes.c_char_p,
    "const registrar_metadata_entry *": ctypes.POINTER(_native.MetadataEntry),
}


def header_structs() -> Dict[str, List[Tuple[str, str]]]:
    structs = {}
    for m in re.finditer(r"typedef struct \{(.*?)\} (\w+);", header_text(), re.S):
        fields = []
        for declaration in m.group(1).split(";"):
            declaration = " ".join(declaration.split())
            if not declaration:
                continue
            c_type, names = re.match(r"(.*?[\w*])\s*(\w+(?:\s*,\s*\w+)*)$", declaration).groups()
            for name in names.split(","):
                fields.append((name.strip(), normalize(c_type)))
        structs[m.group(2)] = fields
    return structs


def test_every_header_struct_is_declared_with_its_layout():
    structs = header_structs()
    assert set(structs) == set(STRUCTS), sorted(structs)
    for name, fields in structs.items():
        expected = [(field, FIELD_TYPES[c_type]) for field, c_type in fields]
        assert expected == list(STRUCTS[name]._fields_), name


def test_abi_version_matches_the_header():
    m = re.search(r"#define REGISTRAR_ABI_VERSION (\d+)", HEADER.read_text())
    assert m and int(m.group(1)) == registrar.ABI_VERSION == _native.lib.registrar_abi_version()
    m = re.search(r'#define REGISTRAR_VERSION "([^"]+)"', HEADER.read_text())
    assert m and registrar.library_version() == m.group(1)


def test_every_status_code_has_its_exception_class():
    for code in registrar.ErrorCode:
        assert registrar.status_name(code) == (
            "REGISTRAR_OK" if code == 0 else f"REGISTRAR_ERR_{code.name}"
        )
        if code == 0:
            continue
        error = registrar.errors.make_error(code, "message")
        assert type(error) is not registrar.RegistrarError
        assert isinstance(error, registrar.RegistrarError)
        assert error.code == code and str(error) == "message"
    assert registrar.status_name(999) == "REGISTRAR_UNKNOWN_STATUS"
    assert isinstance(registrar.TimeoutError("x"), TimeoutError)
    assert isinstance(registrar.InvalidConfigError("x"), ValueError)
    assert isinstance(registrar.TransportError("x"), ConnectionError)


def test_exceptions_pickle():
    import pickle

    for cls in (registrar.TimeoutError, registrar.InvalidConfigError, registrar.ForkedError):
        error = pickle.loads(pickle.dumps(cls("why")))
        assert type(error) is cls and str(error) == "why" and error.code == cls.code


def test_package_ships_the_library_and_is_typed():
    package = Path(registrar.__file__).parent
    assert (package / "py.typed").is_file()
    if (package / "_lib" / _native.LIBRARY_FILE).is_file():
        # installed from the wheel: the bundled copy is what gets loaded
        assert Path(registrar.library_path()) == package / "_lib" / _native.LIBRARY_FILE
    else:
        pytest.skip("running from a source tree without the bundled library")


def run_import(library: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-c", "import registrar; print(registrar.library_path())"],
        env=python_env(REGISTRAR_LIBRARY=library),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_registrar_library_points_at_another_build(tmp_path):
    copy = tmp_path / "libregistrar-copy.so"
    shutil.copy2(registrar.library_path(), copy)
    result = run_import(str(copy))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(copy)


def test_missing_library_fails_the_import_clearly(tmp_path):
    result = run_import(str(tmp_path / "nothing-here.so"))
    assert result.returncode != 0
    assert "LibraryLoadError" in result.stderr and "nothing-here.so" in result.stderr
    assert issubclass(_native.LibraryLoadError, ImportError)
    assert "REGISTRAR_LIBRARY" in result.stderr


def test_abi_mismatch_fails_the_import_clearly(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a stand-in library")
    stubs = []
    for name in _native.FUNCTIONS:
        if name == "registrar_abi_version":
            stubs.append("unsigned registrar_abi_version(void) { return 99; }")
        elif name == "registrar_version":
            stubs.append('const char *registrar_version(void) { return "9.9.9"; }')
        else:
            stubs.append(f"int {name}(void) {{ return 0; }}")
    source = tmp_path / "stub.c"
    source.write_text("\n".join(stubs) + "\n")
    library = tmp_path / "libregistrar-abi99.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    result = run_import(str(library))
    assert result.returncode != 0
    assert "LibraryLoadError" in result.stderr
    assert "ABI version 99" in result.stderr and "ABI version 1" in result.stderr
    assert "9.9.9" in result.stderr


def test_read_string_never_returns_a_cut_text():
    """A text that grows between the call that sizes it and the one that copies it (the metrics
    do all the time) is read whole. Before, the buffer grew to exactly the last size seen and
    gave up after three tries, returning the text cut (CI saw registrar.metrics() without its
    final line feed)."""
    calls = []

    def growing(buf, size, out_len):
        text = b"x" * (300 + len(calls)) + b"\n"  # one byte longer on every call
        calls.append(size)
        out_len._obj.value = len(text)
        n = min(len(text), size - 1)
        ctypes.memmove(buf, text, n)
        buf[n] = b"\0"
        return 0

    status, text = _native.read_string(growing)
    assert status == 0
    assert text.endswith("\n") and len(text) == 300 + len(calls), (len(text), calls)
