"""Events (Client.on_event, Discovery.on_event) against the real Eureka server: order, causes,
reasons, once per failure streak, nothing after stop returns, and a raising listener that is
logged instead of reaching the library's thread. Where the registry must fail on demand, a TCP
forwarder in front of the real server is cut off."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import urllib.request
from typing import Callable, List, Optional

import pytest

import registrar
from conftest import FAST, unique_app
from registrar import ErrorCode, Event, EventCause, EventKind, Status



class Recorder:
    """Collects events; counts those that arrive after ``returned`` is set."""

    def __init__(self) -> None:
        self.events: List[Event] = []
        self.lock = threading.Lock()
        self.returned = False
        self.late = 0
        self.threads: set = set()

    def __call__(self, event: Event) -> None:
        with self.lock:
            if self.returned:
                self.late += 1
            self.events.append(event)
            self.threads.add(threading.get_ident())

    def kinds(self) -> List[EventKind]:
        with self.lock:
            return [e.kind for e in self.events]

    def find(self, kind: EventKind, where: Callable[[Event], bool] = lambda e: True) -> Optional[Event]:
        with self.lock:
            return next((e for e in self.events if e.kind == kind and where(e)), None)

    def wait_for(self, kind: EventKind, timeout: float = 10.0, where: Callable[[Event], bool] = lambda e: True) -> Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(kind, where)
            if found is not None:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {kind.name} within {timeout} s; saw {self.kinds()}")


class Forwarder:
    """A TCP forwarder to the real server that can be cut off (connections reset, new ones
    closed at once) and restored: a network partition, with real answers otherwise."""

    def __init__(self, upstream: str) -> None:
        m = re.match(r"http://([^:/]+):(\d+)(/.*)$", upstream)
        assert m, upstream
        self.target = (m.group(1), int(m.group(2)))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}{m.group(3)}"
        self.down = False
        self.closed = False
        self.live: List[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down or self.closed:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.live += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self) -> None:
        self.down = True
        with self.lock:
            live, self.live = self.live, []
        for s in live:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def forwarder(eureka_url):
    f = Forwarder(eureka_url)
    yield f
    f.close()


def test_kinds_and_causes_match_the_header():
    from test_native import enum_values

    assert enum_values("REGISTRAR_EVENT_") == {k.name: k.value for k in EventKind}
    assert enum_values("REGISTRAR_CAUSE_") == {c.name: c.value for c in EventCause}


def test_client_registered_status_changed_stopped_in_order_and_nothing_after(make_client):
    client = make_client()
    rec = Recorder()
    client.on_event(rec)
    client.start()
    client.wait_registered(10)
    client.up()
    client.wait_registered(10)
    time.sleep(0.5)  # heartbeats announce nothing
    client.stop(5)
    rec.returned = True
    assert rec.kinds() == [EventKind.REGISTERED, EventKind.STATUS_CHANGED, EventKind.STOPPED]
    registered, changed, stopped = rec.events
    assert registered.status is Status.STARTING
    assert changed.status is Status.UP and changed.cause is EventCause.HOST
    assert stopped.error is ErrorCode.OK and stopped.reason is None
    # on the library's one background thread, not the caller's
    assert len(rec.threads) == 1 and threading.get_ident() not in rec.threads
    time.sleep(0.5)
    assert rec.late == 0 and len(rec.events) == 3


def test_deleted_behind_its_back_is_lost_then_re_registered(make_client, registry, eureka_url):
    client = make_client()
    rec = Recorder()
    client.on_event(rec)
    client.up()
    client.start()
    client.wait_registered(10)
    request = urllib.request.Request(
        f"{eureka_url}apps/{client.app_name}/{client.instance_id}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    lost = rec.wait_for(EventKind.REGISTRATION_LOST)
    assert lost.cause is EventCause.NOT_FOUND
    assert lost.error is ErrorCode.NOT_FOUND
    assert "does not know this instance" in lost.reason
    back = rec.wait_for(EventKind.REREGISTERED)
    assert back.status is Status.UP
    registry.wait_status(client.app_name, client.instance_id, "UP")
    client.close()
    assert rec.kinds() == [
        EventKind.REGISTERED,
        EventKind.REGISTRATION_LOST,
        EventKind.REREGISTERED,
        EventKind.STOPPED,
    ]


def test_a_raising_listener_is_logged_and_changes_nothing(make_client, caplog):
    caplog.set_level(logging.ERROR, logger="registrar")
    client = make_client()
    seen: List[EventKind] = []

    def listener(event: Event) -> None:
        seen.append(event.kind)
        raise RuntimeError("listener bug")

    client.on_event(listener)
    client.start()
    client.wait_registered(10)
    client.up()
    client.wait_registered(10)
    client.close()
    assert seen == [EventKind.REGISTERED, EventKind.STATUS_CHANGED, EventKind.STOPPED]
    raised = [r for r in caplog.records if r.name == "registrar" and "event listener" in r.getMessage()]
    assert len(raised) == 3
    assert "listener bug" in caplog.text


def test_on_event_none_removes_and_a_non_callable_is_refused(make_client):
    client = make_client()
    rec = Recorder()
    client.on_event(rec)
    client.on_event(None)
    with pytest.raises(TypeError):
        client.on_event(42)  # type: ignore[arg-type]
    client.start()
    client.wait_registered(10)
    client.close()
    assert rec.events == []
    with pytest.raises(registrar.ShutDownError):
        client.on_event(rec)


def test_discovery_ready_then_changed_when_another_instance_registers(eureka_url, make_client):
    rec = Recorder()
    with registrar.Discovery(url=eureka_url, fetch_interval=0.2, from_env=False) as discovery:
        discovery.on_event(rec)  # after start: READY may be missed, so wait for it below
        discovery.wait_ready(10)
        other = make_client()
        other.up()
        other.start()
        other.wait_registered(10)
        changed = rec.wait_for(EventKind.DISCOVERY_CHANGED)
        assert changed.version >= 2 and changed.status is Status.UNKNOWN
    rec.returned = True
    other.close()
    time.sleep(0.5)
    assert rec.late == 0
    assert EventKind.DISCOVERY_FETCH_FAILING not in rec.kinds()


def test_discovery_ready_first_when_given_to_the_constructor(eureka_url):
    rec = Recorder()
    with registrar.Discovery(
        url=eureka_url, fetch_interval=0.2, from_env=False, on_event=rec
    ) as discovery:
        discovery.wait_ready(10)
        ready = rec.wait_for(EventKind.DISCOVERY_READY, 2)
        assert ready.version == 1
    assert rec.kinds()[0] is EventKind.DISCOVERY_READY


def test_client_constructor_takes_the_listener(eureka_url):
    rec = Recorder()
    with registrar.Client(
        from_env=False, url=eureka_url, app_name=unique_app(), on_event=rec, **FAST
    ) as client:
        client.wait_registered(10)
    assert rec.kinds() == [EventKind.REGISTERED, EventKind.STOPPED]


def test_discovery_fetch_failing_once_per_streak_then_recovered(forwarder):
    rec = Recorder()
    discovery = registrar.Discovery(
        url=forwarder.url, fetch_interval=0.2, timeout=1, from_env=False
    )
    discovery.on_event(rec)
    discovery.start()
    discovery.wait_ready(10)
    forwarder.cut()
    failing = rec.wait_for(EventKind.DISCOVERY_FETCH_FAILING, 5)
    assert failing.error is not ErrorCode.OK and failing.reason
    time.sleep(1.5)  # several retries fail meanwhile
    assert discovery.info().failed_refreshes >= 2
    assert rec.kinds().count(EventKind.DISCOVERY_FETCH_FAILING) == 1
    forwarder.restore()
    rec.wait_for(EventKind.DISCOVERY_RECOVERED, 10)
    discovery.close()
    kinds = [k for k in rec.kinds() if k is not EventKind.DISCOVERY_CHANGED]
    assert kinds == [
        EventKind.DISCOVERY_READY,
        EventKind.DISCOVERY_FETCH_FAILING,
        EventKind.DISCOVERY_RECOVERED,
    ]
