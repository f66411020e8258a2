"""Re-registration after the registry restarts (empty) on the same port."""

from __future__ import annotations

import registrar

from conftest import FAST, Registry, unique_app


def test_reregisters_after_a_server_restart(dedicated_server):
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

        dedicated_server.start(port=dedicated_server.port)  # empty registry, same address
        # back within a heartbeat or a retry of it coming up (backoff is capped at the interval)
        registry.wait_status(client.app_name, client.instance_id, "UP", timeout=10)
        client.wait_registered(timeout=10)
        info = client.info()
        assert info.registrations > registrations
        assert info.state == registrar.State.REGISTERED
        assert info.last_error == registrar.ErrorCode.OK
    finally:
        client.close()
    assert registry.instance(client.app_name, client.instance_id) is None
