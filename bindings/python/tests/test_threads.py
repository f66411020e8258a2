"""Many Python threads on one client at once, and close() racing them."""

from __future__ import annotations

import random
import threading
import time
from typing import List

import registrar

from conftest import Registry

THREADS = 16
ITERATIONS = 150


def run_threads(target, count: int) -> List[BaseException]:
    errors: List[BaseException] = []
    start = threading.Barrier(count)

    def body(n: int) -> None:
        try:
            start.wait(timeout=10)
            target(n)
        except BaseException as e:  # collected and asserted on by the test
            errors.append(e)

    threads = [threading.Thread(target=body, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a thread hung"
    return errors


def test_many_threads_use_one_client(make_client, registry: Registry):
    client = make_client().start()
    client.up()

    def work(n: int) -> None:
        rng = random.Random(n)
        for i in range(ITERATIONS):
            op = rng.randrange(5)
            if op == 0:
                info = client.info()
                assert info.state in (registrar.State.REGISTERING, registrar.State.REGISTERED)
            elif op == 1:
                client.set_metadata(f"t{n}", str(i))
                assert client.get_metadata(f"t{n}") == str(i)  # only this thread writes t{n}
            elif op == 2:
                client.set_status(registrar.Status.UP)
            elif op == 3:
                client.last_error
                assert client.instance_id and client.app_name
            else:
                client.wait_registered(timeout=0.001) if rng.random() < 0.05 else client.state

    errors = [e for e in run_threads(work, THREADS) if not isinstance(e, registrar.TimeoutError)]
    assert not errors, errors[:3]
    for n in range(THREADS):
        client.set_metadata(f"t{n}", "final")
    client.wait_registered(timeout=10)
    instance = registry.instance(client.app_name, client.instance_id)
    assert instance["status"] == "UP"
    assert all(instance["metadata"][f"t{n}"] == "final" for n in range(THREADS))


def test_close_races_other_calls(make_client, registry: Registry):
    client = make_client().start()
    client.up()
    client.wait_registered(timeout=10)
    closer_started = threading.Event()
    outcomes: List[str] = []

    def work(n: int) -> None:
        if n == 0:
            # one thread closes while the others are busy
            for _ in range(50):
                client.info()
            closer_started.set()
            client.close()
            outcomes.append("closed")
            return
        deadline = time.monotonic() + 30  # bounded: ends with ShutDownError once closed
        i = 0
        while time.monotonic() < deadline:
            i += 1
            try:
                if i % 3 == 0:
                    client.info()
                elif i % 3 == 1:
                    client.get_metadata("k")
                else:
                    client.set_metadata("k", str(i))
            except registrar.ShutDownError:
                outcomes.append("shut down")
                return
        outcomes.append("never saw the close")

    errors = run_threads(work, 8)
    assert not errors, errors[:3]
    assert closer_started.is_set()
    assert sorted(outcomes) == ["closed"] + ["shut down"] * 7
    assert client.closed
    assert registry.instance(client.app_name, client.instance_id) is None
