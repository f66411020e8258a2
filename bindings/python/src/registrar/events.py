"""Events: the state changes of a :class:`~registrar.Client` or a :class:`~registrar.Discovery`,
delivered to one listener per handle (:meth:`Client.on_event`, :meth:`Discovery.on_event`).

A client reports ``REGISTERED``, ``REGISTRATION_LOST`` (with the reason), ``REREGISTERED``,
``STATUS_CHANGED`` (with the cause: the host, the health check, or stop's drain) and, last,
``STOPPED``; a discovery cache ``DISCOVERY_READY``, ``DISCOVERY_CHANGED``,
``DISCOVERY_FETCH_FAILING`` (once per failure streak, not per retry) and
``DISCOVERY_RECOVERED``. The listener is called on the library's background thread, in order,
never after ``stop``/``close`` returns. An exception it raises is logged to
``logging.getLogger("registrar")`` and never reaches that thread.

Imported on first use (``registrar.Event`` or ``on_event``), so a process that does not listen
pays nothing for it.
"""

from __future__ import annotations

import atexit
import enum
import itertools
import os
import threading
import weakref
from collections import namedtuple

from . import _native
from ._client import Status, _check, _package_logger
from .errors import ErrorCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional

__all__ = ["Event", "EventCause", "EventKind"]


class EventKind(enum.IntEnum):
    """``registrar_event_kind``: what happened."""

    #: Client: the registry accepted the first registration.
    REGISTERED = 1
    #: Client: the registry no longer holds the instance (a heartbeat got 404, or nothing was
    #: accepted for the lease duration); the client keeps re-registering.
    REGISTRATION_LOST = 2
    #: Client: the registry holds the instance again after a loss.
    REREGISTERED = 3
    #: Client: the registry accepted a new status; ``cause`` says who changed it.
    STATUS_CHANGED = 4
    #: Client: stop finished; the last event. ``error`` is set if the registry was not told.
    STOPPED = 5
    #: Discovery: the first fetch succeeded.
    DISCOVERY_READY = 6
    #: Discovery: a refresh changed the cached registry (``version`` is the new one).
    DISCOVERY_CHANGED = 7
    #: Discovery: refreshes fail (once per failure streak); the last good registry is kept.
    DISCOVERY_FETCH_FAILING = 8
    #: Discovery: a refresh succeeded after a failure streak.
    DISCOVERY_RECOVERED = 9


class EventCause(enum.IntEnum):
    """``registrar_event_cause``: why, where an event has several possible causes."""

    NONE = 0
    #: A status change made by the host (:meth:`Client.set_status`).
    HOST = 1
    #: A status change made by the health check.
    HEALTH_CHECK = 2
    #: Registration lost: a heartbeat got 404 (the registry restarted, evicted or deleted it).
    NOT_FOUND = 3
    #: Registration lost: no registration or heartbeat accepted for the lease duration.
    LEASE_EXPIRED = 4
    #: A status change made by stop: DOWN for the drain before removal.
    STOP = 5


class Event(namedtuple("Event", ["kind", "status", "cause", "error", "reason", "version"])):
    """One event (a copy of ``registrar_event``; immutable).

    - ``kind``: :class:`EventKind`
    - ``status``: :class:`~registrar.Status` the registry holds (client events; ``UNKNOWN``
      for discovery events)
    - ``cause``: :class:`EventCause`
    - ``error``: :class:`~registrar.ErrorCode` of the failure behind it (``OK`` if none)
    - ``reason``: the failure's message or what happened, or None
    - ``version``: discovery events: the registry version after the event (0 otherwise)
    """

    __slots__ = ()



def _enum(cls: "Any", value: int) -> "Any":
    try:
        return cls(value)
    except ValueError:  # a newer library: pass the number through
        return value


def _convert(raw: "_native.EventStruct") -> Event:
    return Event(
        kind=_enum(EventKind, raw.kind),
        status=_enum(Status, raw.status),
        cause=_enum(EventCause, raw.cause),
        error=_enum(ErrorCode, raw.error),
        reason=None if raw.reason is None else raw.reason.decode("utf-8", "replace"),
        version=raw.version,
    )


# Python listeners by the user_data id handed to the library; removed by the free callback.
_sinks: "Dict[int, Callable[[Event], None]]" = {}
_sinks_lock = threading.Lock()
_ids = itertools.count(1)


def _trampoline(user_data: "Optional[int]", event: "Any") -> None:
    listener = _sinks.get(user_data or 0)
    if listener is None or not event:
        return
    try:
        listener(_convert(event.contents))
    except BaseException:  # never let an exception reach the library's thread
        try:
            _package_logger().exception("registrar: the event listener %r raised", listener)
        except BaseException:
            pass


def _free(user_data: "Optional[int]") -> None:
    with _sinks_lock:
        _sinks.pop(user_data or 0, None)


# Module-level: these must outlive every handle that may call them.
_EVENT_CALLBACK = _native.EVENT_CALLBACK(_trampoline)
_FREE_CALLBACK = _native.FREE_CALLBACK(_free)
_NO_EVENTS = _native.EVENT_CALLBACK()  # NULL function pointers
_NO_FREE = _native.FREE_CALLBACK()

#: Handles with a Python listener installed (removed at exit, below).
_listening: "weakref.WeakSet[Any]" = weakref.WeakSet()


def set_event_listener(owner: "Any", c_set: "Any", listener: "Optional[Callable[[Event], None]]") -> None:
    """Installs (or with None removes) ``listener`` on a Client or a Discovery through the
    library's set_event_listener function; one implementation for both handle types."""
    if listener is None:
        with owner._use() as h:
            _check(c_set(h, _NO_EVENTS, None, _NO_FREE))
        owner._has_event_listener = False
        return
    if not callable(listener):
        raise TypeError(f"the event listener must be callable, not {type(listener).__name__}")
    key = next(_ids)
    with _sinks_lock:
        _sinks[key] = listener
    try:
        with owner._use() as h:
            _check(c_set(h, _EVENT_CALLBACK, key, _FREE_CALLBACK))
    except BaseException:
        with _sinks_lock:
            _sinks.pop(key, None)
        raise
    owner._has_event_listener = True
    _listening.add(owner)


def _after_fork_in_child() -> None:
    global _sinks_lock
    _sinks_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _remove_listeners() -> None:
    """Before Python tears itself down, make sure no background thread calls back into it."""
    for owner in list(_listening):
        if getattr(owner, "_has_event_listener", False) and not owner._closed and os.getpid() == owner._pid:
            try:
                owner.on_event(None)
            except Exception:
                pass
