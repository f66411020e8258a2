"""Config and Client: the Pythonic layer over the C handles."""

from __future__ import annotations

import atexit
import ctypes
import enum
import itertools
import os
import re
import sys
import threading
import warnings
import weakref
from collections import namedtuple
from collections.abc import Iterable, Mapping
from contextlib import contextmanager

from . import _native
from ._native import lib
from .errors import ErrorCode, RegistrarError, ShutDownError, make_error

# Only what is needed at run time is imported: typing, dataclasses, logging and pathlib would
# add megabytes to every process that registers (see the README's benchmark).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

    #: What a setting may be given as: text, a number (seconds, ports), a path (the TLS
    #: files), a list of URLs, or a mapping for ``metadata``. ``None`` leaves it unset.
    SettingValue = Union[
        str, int, float, "os.PathLike[str]", Iterable[str], Mapping[str, str], None
    ]
    LogFunction = Callable[["LogLevel", str], None]
    from .events import Event

__all__ = ["Client", "Config", "Info", "LogLevel", "Setting", "State", "Status", "settings"]


class Status(enum.IntEnum):
    """``registrar_instance_status``: the status of an instance in the registry."""

    UNKNOWN = 0
    #: Ready to receive traffic.
    UP = 1
    #: Not able to serve (set on shutdown).
    DOWN = 2
    #: Starting up; the status a client registers with until told otherwise.
    STARTING = 3
    #: Taken out of traffic on purpose.
    OUT_OF_SERVICE = 4


class State(enum.IntEnum):
    """``registrar_client_state``: where a client is in its lifecycle."""

    #: Created; :meth:`Client.start` not called yet.
    NOT_STARTED = 0
    #: Started; the registry has not (or no longer) accepted the registration. Retrying.
    REGISTERING = 1
    #: The registry holds the instance; heartbeats are running.
    REGISTERED = 2
    #: Stopped: deregistered (or gave up within the stop timeout); nothing more is sent.
    STOPPED = 3


class LogLevel(enum.IntEnum):
    """``registrar_log_level``."""

    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


# logging's levels for LogLevel (ERROR, WARNING, INFO, DEBUG), without importing logging.
_PY_LEVELS = {LogLevel.ERROR: 40, LogLevel.WARN: 30, LogLevel.INFO: 20, LogLevel.DEBUG: 10}


class Info:
    """A snapshot of a client (``registrar_client_info``); read-only."""

    __slots__ = ("state", "status", "last_error", "registrations", "heartbeats", "failed_requests")

    #: Where the client is in its lifecycle.
    state: State
    #: The status this process wants the registry to show: DOWN while the health check fails
    #: or the instance drains on stop, otherwise the one set by :meth:`Client.set_status`.
    status: Status
    #: The code of the background thread's most recent failure, ``ErrorCode.OK`` if the last
    #: request succeeded (its message: :attr:`Client.last_error`).
    last_error: ErrorCode
    #: Registrations (POST) the registry accepted.
    registrations: int
    #: Heartbeats (PUT) the registry accepted.
    heartbeats: int
    #: Requests that failed (unreachable, timeout, rejected).
    failed_requests: int

    def __init__(
        self,
        state: State,
        status: Status,
        last_error: ErrorCode,
        registrations: int,
        heartbeats: int,
        failed_requests: int,
    ) -> None:
        for name, value in zip(
            self.__slots__, (state, status, last_error, registrations, heartbeats, failed_requests)
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Info is read-only")

    def _values(self) -> "Tuple[object, ...]":
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Info) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Info({fields})"

def _canonical(key: str) -> str:
    upper = key.strip().upper()
    return upper if upper.startswith("REGISTRY_") else "REGISTRY_" + upper


def _encode(text: str, what: str) -> bytes:
    if "\x00" in text:
        raise ValueError(f"{what} must not contain a NUL character")
    return text.encode("utf-8", "surrogatepass")


def _check(status: int) -> None:
    """Raises the exception for a failed call; reads the thread-local message at once."""
    if status != 0:
        raise make_error(status, _native.last_error_message())


def _seconds_to_ms(seconds: Optional[float], what: str) -> int:
    if seconds is None:
        return 0
    if seconds < 0:
        raise ValueError(f"{what} must not be negative")
    return min(int(round(seconds * 1000)), 0xFFFFFFFF)


#: One setting the library knows: ``name`` (the environment variable, e.g. ``"REGISTRY_URL"``)
#: and a one-line ``description`` that gives the default when there is one.
Setting = namedtuple("Setting", ["name", "description"])


def settings() -> "Tuple[Setting, ...]":
    """Every setting the loaded library accepts, in its order, read from the library itself
    (``registrar_setting_name``/``registrar_setting_description``): this package never lists
    setting names on its own, so a setting added to the library needs no change here."""
    out = []
    for index in range(lib.registrar_setting_count()):
        name = lib.registrar_setting_name(index)
        description = lib.registrar_setting_description(index)
        if name is None:  # the count and the names come from one static table; defensive only
            break
        out.append(Setting(name.decode("utf-8"), (description or b"").decode("utf-8")))
    return tuple(out)


class Config:
    """Settings for a :class:`Client`: built-in defaults, optionally the ``REGISTRY_*``
    environment, and values given here (highest precedence).

    Keys are the setting names of the C interface, case-insensitive, with or without the
    ``REGISTRY_`` prefix (``url``, ``app_name``, ``REGISTRY_PORT``...). The library owns the
    list: :func:`registrar.settings` returns every name with its description and default, and
    any name it lists is accepted here without a change to this package.
    Unknown keys raise :class:`~registrar.InvalidConfigError` at once; values are checked
    when a client is created (or by :meth:`validate`), with a message naming the setting.

    Values may be ``str``, ``int``, ``float`` (seconds), a list of URLs for ``url``, or a
    mapping for ``metadata`` (its exact values are kept, commas included). ``None`` or ``""``
    removes an explicit value, so the environment or the default applies again.

    ``from_env=True`` reads the ``REGISTRY_*`` environment variables now (later changes to
    the environment are not seen). The password is never shown by ``repr`` or in messages.
    A config may be used for several clients; do not change it from several threads at once.
    """

    def __init__(self, *, from_env: bool = False, **settings: SettingValue) -> None:
        handle = _native.config_p()
        constructor = lib.registrar_config_from_env if from_env else lib.registrar_config_new
        _check(constructor(ctypes.byref(handle)))
        self._handle: Optional[int] = handle.value
        self._finalizer = weakref.finalize(self, lib.registrar_config_free, handle.value)
        self._finalizer.atexit = False
        self._lock = threading.Lock()
        _live_objects.add(self)
        self._from_env = from_env
        # Metadata values the REGISTRY_METADATA text form cannot carry exactly (commas,
        # surrounding spaces): applied to each client with registrar_client_set_metadata.
        self._exact_metadata: Dict[str, str] = {}
        for key, value in settings.items():
            self.set(key, value)

    @classmethod
    def from_env(cls, **settings: SettingValue) -> "Config":
        """A config from the ``REGISTRY_*`` environment, overridden by ``settings``."""
        return cls(from_env=True, **settings)

    def set(self, key: str, value: SettingValue) -> "Config":
        """Sets one setting (see the class docstring); returns the config for chaining."""
        canonical = _canonical(key)
        exact: Dict[str, str] = {}
        if value is None:
            text = ""
        elif isinstance(value, bool):
            raise TypeError(f"{canonical}: a bool is not a valid setting value")
        elif isinstance(value, (int, float)):
            text = repr(value) if isinstance(value, float) else str(value)
        elif isinstance(value, str):
            text = value
        elif isinstance(value, os.PathLike):
            # ca_file=Path(...), client_cert=..., client_key=...
            text = os.fspath(value)
        elif isinstance(value, Mapping):
            if canonical != "REGISTRY_METADATA":
                raise TypeError(f"{canonical}: a mapping is only accepted for metadata")
            text, exact = _metadata_text(value)
        elif isinstance(value, Iterable):
            text = ",".join(str(v) for v in value)
        else:
            raise TypeError(f"{canonical}: unsupported value type {type(value).__name__}")
        with self._lock:
            handle = self._live()
            _check(
                lib.registrar_config_set(
                    handle, _encode(key, "a setting name"), _encode(text, canonical)
                )
            )
            if canonical == "REGISTRY_METADATA":
                self._exact_metadata = exact
        return self

    def validate(self) -> None:
        """Checks the settings exactly as creating a client would;
        raises :class:`~registrar.InvalidConfigError` naming the setting."""
        with self._lock:
            _check(lib.registrar_config_validate(self._live()))

    def close(self) -> None:
        """Frees the native config now (clients made from it are not affected)."""
        with self._lock:
            self._handle = None
            self._finalizer()

    def _live(self) -> int:
        if self._handle is None:
            raise ValueError("this Config has been closed")
        return self._handle

    def describe(self) -> str:
        """The settings that are set (environment included), as the library describes them:
        the password and the user-info of every URL are hidden, whatever was given."""
        with self._lock:
            if self._handle is None:
                return "closed"
            status, text = _native.read_string(lib.registrar_config_describe, self._handle)
        _check(status)
        return text

    def __repr__(self) -> str:
        # The library's description: one redaction for every language.
        env = "from_env=True; " if self._from_env else ""
        return f"registrar.Config({env}{self.describe()})"


def _metadata_text(value: Mapping[str, str]) -> Tuple[str, Dict[str, str]]:
    parts: List[str] = []
    exact: Dict[str, str] = {}
    for k, v in value.items():
        v = str(v)
        if "," in v or v != v.strip():
            parts.append(f"{k}=")
            exact[str(k)] = v
        else:
            parts.append(f"{k}={v}")
    # "," is an explicit empty metadata (so an empty mapping overrides the environment).
    return (",".join(parts) or ","), exact


# Python log callbacks by the user_data id handed to the library; removed by the free callback.
_log_sinks: Dict[int, Any] = {}
_log_sinks_lock = threading.Lock()
_log_ids = itertools.count(1)


def _log_trampoline(user_data: Optional[int], level: int, message: Optional[bytes]) -> None:
    sink = _log_sinks.get(user_data or 0)
    if sink is None:
        return
    try:
        text = (message or b"").decode("utf-8", "replace")
        try:
            lvl = LogLevel(level)
        except ValueError:
            lvl = LogLevel.ERROR
        sink[0](lvl, text)
    except BaseException:  # never let an exception reach the library's thread
        pass


def _free_trampoline(user_data: Optional[int]) -> None:
    with _log_sinks_lock:
        _log_sinks.pop(user_data or 0, None)


# Python health checks by the user_data id handed to the library; removed by the free callback.
_health_checks: Dict[int, Any] = {}


# Longest repr of a falsy result quoted in a reason (the library cuts reasons at 512
# characters anyway).
_MAX_RESULT_REPR = 200


def _health_trampoline(user_data: Optional[int]) -> int:
    entry = _health_checks.get(user_data or 0)
    if entry is None:
        return 0
    try:
        result = entry[0]()
        if result:
            return 1
        try:
            shown = repr(result)
        except BaseException:  # a __repr__ that raises
            shown = f"a {type(result).__name__}"
        if len(shown) > _MAX_RESULT_REPR:
            shown = shown[:_MAX_RESULT_REPR] + "..."
        reason = f"it returned {shown}"
    except BaseException as e:  # raising means unhealthy; never let it reach the library
        try:
            _package_logger().debug("health check raised %r", e, exc_info=True)
        except BaseException:
            pass
        try:
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        except BaseException:  # a __str__ that raises too
            reason = type(e).__name__
    _give_reason(reason)
    return 0


def _give_reason(reason: str) -> None:
    """Hands the library the reason of the failure being returned (on this, the library's
    thread, during the check's call: that is where registrar_health_check_set_reason looks)."""
    try:
        # A NUL would end the C string early: written out instead, as the Go wrapper does.
        text = reason.replace("\x00", "\\x00").encode("utf-8", "replace")
        lib.registrar_health_check_set_reason(text)
    except BaseException:  # the failure stands without a reason
        pass


def _free_health_trampoline(user_data: Optional[int]) -> None:
    with _log_sinks_lock:
        _health_checks.pop(user_data or 0, None)


# Module-level: these must outlive every client that may call them.
_HEALTH_CHECK = _native.HEALTH_CHECK(_health_trampoline)
_FREE_HEALTH = _native.FREE_CALLBACK(_free_health_trampoline)
_NO_HEALTH_CHECK = _native.HEALTH_CHECK()
_LOG_CALLBACK = _native.LOG_CALLBACK(_log_trampoline)
_FREE_CALLBACK = _native.FREE_CALLBACK(_free_trampoline)
_NO_LOG = _native.LOG_CALLBACK()  # NULL function pointers
_NO_FREE = _native.FREE_CALLBACK()

#: The logger every client and discovery cache logs to unless told otherwise.
LOGGER_NAME = "registrar"
_null_handler_attached = False


def _package_logger() -> "logging.Logger":
    """``logging.getLogger("registrar")``, with the package's ``NullHandler`` attached once, so
    nothing is printed unless the application configures logging (the library convention).
    Imported here, on the first client or cache, not at ``import registrar``: a process that
    never creates one does not pay for ``logging``."""
    import logging

    global _null_handler_attached
    logger = logging.getLogger(LOGGER_NAME)
    if not _null_handler_attached:
        logger.addHandler(logging.NullHandler())
        _null_handler_attached = True
    return logger


class Client:
    """One registration with a Eureka registry, kept alive by a native background thread.

    Create it from a :class:`Config`, or from keyword settings (see :class:`Config`) on top of
    the ``REGISTRY_*`` environment (``from_env=True``, the default, as the seed did)::

        with registrar.Client(app_name="orders", port=8080) as client:   # registers
            client.set_status(registrar.Status.UP)
            client.wait_registered(timeout=10)
            serve_forever()
        # deregistered here (DELETE), also when serve_forever() raised

    Nothing is sent before :meth:`start` (or ``with``). Status and metadata changes return at
    once; the background thread carries them to the registry (:meth:`wait_registered` waits
    until the registry has them). :meth:`close` deregisters and frees the handle; it is
    idempotent. A finalizer frees a client that was never closed when it is garbage
    collected (with a ``ResourceWarning``), but not at interpreter exit: unless you close it
    or opt in with :func:`registrar.deregister_at_exit`, the instance stays listed until its
    lease expires, which keeps the host in charge of its own shutdown.

    Thread-safety: every method may be called from any number of threads at once, including
    :meth:`close` (the native handle is freed only after the last call in flight returns).
    Blocking calls release the GIL. The background thread never needs the GIL (unless you
    install a Python log function with :meth:`set_logger`, which it calls, rarely).

    fork(): a client belongs to the process that created it. In a child process its methods
    raise :class:`~registrar.ForkedError` (they never hang), and :meth:`close` and the
    finalizer only forget the handle, leaving the parent's registration alone. Create clients
    after forking, or in the parent only and never touch them in the children (pre-fork
    servers such as gunicorn with ``--preload``: see the package README).
    """

    def __init__(
        self,
        config: Optional[Config] = None,
        *,
        from_env: bool = True,
        on_event: "Optional[Callable[[Event], None]]" = None,
        **settings: SettingValue,
    ) -> None:
        if config is None:
            config = Config(from_env=from_env, **settings)
        elif settings:
            raise TypeError("give either a Config or keyword settings, not both")
        handle = _native.client_p()
        with config._lock:
            _check(lib.registrar_client_new(config._live(), ctypes.byref(handle)))
            exact = dict(config._exact_metadata)
        assert handle.value is not None  # written on success
        self._handle: Optional[int] = handle.value
        self._pid = os.getpid()
        self._lock = threading.Lock()
        _live_objects.add(self)
        self._in_flight = 0
        self._closed = False
        self._free_pending = False
        self._finalizer = weakref.finalize(self, _finalize, handle.value, self._pid)
        self._finalizer.atexit = False
        self._has_py_logger = False
        self._has_py_health_check = False
        self._has_event_listener = False
        status, self._instance_id = _native.read_string(
            lib.registrar_client_instance_id, handle.value
        )
        _check(status)
        status, self._app_name = _native.read_string(lib.registrar_client_app_name, handle.value)
        _check(status)
        for key, value in exact.items():
            self.set_metadata(key, value)
        # By default the library's messages go to logging.getLogger("registrar").
        _set_logger(self, lib.registrar_client_set_logger, _package_logger(), None)
        if on_event is not None:  # before any start: it sees every event
            self.on_event(on_event)

    # --- identity (immutable, read once) ---

    @property
    def instance_id(self) -> str:
        """The instance id, e.g. ``"host:orders:8080"``."""
        return self._instance_id

    @property
    def app_name(self) -> str:
        """The application name as registered (upper-case)."""
        return self._app_name

    # --- lifecycle ---

    def start(self) -> "Client":
        """Starts the background thread and returns at once: it registers (status STARTING
        unless set otherwise), retrying with backoff while the registry is unreachable, then
        heartbeats. Does nothing if already running. Returns the client."""
        with self._use() as h:
            _check(lib.registrar_client_start(h))
        return self

    def wait_registered(self, timeout: float = 30.0) -> None:
        """Blocks until the registry has accepted a registration carrying this client's latest
        status and metadata. Raises :class:`~registrar.TimeoutError` after ``timeout`` seconds,
        chained (``__cause__``) to the background thread's last error if there is one (e.g.
        :class:`~registrar.UnauthorizedError` for a wrong password). The wait is done in short
        slices, so Ctrl-C (KeyboardInterrupt) is handled promptly."""
        total_ms = _seconds_to_ms(timeout, "timeout")
        remaining = total_ms
        while True:
            slice_ms = min(remaining, 250)
            with self._use() as h:
                status = lib.registrar_client_wait_registered(h, slice_ms)
                message = _native.last_error_message() if status else ""
            remaining -= slice_ms
            if status == ErrorCode.TIMEOUT and remaining > 0:
                continue
            if status == 0:
                return
            if status == ErrorCode.TIMEOUT:
                message = re.sub(r"within \d+ ms", f"within {total_ms} ms", message, count=1)
                error = make_error(status, message)
                cause = self.last_error
                if cause is not None:
                    raise error from cause
                raise error
            raise make_error(status, message)

    def stop(self, timeout: Optional[float] = None) -> None:
        """Deregisters: marks the instance DOWN, deletes it from the registry and ends the
        background thread, within ``timeout`` seconds (``None``: REGISTRY_DRAIN_SECONDS +
        REGISTRY_TIMEOUT). With REGISTRY_DRAIN_SECONDS the instance is registered DOWN at
        once and kept registered, heartbeating, for the drain (callers' caches drop it), then
        deleted; a shorter ``timeout`` cuts the drain short, keeping time for the DELETE.
        Idempotent: calling it again gives the same outcome. The client can still be inspected
        afterwards; :meth:`close` frees it. Raises when the registry was not told (the instance
        then stays listed until its lease expires), the message naming what failed:
        :class:`~registrar.TimeoutError` if it did not answer in time,
        :class:`~registrar.RejectedError` with the server's answer to the DELETE,
        :class:`~registrar.TransportError` if it was unreachable."""
        ms = _seconds_to_ms(timeout, "timeout")
        with self._use() as h:
            _check(lib.registrar_client_stop(h, ms))

    def close(self, timeout: Optional[float] = None) -> None:
        """Stops the client (as :meth:`stop`) and frees the native handle. Idempotent: later
        calls, and calls after a failed stop, do nothing. In a fork() child it only forgets the
        handle (the registration belongs to the parent). Other methods then raise
        :class:`~registrar.ShutDownError`. Raises :class:`~registrar.TimeoutError` if the
        deregistration did not finish in time (the handle is freed all the same)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            forked = os.getpid() != self._pid
            handle = self._handle
        error: Optional[RegistrarError] = None
        if handle is not None and not forked:
            # stop may run alongside other calls; only free must not.
            with self._use(allow_closed=True) as h:
                status = lib.registrar_client_stop(h, _seconds_to_ms(timeout, "timeout"))
                if status:
                    error = make_error(status, _native.last_error_message())
        if self._has_py_logger and not forked:
            with self._use(allow_closed=True) as h:
                lib.registrar_client_set_logger(h, _NO_LOG, None, _NO_FREE, 0)
        # The health check needs no removal: stop ended its calls, and free releases it
        # (_free_health_trampoline drops the Python callable).
        self._has_py_health_check = False
        with self._lock:
            self._free_pending = True
            to_free = self._take_for_free()
        if to_free is not None:
            # After stop this only releases memory (in a fork() child: only forgets it).
            lib.registrar_client_free(to_free)
        if error is not None:
            raise error

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> "Client":
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.close()
        except RegistrarError:
            if exc_info[0] is None:
                raise
            # An exception is already propagating: do not mask it with the stop's timeout.

    # --- status and metadata ---

    def set_status(self, status: Union[Status, str, int]) -> None:
        """Sets the status the registry should show (UP when ready for traffic, DOWN,
        OUT_OF_SERVICE, STARTING; not UNKNOWN). Returns at once; the background thread
        re-registers. Before :meth:`start` it sets the status of the first registration."""
        if isinstance(status, str):
            try:
                status = Status[status.strip().upper()]
            except KeyError:
                raise ValueError(
                    f"unknown status {status!r}; use one of "
                    + ", ".join(s.name for s in Status if s is not Status.UNKNOWN)
                ) from None
        with self._use() as h:
            _check(lib.registrar_client_set_status(h, int(status)))

    def up(self) -> None:
        """Shorthand for ``set_status(Status.UP)``."""
        self.set_status(Status.UP)

    def down(self) -> None:
        """Shorthand for ``set_status(Status.DOWN)``."""
        self.set_status(Status.DOWN)

    def out_of_service(self) -> None:
        """Shorthand for ``set_status(Status.OUT_OF_SERVICE)``."""
        self.set_status(Status.OUT_OF_SERVICE)

    def set_metadata(self, key: str, value: Optional[str]) -> None:
        """Sets metadata ``key`` to ``value``, or removes it when ``value`` is None. Reaches
        the registry by re-registration, without waiting. Keys: letters, digits, ``_``, ``-``,
        ``.``, starting with a letter or ``_`` (:class:`~registrar.InvalidArgumentError`)."""
        k = _encode(key, "a metadata key")
        v = None if value is None else _encode(str(value), f"metadata {key!r}")
        with self._use() as h:
            _check(lib.registrar_client_set_metadata(h, k, v))

    def update_metadata(self, values: Mapping[str, Optional[str]]) -> None:
        """Sets (or, for None values, removes) several metadata entries."""
        for key, value in values.items():
            self.set_metadata(key, value)

    def get_metadata(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value of metadata ``key`` as this process holds it, or ``default``."""
        k = _encode(key, "a metadata key")
        with self._use() as h:
            status, value = _native.read_string(lib.registrar_client_get_metadata, h, k)
            message = _native.last_error_message() if status else ""
        if status == ErrorCode.NOT_FOUND:
            return default
        if status:
            raise make_error(status, message)
        return value

    # --- state ---

    def info(self) -> Info:
        """A snapshot: state, status, last error code and counters."""
        raw = _native.ClientInfo()
        with self._use() as h:
            _check(lib.registrar_client_get_info(h, ctypes.byref(raw)))
        return Info(
            state=State(raw.state),
            status=Status(raw.status),
            last_error=ErrorCode(raw.last_error),
            registrations=raw.registrations,
            heartbeats=raw.heartbeats,
            failed_requests=raw.failed_requests,
        )

    @property
    def state(self) -> State:
        """Shorthand for ``info().state``."""
        return self.info().state

    @property
    def status(self) -> Status:
        """Shorthand for ``info().status``."""
        return self.info().status

    @property
    def last_error(self) -> Optional[RegistrarError]:
        """The background thread's most recent failure as an exception instance (not raised),
        or None if the last request succeeded."""
        for _ in range(3):
            code = self.info().last_error
            if code == ErrorCode.OK:
                return None
            with self._use() as h:
                status, message = _native.read_string(lib.registrar_client_last_error, h)
                failure = _native.last_error_message() if status else ""
            if status:
                raise make_error(status, failure)
            if message and self.info().last_error == code:
                return make_error(code, message)
        return None

    # --- logging ---

    def set_logger(
        self,
        logger: "Union[logging.Logger, LogFunction, None]",
        level: LogLevel = LogLevel.WARN,
    ) -> None:
        """Sends the library's log messages of ``level`` or more severe to a
        :class:`logging.Logger` or a function ``f(level: LogLevel, message: str)``; None
        silences the client. Without this call every client logs to
        ``logging.getLogger("registrar")`` (which has a ``NullHandler``: nothing shows unless
        the application configures logging) at INFO, or DEBUG if that logger is enabled for
        DEBUG when the client is created. Each distinct failure is logged once, not once per
        retry, and so is the recovery. The function is called on the client's background
        thread (which then takes the GIL for the call): keep it quick. It is removed on
        :meth:`close` and at interpreter exit (before Python's teardown), never called after
        :meth:`stop` returns."""
        _set_logger(self, lib.registrar_client_set_logger, logger, level)

    def set_health_check(self, check: "Optional[Callable[[], Any]]") -> None:
        """Lets the service's health decide the registry status: once started, ``check()`` is
        called every REGISTRY_HEALTH_INTERVAL seconds (default 10) on a thread of the
        library's; a truthy result means healthy, a falsy one or an exception (logged at DEBUG
        to the "registrar" logger, with its traceback) unhealthy. The failure's reason, which
        registrar logs and reports (``STATUS_CHANGED`` event reason, ``snapshot()["health"]
        ["last_failure"]``, as "the health check failed: <reason>"), is ``"Type: message"`` of
        the exception, or ``"it returned <repr>"`` of the falsy result: raise to say why.
        After REGISTRY_HEALTH_THRESHOLD (default 3)
        failures in a row the instance is registered DOWN; after as many passes, with the
        status set by :meth:`set_status` again. Each call is bounded by REGISTRY_TIMEOUT: a
        call that takes longer counts as a failure and no other starts until it returns
        (never two at once). It replaces REGISTRY_HEALTH_URL while set; None removes it. No
        call starts after :meth:`stop` returns; it is removed on :meth:`close` and at
        interpreter exit. Heartbeats never wait for it."""
        if check is None:
            with self._use() as h:
                _check(lib.registrar_client_set_health_check(h, _NO_HEALTH_CHECK, None, _NO_FREE))
            self._has_py_health_check = False
            return
        if not callable(check):
            raise TypeError("the health check must be callable (or None)")
        key = next(_log_ids)
        with _log_sinks_lock:
            _health_checks[key] = (check,)
        try:
            with self._use() as h:
                _check(lib.registrar_client_set_health_check(h, _HEALTH_CHECK, key, _FREE_HEALTH))
        except BaseException:
            with _log_sinks_lock:
                _health_checks.pop(key, None)
            raise
        self._has_py_health_check = True
        _clients_with_loggers.add(self)

    # --- events ---

    def on_event(self, listener: "Optional[Callable[[Event], None]]") -> None:
        """Calls ``listener(event)`` (a :class:`~registrar.Event`) for every state change of the
        client: ``REGISTERED``, ``REGISTRATION_LOST`` (with the reason), ``REREGISTERED``,
        ``STATUS_CHANGED`` (with the cause: host, health check, stop's drain) and, last,
        ``STOPPED``. Set it before :meth:`start` (or pass ``on_event=`` to the constructor) to see
        every event. One listener per client:
        this replaces the previous one; None removes it. It is called on the library's
        background thread (taking the GIL for the call), in order, never after :meth:`stop`
        returns: keep it quick. It may call the client's methods; :meth:`stop` called from it
        only requests the stop (``STOPPED`` follows). An exception it raises is logged to
        ``logging.getLogger("registrar")`` and changes nothing else."""
        from .events import set_event_listener

        set_event_listener(self, lib.registrar_client_set_event_listener, listener)

    def snapshot(self) -> "Dict[str, Any]":
        """The client's state as a dict, for debugging (``registrar_client_snapshot_json``):
        phase, status, counters, last error (code and message, without credentials), the
        server in use and times in ms since the Unix epoch. Fields may be added."""
        return _snapshot(self, lib.registrar_client_snapshot_json)

    # --- internals ---

    @contextmanager
    def _use(self, allow_closed: bool = False) -> Iterator[int]:
        """Borrows the native handle for one call. The handle is freed only once no call is
        in flight, because registrar_client_free must not race other calls on it."""
        with self._lock:
            if (self._closed and not allow_closed) or self._handle is None:
                raise ShutDownError("the client has been closed")
            self._in_flight += 1
            handle = self._handle
        try:
            yield handle
        finally:
            with self._lock:
                self._in_flight -= 1
                to_free = self._take_for_free()
            if to_free is not None:
                lib.registrar_client_free(to_free)

    def _take_for_free(self) -> Optional[int]:
        # With self._lock held: hands out the handle once, when it may be freed.
        if self._free_pending and self._in_flight == 0 and self._handle is not None:
            handle, self._handle = self._handle, None
            self._finalizer.detach()
            return handle
        return None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<registrar.Client {self._app_name}/{self._instance_id} ({state})>"


def _finalize(handle: int, pid: int) -> None:
    """Safety net for a client that was never closed and is garbage collected."""
    if os.getpid() == pid:
        warnings.warn(
            "registrar.Client was never closed; stopping and freeing it now "
            "(close it, or use 'with')",
            ResourceWarning,
            stacklevel=2,
        )
    # In the owner this stops (bounded by REGISTRY_TIMEOUT) and frees; in a fork() child it
    # only releases memory.
    lib.registrar_client_free(handle)


#: Clients and discovery caches with a Python logger installed (removed at exit, below).
_clients_with_loggers: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _set_logger(
    owner: Any,
    c_set_logger: Any,
    logger: "Union[logging.Logger, LogFunction, None]",
    level: "Optional[int]",
) -> None:
    """Installs (or with None removes) a Python logger on a Client or a Discovery through
    the library's set_logger function; one implementation for both handle types. ``level``
    None (the default logger): INFO, or DEBUG if the Logger is enabled for DEBUG now."""
    if logger is None:
        with owner._use() as h:
            _check(c_set_logger(h, _NO_LOG, None, _NO_FREE, int(level or 0)))
        owner._has_py_logger = False
        return
    logging_module = sys.modules.get("logging")  # a Logger implies logging is imported
    if logging_module is not None and isinstance(logger, logging_module.Logger):
        target = logger
        if level is None:
            level = LogLevel.DEBUG if target.isEnabledFor(10) else LogLevel.INFO

        def function(lvl: LogLevel, message: str) -> None:
            target.log(_PY_LEVELS.get(lvl, 40), "%s", message)

    else:
        function = logger  # type: ignore[assignment]
    if level is None:
        level = LogLevel.INFO
    key = next(_log_ids)
    with _log_sinks_lock:
        _log_sinks[key] = (function,)
    try:
        with owner._use() as h:
            _check(c_set_logger(h, _LOG_CALLBACK, key, _FREE_CALLBACK, int(LogLevel(level))))
    except BaseException:
        with _log_sinks_lock:
            _log_sinks.pop(key, None)
        raise
    owner._has_py_logger = True
    _clients_with_loggers.add(owner)
# Every live Client, Config and Discovery (see _after_fork_in_child).
_live_objects: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A fork() child has only the forking thread: locks held by other threads of the parent
    at the moment of the fork would never be released, and their calls are not in flight
    here. Give every client and config fresh locks so the child can always close them."""
    global _log_sinks_lock
    _log_sinks_lock = threading.Lock()
    for obj in list(_live_objects):
        obj._lock = threading.Lock()
        if hasattr(obj, "_in_flight"):
            obj._in_flight = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _snapshot(owner: Any, c_snapshot_json: Any) -> "Dict[str, Any]":
    """A handle's JSON snapshot as a dict (json imported on first use, not at import)."""
    import json

    with owner._use() as h:
        status, text = _native.read_string(c_snapshot_json, h)
        message = _native.last_error_message() if status else ""
    if status:
        raise make_error(status, message)
    result: Dict[str, Any] = json.loads(text)
    return result


def metrics() -> str:
    """The metrics of every live client and discovery cache of this process, and of the process,
    in the Prometheus text exposition format (``registrar_metrics_text``): serve it as
    ``text/plain; version=0.0.4`` from your ``/metrics`` endpoint."""
    status, text = _native.read_string(lib.registrar_metrics_text)
    _check(status)
    return text


@atexit.register
def _remove_python_loggers() -> None:
    """Before Python tears itself down, make sure no background thread calls back into it."""
    for client in list(_clients_with_loggers):
        if client._has_py_logger and not client._closed and os.getpid() == client._pid:
            try:
                client.set_logger(None)
            except RegistrarError:
                pass
        if getattr(client, "_has_py_health_check", False) and not client._closed \
                and os.getpid() == client._pid:
            try:
                client.set_health_check(None)
            except RegistrarError:
                pass
