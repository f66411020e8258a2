#!/usr/bin/env python3
"""The seed's scenario in Python: register this process with Eureka until told to stop.

Configured only by the environment (REGISTRY_URL, REGISTRY_APP_NAME, REGISTRY_PORT, ...; see
the README's configuration table). It registers, marks itself UP, prints one line
``registered APP/ID`` once the registry has accepted it, heartbeats until SIGINT or SIGTERM,
then deregisters and exits 0 (1 when deregistration failed: the registry may still list the
instance until its lease expires). While not (yet) registered it says why on stderr, once per
distinct reason (registry unreachable, wrong credentials, the server's 400 reason...).
A bad configuration exits with status 2 and the library's message. A signal is acted on
within 100 ms in every phase (waits are cut into 50 ms slices).

    REGISTRY_URL=http://127.0.0.1:8761/eureka/ REGISTRY_APP_NAME=my_awsome_go_ms \
        python examples/python/register.py

Health and drain, from the environment alone (see the README):
REGISTRY_HEALTH_URL (a local http:// URL the library polls every REGISTRY_HEALTH_INTERVAL s;
DOWN after REGISTRY_HEALTH_THRESHOLD failures in a row, UP after as many passes);
REGISTER_UNHEALTHY_FILE=/tmp/sick (this example's own Python health check, the API a service
uses: unhealthy while that file exists; it replaces REGISTRY_HEALTH_URL);
REGISTRY_DRAIN_SECONDS=10 (on SIGINT/SIGTERM the instance is registered DOWN at once and stays
listed, heartbeating, for 10 s so callers' caches drop it, then deleted).
REGISTER_EVENTS=1 prints the client's events (registered, registration lost, re-registered,
status changed and why, stopped) on stderr as they happen.
"""

import os
import signal
import sys
import threading

import registrar


def main() -> int:
    on_event = None
    if os.environ.get("REGISTER_EVENTS") == "1":
        # Called on the library's thread, in order; given to the constructor to see them all.
        def on_event(event: "registrar.Event") -> None:
            cause = "" if event.cause == registrar.EventCause.NONE else f" ({event.cause.name})"
            reason = f": {event.reason}" if event.reason else ""
            print(f"register: event {event.kind.name} {event.status.name}{cause}{reason}",
                  file=sys.stderr, flush=True)

    try:
        # everything from the REGISTRY_* environment
        client = registrar.Client(on_event=on_event)
    except registrar.RegistrarError as e:
        print(f"register: {e}", file=sys.stderr)
        return 2

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())

    unhealthy_file = os.environ.get("REGISTER_UNHEALTHY_FILE")
    if unhealthy_file:
        # Called on the library's health check thread; truthy = healthy, raising = unhealthy
        # with the exception as the reason the library logs and reports.
        def file_health() -> bool:
            if os.path.exists(unhealthy_file):
                raise RuntimeError(f"{unhealthy_file} exists")
            return True

        client.set_health_check(file_health)

    name = f"{client.app_name}/{client.instance_id}"
    client.up()  # ready for traffic: the first registration already says UP
    client.start()

    registered = False
    reported = ""  # the last reason printed, so each distinct problem is printed once
    while not stop.is_set():
        try:
            # Short slices: Python runs signal handlers only between two native calls.
            client.wait_registered(timeout=0.05)
            if not registered:
                print(f"registered {name}", flush=True)
                registered = True
            reason = ""
        except registrar.TimeoutError:
            error = client.last_error
            reason = str(error) if error is not None else "no answer from the registry yet"
        except registrar.ShutDownError:
            break
        if reason and reason != reported:
            print(f"register: {name} not registered: {reason}", file=sys.stderr, flush=True)
        elif not reason and reported:
            print(f"register: {name} registered again", file=sys.stderr, flush=True)
        reported = reason
        if registered and not reason:
            stop.wait(0.5)

    if stop.is_set():
        print("register: signal received, deregistering", file=sys.stderr, flush=True)
    try:
        # DOWN (kept so for REGISTRY_DRAIN_SECONDS), then DELETE: gone now, not at lease expiry.
        client.close()
    except registrar.RegistrarError as e:
        print(f"register: deregistration did not complete: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
