"""registrar: register Python services with a Netflix Eureka registry.

A thin, typed wrapper (ctypes) over libregistrar, a native Eureka client: registration,
heartbeats, re-registration after a registry restart and deregistration all run on the
library's own background thread, which never needs the GIL.

    import registrar

    with registrar.Client(app_name="orders", port=8080) as client:  # + REGISTRY_* environment
        client.up()
        client.wait_registered(timeout=10)
        serve()

See :class:`Client`, :class:`Config`, :func:`deregister_at_exit` and the package README
(gunicorn and other pre-fork servers, fork safety, benchmarks).
"""

from __future__ import annotations

from . import _native
from ._client import (
    LOGGER_NAME,
    Client,
    Config,
    Info,
    LogLevel,
    Setting,
    State,
    Status,
    metrics,
    settings,
)
from .errors import (
    ErrorCode,
    ForkedError,
    InvalidArgumentError,
    InvalidConfigError,
    InvalidUtf8Error,
    NotFoundError,
    NullArgumentError,
    PanicError,
    RegistrarError,
    RejectedError,
    ShutDownError,
    TimeoutError,
    TransportError,
    UnauthorizedError,
)
from .shutdown import ExitHook, deregister_at_exit


def _package_version() -> str:
    # Cargo.toml's version, written into _version.py by setup.py when the package is built;
    # the library's own when the package runs from a source tree.
    try:
        from ._version import VERSION

        return VERSION
    except ImportError:
        library: bytes = _native.lib.registrar_version()
        return library.decode("utf-8")


__version__ = _package_version()

#: The ABI number this package was written for (checked against the library at import).
ABI_VERSION = _native.ABI_VERSION


def library_version() -> str:
    """The version of the loaded libregistrar, e.g. ``"0.1.0"``."""
    version: bytes = _native.lib.registrar_version()
    return version.decode("utf-8")


def library_path() -> str:
    """The file the native library was loaded from."""
    return str(_native.library_path)


_DISCOVERY_NAMES = ("Discovery", "DiscoveryInfo", "DiscoveryState", "Instance")
_EVENT_NAMES = ("Event", "EventCause", "EventKind")


def __getattr__(name: str) -> object:
    # Discovery is imported on first use: a process that only registers pays nothing for it.
    if name in _DISCOVERY_NAMES:
        from . import discovery

        return getattr(discovery, name)
    # Events too: only a process that listens imports them.
    if name in _EVENT_NAMES:
        from . import events

        return getattr(events, name)
    # Typing aliases, built on demand so that importing registrar does not import typing.
    if name == "SettingValue":
        from collections.abc import Iterable, Mapping
        from typing import Union

        return Union[str, int, float, Iterable[str], Mapping[str, str], None]
    raise AttributeError(f"module 'registrar' has no attribute {name!r}")


TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._client import SettingValue as SettingValue
    from .discovery import Discovery as Discovery
    from .discovery import DiscoveryInfo as DiscoveryInfo
    from .discovery import DiscoveryState as DiscoveryState
    from .discovery import Instance as Instance
    from .events import Event as Event
    from .events import EventCause as EventCause
    from .events import EventKind as EventKind


def status_name(code: int) -> str:
    """The C name of a status code, e.g. ``"REGISTRAR_ERR_TIMEOUT"``."""
    name: bytes = _native.lib.registrar_status_str(int(code))
    return name.decode("utf-8")


__all__ = [
    "ABI_VERSION",
    "Client",
    "Config",
    "Discovery",
    "DiscoveryInfo",
    "DiscoveryState",
    "ErrorCode",
    "Event",
    "EventCause",
    "EventKind",
    "ExitHook",
    "ForkedError",
    "Info",
    "Instance",
    "InvalidArgumentError",
    "InvalidConfigError",
    "InvalidUtf8Error",
    "LOGGER_NAME",
    "LogLevel",
    "NotFoundError",
    "NullArgumentError",
    "PanicError",
    "RegistrarError",
    "RejectedError",
    "Setting",
    "SettingValue",
    "ShutDownError",
    "State",
    "Status",
    "TimeoutError",
    "TransportError",
    "UnauthorizedError",
    "deregister_at_exit",
    "library_path",
    "library_version",
    "metrics",
    "settings",
    "status_name",
]
