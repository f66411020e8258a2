"""Discovery: find the instances of other services from a local cache of the registry.

A :class:`Discovery` owns a native cache with its own background thread: one full fetch of the
registry (``GET apps``), then every ``fetch_interval`` the changes (``GET apps/delta``), checked
against the server's hash code (a full fetch on any mismatch or error). On fetch errors the
last good registry is kept. Queries are answered from memory, never from the network, and
return plain objects (:class:`Instance`) that stay valid whatever happens to the cache.

This module is imported only when used (``registrar.Discovery``), so a process that only
registers pays nothing for it.
"""

from __future__ import annotations

import ctypes
import enum
import os
import sys
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import _native
from ._client import (
    _NO_FREE,
    _NO_LOG,
    Config,
    LogLevel,
    Status,
    _check,
    _encode,
    _live_objects,
    _package_logger,
    _seconds_to_ms,
    _set_logger,
    _snapshot,
)
from ._native import lib
from .errors import ErrorCode, NotFoundError, RegistrarError, ShutDownError, make_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._client import SettingValue
    from .events import Event

__all__ = ["Discovery", "DiscoveryInfo", "DiscoveryState", "Instance"]

# registrar.h: lookups, choices, flags
_LOOKUP_APP, _LOOKUP_VIP, _LOOKUP_SECURE_VIP = 0, 1, 2
_CHOICE_ROUND_ROBIN, _CHOICE_RANDOM = 0, 1
_QUERY_ALL_STATUSES = 1
_URL_SECURE, _URL_USE_IP = 1, 2


class DiscoveryState(enum.IntEnum):
    """``registrar_discovery_state``."""

    NOT_STARTED = 0
    RUNNING = 1
    STOPPED = 2


@dataclass(frozen=True)
class Instance:
    """One instance as the registry lists it (a copy: it never changes)."""

    instance_id: str
    #: Upper-case.
    app: str
    host_name: str
    ip_addr: str
    port: int
    secure_port: int
    port_enabled: bool
    secure_port_enabled: bool
    #: The status the registry serves (with any operator override applied).
    status: Status
    #: The operator override, or None when there is none.
    overridden_status: Optional[Status]
    #: As registered: possibly a comma-separated list.
    vip_address: str
    secure_vip_address: str
    home_page_url: str
    status_page_url: str
    health_check_url: str
    metadata: Dict[str, str] = field(default_factory=dict)
    #: Epoch milliseconds; 0 when the registry did not say.
    last_updated_timestamp: int = 0
    last_dirty_timestamp: int = 0

    def url(self, secure: bool = False, use_ip: bool = False) -> str:
        """The base URL to call: ``http://host:port``, or ``https://host:securePort`` when
        ``secure`` and the secure port is enabled; the IP address in place of the host name
        with ``use_ip`` (or when there is no host name). Same rule as the C library's."""
        host = self.ip_addr if use_ip or not self.host_name else self.host_name
        scheme, port = ("https", self.secure_port) if secure and self.secure_port_enabled else ("http", self.port)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class DiscoveryInfo:
    """A snapshot of a discovery cache (``registrar_discovery_info``)."""

    state: DiscoveryState
    #: True once a registry has been fetched (queries have data).
    ready: bool
    #: Bumped on every change of the cached registry; 0 before the first fetch.
    version: int
    #: Applications and instances (every status) in the cache.
    apps: int
    instances: int
    #: Seconds since the server last confirmed the cache; None before the first fetch. Grows
    #: while the server is unreachable (the last good registry is kept).
    age: Optional[float]
    #: The outcome of the last refresh: ``ErrorCode.OK`` or why it failed.
    last_error: ErrorCode
    full_fetches: int
    delta_fetches: int
    #: Deltas whose recomputed hash differed from the server's (each followed by a full fetch).
    hash_mismatches: int
    failed_refreshes: int


def _text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _instance(raw: _native.Instance) -> Instance:
    metadata = {
        _text(raw.metadata[i].key): _text(raw.metadata[i].value) for i in range(raw.metadata_len)
    }
    overridden = Status(raw.overridden_status) if raw.overridden_status else None
    return Instance(
        instance_id=_text(raw.instance_id),
        app=_text(raw.app),
        host_name=_text(raw.host_name),
        ip_addr=_text(raw.ip_addr),
        port=raw.port,
        secure_port=raw.secure_port,
        port_enabled=bool(raw.port_enabled),
        secure_port_enabled=bool(raw.secure_port_enabled),
        status=Status(raw.status),
        overridden_status=overridden,
        vip_address=_text(raw.vip_address),
        secure_vip_address=_text(raw.secure_vip_address),
        home_page_url=_text(raw.home_page_url),
        status_page_url=_text(raw.status_page_url),
        health_check_url=_text(raw.health_check_url),
        metadata=metadata,
        last_updated_timestamp=raw.last_updated_timestamp,
        last_dirty_timestamp=raw.last_dirty_timestamp,
    )


def _read_list(list_handle: int) -> List[Instance]:
    """Copies a registrar_instance_list into Python objects and frees it."""
    try:
        count = lib.registrar_instance_list_len(list_handle)
        return [_instance(lib.registrar_instance_list_get(list_handle, i).contents) for i in range(count)]
    finally:
        lib.registrar_instance_list_free(list_handle)


def _lookup(app: Optional[str], vip: Optional[str], secure_vip: Optional[str]) -> Tuple[int, bytes]:
    given = [(kind, name) for kind, name in ((_LOOKUP_APP, app), (_LOOKUP_VIP, vip), (_LOOKUP_SECURE_VIP, secure_vip)) if name is not None]
    if len(given) != 1:
        raise TypeError("give exactly one of app, vip or secure_vip")
    kind, name = given[0]
    return kind, _encode(name, "a name")


ChangeCallback = Callable[[int], None]


class Discovery:
    """A registry cache kept fresh by a native background thread; queries from memory.

    Settings as for :class:`~registrar.Config`; only ``url`` (with ``user``/``password``, and
    ``ca_file``/``client_cert``/``client_key`` for https), ``timeout`` and ``fetch_interval``
    (seconds, default 30) are used::

        with registrar.Discovery(url="http://127.0.0.1:8761/eureka/") as discovery:
            discovery.wait_ready(timeout=10)
            for instance in discovery.instances("orders"):       # UP instances, by id
                print(instance.instance_id, instance.url())
            base = discovery.choose_url("orders")                # round robin over UP

    Nothing is fetched before :meth:`start` (or ``with``). Thread-safety, fork() and closing
    work as for :class:`~registrar.Client`: any thread may call any method at once,
    :meth:`close` is idempotent, and in a fork() child the methods raise
    :class:`~registrar.ForkedError`.
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
        handle = _native.discovery_p()
        with config._lock:
            _check(lib.registrar_discovery_new(config._live(), ctypes.byref(handle)))
        assert handle.value is not None
        self._handle: Optional[int] = handle.value
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closed = False
        self._free_pending = False
        self._callbacks: List[ChangeCallback] = []
        self._watcher: Optional[threading.Thread] = None
        self._has_py_logger = False
        self._has_event_listener = False
        self._finalizer = weakref.finalize(self, lib.registrar_discovery_free, handle.value)
        self._finalizer.atexit = False
        _live_objects.add(self)
        # By default the cache's messages go to logging.getLogger("registrar").
        _set_logger(self, lib.registrar_discovery_set_logger, _package_logger(), None)
        if on_event is not None:  # before any start: it sees every event
            self.on_event(on_event)

    # --- lifecycle ---

    def start(self) -> "Discovery":
        """Starts the background thread (the first full fetch begins); returns at once."""
        with self._use() as h:
            _check(lib.registrar_discovery_start(h))
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Blocks until the first fetch has succeeded; :class:`~registrar.TimeoutError` (with
        the last error as ``__cause__``) after ``timeout`` seconds."""
        self._wait(lib.registrar_discovery_wait_ready, timeout)

    def refresh(self, timeout: float = 30.0) -> None:
        """Refreshes now and waits for the outcome (raises the refresh's own error; the last
        good registry is kept). Use it to see a change you know about at once."""
        ms = _seconds_to_ms(timeout, "timeout")
        with self._use() as h:
            status = lib.registrar_discovery_refresh(h, ms)
            message = _native.last_error_message() if status else ""
        if status:
            raise make_error(status, message)

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stops the background thread (bounded; None: REGISTRY_TIMEOUT). Idempotent. Queries
        then raise :class:`~registrar.ShutDownError`."""
        with self._use() as h:
            _check(lib.registrar_discovery_stop(h, _seconds_to_ms(timeout, "timeout")))

    def close(self, timeout: Optional[float] = None) -> None:
        """Stops and frees the native cache. Idempotent; in a fork() child it only forgets it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            forked = os.getpid() != self._pid
            handle = self._handle
        error: Optional[RegistrarError] = None
        if handle is not None and not forked:
            with self._use(allow_closed=True) as h:
                status = lib.registrar_discovery_stop(h, _seconds_to_ms(timeout, "timeout"))
                if status:
                    error = make_error(status, _native.last_error_message())
        if self._has_py_logger and not forked:
            with self._use(allow_closed=True) as h:
                lib.registrar_discovery_set_logger(h, _NO_LOG, None, _NO_FREE, 0)
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread() and not forked:
            watcher.join(timeout=5)
        with self._lock:
            self._free_pending = True
            to_free = self._take_for_free()
        if to_free is not None:
            lib.registrar_discovery_free(to_free)
        if error is not None:
            raise error

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Discovery":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.close()
        except RegistrarError:
            if exc_info[0] is None:
                raise

    # --- state ---

    def info(self) -> DiscoveryInfo:
        raw = _native.DiscoveryInfo()
        with self._use() as h:
            _check(lib.registrar_discovery_get_info(h, ctypes.byref(raw)))
        return DiscoveryInfo(
            state=DiscoveryState(raw.state),
            ready=bool(raw.ready),
            version=raw.version,
            apps=raw.apps,
            instances=raw.instances,
            age=None if raw.age_ms < 0 else raw.age_ms / 1000.0,
            last_error=ErrorCode(raw.last_error),
            full_fetches=raw.full_fetches,
            delta_fetches=raw.delta_fetches,
            hash_mismatches=raw.hash_mismatches,
            failed_refreshes=raw.failed_refreshes,
        )

    @property
    def version(self) -> int:
        """The version of the cached registry (bumped on every change; 0 before the first fetch)."""
        return self.info().version

    @property
    def last_error(self) -> Optional[RegistrarError]:
        """Why the last refresh failed (an exception instance, not raised), or None."""
        code = self.info().last_error
        if code == ErrorCode.OK:
            return None
        with self._use() as h:
            status, message = _native.read_string(lib.registrar_discovery_last_error, h)
        return make_error(code, message) if status == 0 and message else None

    # --- queries (from memory) ---

    def instances(
        self,
        app: Optional[str] = None,
        *,
        vip: Optional[str] = None,
        secure_vip: Optional[str] = None,
        all_statuses: bool = False,
    ) -> List[Instance]:
        """The instances of an application (case-insensitive), a VIP or a secure VIP (exact),
        sorted by instance id; UP only unless ``all_statuses``. Unknown name, or nothing
        fetched yet: ``[]`` (:meth:`info` tells which)."""
        kind, name = _lookup(app, vip, secure_vip)
        out = _native.list_p()
        with self._use() as h:
            flags = _QUERY_ALL_STATUSES if all_statuses else 0
            _check(lib.registrar_discovery_instances(h, kind, name, flags, ctypes.byref(out)))
        return _read_list(out.value) if out.value else []

    def all(self, *, all_statuses: bool = False) -> List[Instance]:
        """Every cached instance (UP only unless ``all_statuses``), sorted by instance id."""
        out = _native.list_p()
        with self._use() as h:
            flags = _QUERY_ALL_STATUSES if all_statuses else 0
            _check(lib.registrar_discovery_all(h, flags, ctypes.byref(out)))
        return _read_list(out.value) if out.value else []

    def instance(self, instance_id: str) -> Optional[Instance]:
        """The instance with this id, whatever its status, or None."""
        key = _encode(instance_id, "an instance id")
        out = _native.list_p()
        with self._use() as h:
            status = lib.registrar_discovery_instance(h, key, ctypes.byref(out))
            message = _native.last_error_message() if status else ""
        if status == ErrorCode.NOT_FOUND:
            return None
        if status:
            raise make_error(status, message)
        found = _read_list(out.value) if out.value else []
        return found[0] if found else None

    def choose(
        self,
        app: Optional[str] = None,
        *,
        vip: Optional[str] = None,
        secure_vip: Optional[str] = None,
        random: bool = False,
    ) -> Instance:
        """One UP instance: each in turn (round robin, evenly, across refreshes), or at random.
        Raises :class:`~registrar.NotFoundError` when there is none (the message says why)."""
        kind, name = _lookup(app, vip, secure_vip)
        out = _native.list_p()
        choice = _CHOICE_RANDOM if random else _CHOICE_ROUND_ROBIN
        with self._use() as h:
            _check(lib.registrar_discovery_choose(h, kind, name, choice, ctypes.byref(out)))
        assert out.value is not None  # written on success
        return _read_list(out.value)[0]

    def choose_url(
        self,
        app: Optional[str] = None,
        *,
        vip: Optional[str] = None,
        secure_vip: Optional[str] = None,
        random: bool = False,
        secure: bool = False,
        use_ip: bool = False,
    ) -> str:
        """The base URL of one UP instance (as :meth:`choose` and :meth:`Instance.url`)."""
        kind, name = _lookup(app, vip, secure_vip)
        choice = _CHOICE_RANDOM if random else _CHOICE_ROUND_ROBIN
        flags = (_URL_SECURE if secure else 0) | (_URL_USE_IP if use_ip else 0)
        buf = ctypes.create_string_buffer(1024)
        out_len = ctypes.c_size_t(0)
        with self._use() as h:
            _check(
                lib.registrar_discovery_choose_url(
                    h, kind, name, choice, flags, buf, len(buf), ctypes.byref(out_len)
                )
            )
        if out_len.value >= len(buf):  # pragma: no cover - URLs of over 1 KiB
            raise RegistrarError(f"the chosen URL is longer than {len(buf) - 1} bytes")
        return buf.value.decode("utf-8", "replace")

    # --- logging ---

    def set_logger(self, logger: Any, level: LogLevel = LogLevel.WARN) -> None:
        """Sends the cache's log messages of ``level`` or more severe to a
        :class:`logging.Logger` or a function ``f(level: LogLevel, message: str)``; None
        removes it. Exactly as :meth:`Client.set_logger <registrar.Client.set_logger>`: called
        on the discovery's background thread (keep it quick), removed on :meth:`close` and at
        interpreter exit. Messages: the first fetch (INFO), a failing refresh (WARN, once per
        distinct problem) and the recovery (INFO), a hash mismatch (WARN), each change (DEBUG).
        Without this call the cache logs to ``logging.getLogger("registrar")`` (silent unless
        the application configures logging); None silences it."""
        _set_logger(self, lib.registrar_discovery_set_logger, logger, level)

    def snapshot(self) -> "Dict[str, object]":
        """The cache's state as a dict, for debugging (``registrar_discovery_snapshot_json``):
        phase, version, size, counters, last error (code and message, without credentials),
        the server in use and times in ms since the Unix epoch. Fields may be added."""
        return _snapshot(self, lib.registrar_discovery_snapshot_json)

    # --- change notification ---

    def wait_change(self, since_version: int = 0, timeout: float = 30.0) -> int:
        """Blocks until the registry's version is greater than ``since_version`` and returns
        it; :class:`~registrar.TimeoutError` if nothing changed within ``timeout`` seconds."""
        return self._wait_change(since_version, _seconds_to_ms(timeout, "timeout"))

    def on_change(self, callback: ChangeCallback) -> None:
        """Calls ``callback(version)`` after every change of the cached registry, on a Python
        thread of this object's own (started on first use; it waits in the library without
        holding the GIL). Exceptions from the callback are reported like uncaught ones and do
        not stop later calls. :meth:`close` waits (up to 5 s) for a call in progress; none
        starts after it."""
        with self._lock:
            self._callbacks.append(callback)
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=_watch, args=(weakref.ref(self),), name="registrar-discovery-watch", daemon=True
                )
                self._watcher.start()

    def on_event(self, listener: "Optional[Callable[[Event], None]]") -> None:
        """Calls ``listener(event)`` (a :class:`~registrar.Event`) for every state change of the
        cache: ``DISCOVERY_READY`` (first fetch), ``DISCOVERY_CHANGED`` (a new version),
        ``DISCOVERY_FETCH_FAILING`` (once per failure streak, with the error) and
        ``DISCOVERY_RECOVERED``. Set it before :meth:`start` (or pass ``on_event=`` to the
        constructor, as ``with Discovery(..., on_event=f)`` needs) to see every event; one listener per
        cache (this replaces the previous one; None removes it). Unlike :meth:`on_change` it is
        called on the library's background thread (taking the GIL for the call), in order,
        never after :meth:`stop` returns: keep it quick. An exception it raises is logged to
        ``logging.getLogger("registrar")``."""
        from .events import set_event_listener

        set_event_listener(self, lib.registrar_discovery_set_event_listener, listener)

    # --- internals ---

    def _wait(self, function: Callable[[int, int], int], timeout: float) -> None:
        ms = _seconds_to_ms(timeout, "timeout")
        with self._use() as h:
            status = function(h, ms)
            message = _native.last_error_message() if status else ""
        if status == ErrorCode.TIMEOUT:
            error = make_error(status, message)
            cause = self.last_error
            if cause is not None:
                raise error from cause
            raise error
        if status:
            raise make_error(status, message)

    def _wait_change(self, since: int, ms: int) -> int:
        version = ctypes.c_uint64(0)
        with self._use() as h:
            status = lib.registrar_discovery_wait_change(h, since, ms, ctypes.byref(version))
            message = _native.last_error_message() if status else ""
        if status:
            raise make_error(status, message)
        return version.value

    @contextmanager
    def _use(self, allow_closed: bool = False) -> Iterator[int]:
        with self._lock:
            if (self._closed and not allow_closed) or self._handle is None:
                raise ShutDownError("the discovery cache has been closed")
            self._in_flight += 1
            handle = self._handle
        try:
            yield handle
        finally:
            with self._lock:
                self._in_flight -= 1
                to_free = self._take_for_free()
            if to_free is not None:
                lib.registrar_discovery_free(to_free)

    def _take_for_free(self) -> Optional[int]:
        if self._free_pending and self._in_flight == 0 and self._handle is not None:
            handle, self._handle = self._handle, None
            self._finalizer.detach()
            return handle
        return None

    def __repr__(self) -> str:
        return f"<registrar.Discovery ({'closed' if self._closed else 'open'})>"


def _watch(ref: "weakref.ReferenceType[Discovery]") -> None:
    """The on_change thread: waits for changes in short slices, so it notices close()."""
    since = 0
    while True:
        discovery = ref()
        if discovery is None or discovery._closed or os.getpid() != discovery._pid:
            return
        try:
            version = discovery._wait_change(since, 250)
        except RegistrarError as e:
            if e.code == ErrorCode.TIMEOUT:
                continue
            return  # stopped, closed
        since = version
        with discovery._lock:
            callbacks = list(discovery._callbacks)
        del discovery  # do not keep it alive while calling out
        for callback in callbacks:
            try:
                callback(version)
            except Exception:
                sys.excepthook(*sys.exc_info())
