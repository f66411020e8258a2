"""Opt-in deregistration at interpreter exit and on signals, on the host's side.

The library itself installs no handler and registers no exit hook: by default the host stays
in charge of its own shutdown, and an instance that is never closed stays listed until its
lease expires. Call :func:`deregister_at_exit` to have a client closed (DELETE):

* at normal interpreter exit (``atexit``), and/or
* on the given signals (default SIGTERM, what process managers and Kubernetes send), after
  which the previous disposition of the signal still applies: a previous Python handler is
  called, an ignored signal stays ignored, and for the default disposition the signal is
  re-raised with its default action, so the process ends exactly as it would have.

Both hooks act only in the process that created the client: a fork() child that inherited
them (e.g. a gunicorn worker) leaves the parent's registration alone.
"""

from __future__ import annotations

import atexit as _atexit
import os
import signal
import threading

from ._client import Client
from .errors import RegistrarError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import FrameType
    from typing import Any, Callable, Dict, Optional, Union

    _Handler = Union[Callable[[int, Optional[FrameType]], Any], int, None]

__all__ = ["ExitHook", "deregister_at_exit"]


class ExitHook:
    """What :func:`deregister_at_exit` installed; :meth:`remove` takes it back."""

    def __init__(
        self,
        client: Client,
        use_atexit: bool,
        signals: Iterable[Union[int, signal.Signals]],
        timeout: Optional[float],
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._pid = os.getpid()
        self._atexit = use_atexit
        self._previous: Dict[int, _Handler] = {}
        self._removed = False
        sigs = [signal.Signals(s) for s in signals]
        if sigs and threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "registrar.deregister_at_exit: signal handlers can only be installed from the "
                "main thread; pass signals=() to use the exit hook alone"
            )
        for sig in sigs:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        if use_atexit:
            _atexit.register(self._at_exit)

    def _close_client(self) -> None:
        if os.getpid() != self._pid:
            return  # a fork() child: the registration belongs to the parent
        try:
            self._client.close(self._timeout)
        except RegistrarError:
            pass  # e.g. the registry did not answer in time; the lease will expire

    def _at_exit(self) -> None:
        self._close_client()

    def _on_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        self._close_client()
        previous = self._previous.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        else:
            # Default disposition (or a handler not installed from Python): die as we would
            # have without this hook.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def remove(self) -> None:
        """Uninstalls the hooks: restores the previous signal handlers (if ours are still
        installed) and drops the exit hook. Idempotent."""
        if self._removed:
            return
        self._removed = True
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        if self._atexit:
            _atexit.unregister(self._at_exit)


def deregister_at_exit(
    client: Client,
    *,
    atexit: bool = True,
    signals: Iterable[Union[int, signal.Signals]] = (signal.SIGTERM,),
    timeout: Optional[float] = None,
) -> ExitHook:
    """Closes ``client`` (deregistering it) at interpreter exit and on ``signals``.

    Opt-in and host-side: nothing is installed unless you call this. Signal handlers can only
    be installed from the main thread (``signals=()`` otherwise). ``timeout`` bounds the
    deregistration (None: the configured REGISTRY_TIMEOUT). Returns an :class:`ExitHook`
    whose ``remove()`` undoes it.
    """
    return ExitHook(client, atexit, signals, timeout)
