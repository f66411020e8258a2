"""The C interface of libregistrar, declared for ctypes: the only module that touches it.

Every function of ``include/registrar.h`` is declared here with ``argtypes`` and ``restype``
(``tests/test_native.py`` parses the header and checks that none is missing or different).
The library is loaded once, at import:

1. the file named by the ``REGISTRAR_LIBRARY`` environment variable, if set (another build,
   for development: ``REGISTRAR_LIBRARY=$PWD/target/debug/libregistrar.so``);
2. otherwise the copy shipped inside this package (``registrar/_lib/``), put there by the
   package's build step (``cargo build --release``);
3. otherwise, when running from a source checkout, ``target/release`` of the repository.

Then its ABI number is compared with the one this wrapper was written for; a mismatch fails
the import with a message saying which file was loaded and what to do.

ctypes calls through ``CDLL`` release the GIL for the duration of each call, so a call that
waits on the network or on the background thread (``wait_registered``, ``stop``) never blocks
other Python threads, and the library's background thread never needs the GIL.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

#: The ABI number (``REGISTRAR_ABI_VERSION`` in ``registrar.h``) this wrapper was written for.
ABI_VERSION = 1

#: Environment variable naming a libregistrar shared library to load instead of the bundled one.
LIBRARY_ENV = "REGISTRAR_LIBRARY"

if sys.platform == "darwin":  # pragma: no cover - the project builds and tests on Linux
    LIBRARY_FILE = "libregistrar.dylib"
elif sys.platform == "win32":  # pragma: no cover
    LIBRARY_FILE = "registrar.dll"
else:
    LIBRARY_FILE = "libregistrar.so"


class LibraryLoadError(ImportError):
    """libregistrar could not be found or loaded, or its ABI number does not match."""


# --- types of registrar.h ------------------------------------------------------------------

#: ``registrar_status``, ``registrar_client_state``, ``registrar_instance_status``: C enums,
#: which are ``int`` on every platform the library supports.
c_enum = c_int

#: Opaque handles: ``registrar_config *`` and ``registrar_client *``.
config_p = c_void_p
client_p = c_void_p


class ClientInfo(Structure):
    """``registrar_client_info``."""

    _fields_ = [
        ("state", c_enum),
        ("status", c_enum),
        ("last_error", c_enum),
        ("registrations", c_uint64),
        ("heartbeats", c_uint64),
        ("failed_requests", c_uint64),
    ]


#: ``registrar_discovery *`` and ``registrar_instance_list *``.
discovery_p = c_void_p
list_p = c_void_p


class DiscoveryInfo(Structure):
    """``registrar_discovery_info``."""

    _fields_ = [
        ("state", c_enum),
        ("ready", c_int32),
        ("version", c_uint64),
        ("apps", c_uint64),
        ("instances", c_uint64),
        ("age_ms", c_int64),
        ("last_error", c_enum),
        ("full_fetches", c_uint64),
        ("delta_fetches", c_uint64),
        ("hash_mismatches", c_uint64),
        ("failed_refreshes", c_uint64),
    ]


class MetadataEntry(Structure):
    """``registrar_metadata_entry``."""

    _fields_ = [("key", c_char_p), ("value", c_char_p)]


class Instance(Structure):
    """``registrar_instance`` (valid only while its list lives)."""

    _fields_ = [
        ("instance_id", c_char_p),
        ("app", c_char_p),
        ("host_name", c_char_p),
        ("ip_addr", c_char_p),
        ("port", c_uint16),
        ("secure_port", c_uint16),
        ("port_enabled", c_int32),
        ("secure_port_enabled", c_int32),
        ("status", c_enum),
        ("overridden_status", c_enum),
        ("vip_address", c_char_p),
        ("secure_vip_address", c_char_p),
        ("home_page_url", c_char_p),
        ("status_page_url", c_char_p),
        ("health_check_url", c_char_p),
        ("metadata", POINTER(MetadataEntry)),
        ("metadata_len", c_size_t),
        ("last_updated_timestamp", c_uint64),
        ("last_dirty_timestamp", c_uint64),
    ]


class EventStruct(Structure):
    """``registrar_event`` (valid only during the listener's call)."""

    _fields_ = [
        ("kind", c_enum),
        ("status", c_enum),
        ("cause", c_enum),
        ("error", c_enum),
        ("reason", c_char_p),
        ("version", c_uint64),
    ]


#: ``void (*registrar_event_callback)(void *user_data, const registrar_event *event)``
EVENT_CALLBACK = CFUNCTYPE(None, c_void_p, POINTER(EventStruct))
#: ``void (*registrar_discovery_listener)(void *user_data, uint64_t version)``
DISCOVERY_LISTENER = CFUNCTYPE(None, c_void_p, c_uint64)
#: ``void (*registrar_log_callback)(void *user_data, int32_t level, const char *message)``
LOG_CALLBACK = CFUNCTYPE(None, c_void_p, c_int32, c_char_p)
#: ``void (*registrar_free_callback)(void *user_data)``
FREE_CALLBACK = CFUNCTYPE(None, c_void_p)
#: ``int32_t (*registrar_health_check)(void *user_data)``
HEALTH_CHECK = CFUNCTYPE(c_int32, c_void_p)

# A char buffer the library writes into (``char *buf``): ctypes.create_string_buffer fits.
char_buf = POINTER(c_char)

#: name -> (restype, argtypes), in the order of registrar.h.
FUNCTIONS: "Dict[str, Tuple[Any, List[Any]]]" = {
    "registrar_client_new": (c_enum, [config_p, POINTER(client_p)]),
    "registrar_client_set_logger": (
        c_enum,
        [client_p, LOG_CALLBACK, c_void_p, FREE_CALLBACK, c_int32],
    ),
    "registrar_client_set_health_check": (
        c_enum,
        [client_p, HEALTH_CHECK, c_void_p, FREE_CALLBACK],
    ),
    "registrar_client_set_event_listener": (
        c_enum,
        [client_p, EVENT_CALLBACK, c_void_p, FREE_CALLBACK],
    ),
    "registrar_client_start": (c_enum, [client_p]),
    "registrar_client_wait_registered": (c_enum, [client_p, c_uint32]),
    "registrar_client_set_status": (c_enum, [client_p, c_int32]),
    "registrar_client_set_metadata": (c_enum, [client_p, c_char_p, c_char_p]),
    "registrar_client_get_metadata": (
        c_enum,
        [client_p, c_char_p, char_buf, c_size_t, POINTER(c_size_t)],
    ),
    "registrar_client_get_info": (c_enum, [client_p, POINTER(ClientInfo)]),
    "registrar_client_last_error": (c_enum, [client_p, char_buf, c_size_t, POINTER(c_size_t)]),
    "registrar_client_snapshot_json": (
        c_enum,
        [client_p, char_buf, c_size_t, POINTER(c_size_t)],
    ),
    "registrar_client_instance_id": (c_enum, [client_p, char_buf, c_size_t, POINTER(c_size_t)]),
    "registrar_client_app_name": (c_enum, [client_p, char_buf, c_size_t, POINTER(c_size_t)]),
    "registrar_client_stop": (c_enum, [client_p, c_uint32]),
    "registrar_client_free": (None, [client_p]),
    "registrar_config_new": (c_enum, [POINTER(config_p)]),
    "registrar_config_from_env": (c_enum, [POINTER(config_p)]),
    "registrar_config_set": (c_enum, [config_p, c_char_p, c_char_p]),
    "registrar_config_validate": (c_enum, [config_p]),
    "registrar_config_describe": (c_enum, [config_p, char_buf, c_size_t, POINTER(c_size_t)]),
    "registrar_config_free": (None, [config_p]),
    "registrar_discovery_new": (c_enum, [config_p, POINTER(discovery_p)]),
    "registrar_discovery_start": (c_enum, [discovery_p]),
    "registrar_discovery_wait_ready": (c_enum, [discovery_p, c_uint32]),
    "registrar_discovery_refresh": (c_enum, [discovery_p, c_uint32]),
    "registrar_discovery_wait_change": (
        c_enum,
        [discovery_p, c_uint64, c_uint32, POINTER(c_uint64)],
    ),
    "registrar_discovery_set_listener": (
        c_enum,
        [discovery_p, DISCOVERY_LISTENER, c_void_p, FREE_CALLBACK],
    ),
    "registrar_discovery_set_event_listener": (
        c_enum,
        [discovery_p, EVENT_CALLBACK, c_void_p, FREE_CALLBACK],
    ),
    "registrar_discovery_set_logger": (
        c_enum,
        [discovery_p, LOG_CALLBACK, c_void_p, FREE_CALLBACK, c_int32],
    ),
    "registrar_discovery_get_info": (c_enum, [discovery_p, POINTER(DiscoveryInfo)]),
    "registrar_discovery_last_error": (
        c_enum,
        [discovery_p, char_buf, c_size_t, POINTER(c_size_t)],
    ),
    "registrar_discovery_snapshot_json": (
        c_enum,
        [discovery_p, char_buf, c_size_t, POINTER(c_size_t)],
    ),
    "registrar_discovery_instances": (
        c_enum,
        [discovery_p, c_int32, c_char_p, c_uint32, POINTER(list_p)],
    ),
    "registrar_discovery_all": (c_enum, [discovery_p, c_uint32, POINTER(list_p)]),
    "registrar_discovery_instance": (c_enum, [discovery_p, c_char_p, POINTER(list_p)]),
    "registrar_discovery_choose": (
        c_enum,
        [discovery_p, c_int32, c_char_p, c_int32, POINTER(list_p)],
    ),
    "registrar_discovery_choose_url": (
        c_enum,
        [discovery_p, c_int32, c_char_p, c_int32, c_uint32, char_buf, c_size_t, POINTER(c_size_t)],
    ),
    "registrar_discovery_stop": (c_enum, [discovery_p, c_uint32]),
    "registrar_discovery_free": (None, [discovery_p]),
    "registrar_instance_list_len": (c_size_t, [list_p]),
    "registrar_instance_list_get": (POINTER(Instance), [list_p, c_size_t]),
    "registrar_instance_list_version": (c_uint64, [list_p]),
    "registrar_instance_list_url": (
        c_enum,
        [list_p, c_size_t, c_uint32, char_buf, c_size_t, POINTER(c_size_t)],
    ),
    "registrar_instance_list_free": (None, [list_p]),
    "registrar_instance_status_str": (c_char_p, [c_int32]),
    "registrar_health_check_set_reason": (c_enum, [c_char_p]),
    "registrar_last_error_message": (c_size_t, [char_buf, c_size_t]),
    "registrar_metrics_text": (c_enum, [char_buf, c_size_t, POINTER(c_size_t)]),
    "registrar_setting_count": (c_size_t, []),
    "registrar_setting_name": (c_char_p, [c_size_t]),
    "registrar_setting_description": (c_char_p, [c_size_t]),
    "registrar_status_str": (c_char_p, [c_int32]),
    "registrar_version": (c_char_p, []),
    "registrar_abi_version": (c_uint32, []),
}


def candidate_paths() -> "List[str]":
    """Where the library is looked for, in order (see the module docstring)."""
    override = os.environ.get(LIBRARY_ENV, "").strip()
    if override:
        return [override]
    package = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(package, "_lib", LIBRARY_FILE)]
    # A source checkout: bindings/python/src/registrar/_native.py -> repository root.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(package))))
    if os.path.isfile(os.path.join(root, "Cargo.toml")):
        candidates.append(os.path.join(root, "target", "release", LIBRARY_FILE))
    return candidates


def load(path: "Optional[str]" = None) -> "Tuple[ctypes.CDLL, str]":
    """Loads the library (``path``, or the first candidate that exists), declares every
    function and checks the ABI number. Raises :class:`LibraryLoadError`."""
    if path is None:
        candidates = candidate_paths()
        found = [p for p in candidates if os.path.isfile(p)]
        if not found:
            tried = ", ".join(candidates)
            raise LibraryLoadError(
                f"registrar: the native library {LIBRARY_FILE} was not found (looked at: {tried}). "
                f"Reinstall the package (pip install ./bindings/python builds it with cargo), "
                f"or set {LIBRARY_ENV} to the path of a libregistrar build."
            )
        path = found[0]
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise LibraryLoadError(f"registrar: cannot load the native library {path}: {e}") from e
    missing = [name for name in FUNCTIONS if not hasattr(lib, name)]
    if missing:
        raise LibraryLoadError(
            f"registrar: {path} is not a compatible libregistrar: it lacks {', '.join(missing)}"
        )
    for name, (restype, argtypes) in FUNCTIONS.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    abi = lib.registrar_abi_version()
    if abi != ABI_VERSION:
        version = lib.registrar_version().decode("utf-8", "replace")
        raise LibraryLoadError(
            f"registrar: {path} (libregistrar {version}) has ABI version {abi}, but this Python "
            f"package was written for ABI version {ABI_VERSION}. Install the package and the "
            f"library from the same source (pip install ./bindings/python), or point "
            f"{LIBRARY_ENV} at a matching build."
        )
    return lib, path


lib, library_path = load()


def last_error_message() -> str:
    """The thread-local message of the last failed call on this thread (read it right after
    the failing call, on the same thread: ctypes calls run on the calling OS thread)."""
    buf = ctypes.create_string_buffer(512)
    needed = lib.registrar_last_error_message(buf, len(buf))
    if needed >= len(buf):
        buf = ctypes.create_string_buffer(needed + 1)
        lib.registrar_last_error_message(buf, len(buf))
    return buf.value.decode("utf-8", "replace")


def read_string(function: "Any", *args: "Any") -> "Tuple[int, str]":
    """Calls an snprintf-style function ``f(*args, buf, buf_len, &out_len)`` until the whole
    text fits; returns (status, text). The text may grow between the call that sizes it and
    the one that copies it (the metrics do all the time: an age changes, a counter gains a
    digit), so the buffer gets room to spare; a cut text is never returned."""
    size = 256
    for _ in range(32):
        buf = ctypes.create_string_buffer(size)
        out_len = c_size_t(0)
        status = function(*args, buf, size, ctypes.byref(out_len))
        if status != 0:
            return status, ""
        if out_len.value < size:
            return 0, buf.value.decode("utf-8", "replace")
        size = out_len.value + out_len.value // 4 + 256
    raise RuntimeError(f"registrar: a text kept growing while being read ({size} bytes)")
