"""Re-registration after the registry restarts (empty) on the same port; meanwhile the failed
heartbeats are counted in the metrics and logged to the "registrar" logger, as is the recovery."""

from __future__ import annotations

import logging

import registrar

from conftest import FAST, Registry, unique_app
from test_operability import parse_metrics, value


def test_reregisters_after_a_server_restart(dedicated_server, caplog):
    caplog.set_level(logging.INFO, logger="registrar")
    url = dedicated_server.start()
    registry = Registry(url)
    client = registrar.Client(from_env=False, url=url, app_name=unique_app("restart"), **FAST)
    try:
        client.up()
        client.start()
        client.wait_registered(timeout=10)
        registry.wait_status(client.app_name, client.instance_id, "UP")
        registrations = client.info().registrations

        dedicated_server.stop()
        registry.wait_for(
            lambda: client.info().last_error != registrar.ErrorCode.OK,
            timeout=10,
            what="the client to notice the registry is gone",
        )
        assert client.info().last_error in (registrar.ErrorCode.TRANSPORT, registrar.ErrorCode.TIMEOUT)
        who = dict(app=client.app_name, instance=client.instance_id)
        samples = parse_metrics(registrar.metrics())
        assert value(samples, "registrar_heartbeats_total", result="error", **who) >= 1
        snapshot = client.snapshot()
        assert snapshot["last_error"]["code"] in ("REGISTRAR_ERR_TRANSPORT", "REGISTRAR_ERR_TIMEOUT")
        assert snapshot["last_failure_unix_ms"] >= snapshot["last_success_unix_ms"]
        registry.wait_for(
            lambda: any("heartbeat failed" in r.getMessage() for r in caplog.records),
            timeout=5,
            what="the failed heartbeat logged",
        )
        failure = next(r for r in caplog.records if "heartbeat failed" in r.getMessage())
        assert failure.name == "registrar" and failure.levelno == logging.WARNING

        dedicated_server.start(port=dedicated_server.port)  # empty registry, same address
        # back within a heartbeat or a retry of it coming up (backoff is capped at the interval)
        registry.wait_status(client.app_name, client.instance_id, "UP", timeout=10)
        client.wait_registered(timeout=10)
        info = client.info()
        assert info.registrations > registrations
        assert info.state == registrar.State.REGISTERED
        assert info.last_error == registrar.ErrorCode.OK
        # The recovery names the failure it ends (the last one logged: a heartbeat or, if the
        # server forgot the instance meanwhile, a registration).
        registry.wait_for(
            lambda: any("(after: " in r.getMessage() for r in caplog.records),
            timeout=5,
            what="the recovery logged",
        )
        recovery = next(r for r in caplog.records if "(after: " in r.getMessage())
        assert recovery.levelno == logging.INFO
        # Each distinct failure once, not once per retry.
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert all(a != b for a, b in zip(warnings, warnings[1:])), warnings
    finally:
        client.close()
    assert registry.instance(client.app_name, client.instance_id) is None
