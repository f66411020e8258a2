"""Configuration, validation, exceptions and the client's local behaviour (no server needed)."""

from __future__ import annotations

import gc
import re
import warnings

import pytest

import registrar

SECRET = "pa55-Wörd:with@odd/chars"


def minimal(**extra):
    values = dict(url="http://127.0.0.1:1/eureka/", app_name="my_awsome_go_ms", hostname="h1")
    values.update(extra)
    return values


def test_defaults_follow_the_seed():
    with registrar.Client(from_env=False, **minimal()) as client:
        assert client.app_name == "MY_AWSOME_GO_MS"
        assert client.instance_id == "h1:my_awsome_go_ms:8080"
    client = registrar.Client(from_env=False, **minimal(port=9090))
    assert client.instance_id == "h1:my_awsome_go_ms:9090"
    client.close()


@pytest.mark.parametrize(
    "settings, named",
    [
        (dict(url=None), "REGISTRY_URL"),
        (dict(url="ftp://x/eureka/"), "REGISTRY_URL"),
        (dict(app_name=None), "REGISTRY_APP_NAME"),
        (dict(app_name="a b"), "REGISTRY_APP_NAME"),
        (dict(port=0), "REGISTRY_PORT"),
        (dict(port="http"), "REGISTRY_PORT"),
        (dict(metadata="novalue"), "REGISTRY_METADATA"),
        (dict(type="consul"), "REGISTRY_TYPE"),
        (dict(heartbeat_interval=5, lease_duration=5), "REGISTRY_LEASE_DURATION"),
        (dict(timeout="soon"), "REGISTRY_TIMEOUT"),
    ],
)
def test_bad_configuration_names_the_setting(settings, named):
    with pytest.raises(registrar.InvalidConfigError) as raised:
        registrar.Client(from_env=False, **minimal(**settings))
    assert named in str(raised.value)
    assert raised.value.code == registrar.ErrorCode.INVALID_CONFIG
    # Config.validate says the same without creating a client
    with pytest.raises(registrar.InvalidConfigError, match=named):
        registrar.Config(**minimal(**settings)).validate()


def test_unknown_setting_is_refused_at_once():
    config = registrar.Config()
    with pytest.raises(registrar.InvalidConfigError, match="unknown setting 'colour'"):
        config.set("colour", "blue")
    with pytest.raises(TypeError):
        registrar.Client(from_env=False, colour=True)


def test_environment_and_explicit_settings(monkeypatch):
    monkeypatch.setenv("REGISTRY_URL", "http://127.0.0.1:1/eureka/apps/")
    monkeypatch.setenv("REGISTRY_APP_NAME", "from-env")
    monkeypatch.setenv("REGISTRY_PORT", "7000")
    monkeypatch.setenv("REGISTRY_HOSTNAME", "envhost")
    client = registrar.Client()  # the environment by default
    assert (client.app_name, client.instance_id) == ("FROM-ENV", "envhost:from-env:7000")
    client.close()
    client = registrar.Client(port=7001, APP_NAME="explicit")  # explicit wins, any key case
    assert client.instance_id == "envhost:explicit:7001"
    client.close()
    client = registrar.Client(registrar.Config.from_env(registry_port="7002"))
    assert client.instance_id == "envhost:from-env:7002"
    client.close()
    with pytest.raises(registrar.InvalidConfigError, match="REGISTRY_URL"):
        registrar.Client(from_env=False, app_name="x")  # the environment ignored


def test_values_of_every_kind():
    config = registrar.Config(
        url=["http://127.0.0.1:1/eureka/", "http://127.0.0.1:2/eureka/"],
        app_name="kinds",
        hostname="h",
        heartbeat_interval=0.25,
        lease_duration=3,
        secure_port=8443,
        metadata={"zone": "a", "list": "x,y", "padded": " p "},
    )
    client = registrar.Client(config)
    assert client.get_metadata("zone") == "a"
    assert client.get_metadata("list") == "x,y"  # commas survive
    assert client.get_metadata("padded") == " p "
    assert client.get_metadata("missing") is None
    assert client.get_metadata("missing", "d") == "d"
    client.close()
    with pytest.raises(TypeError):
        registrar.Config(port=True)
    with pytest.raises(TypeError):
        registrar.Config(port={"a": 1})
    with pytest.raises(ValueError):
        registrar.Config(app_name="nul\x00")


def test_empty_metadata_mapping_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("REGISTRY_METADATA", "zone=env")
    client = registrar.Client(**minimal(metadata={}))
    assert client.get_metadata("zone") is None
    client.close()
    client = registrar.Client(**minimal())
    assert client.get_metadata("zone") == "env"
    client.close()


def test_credentials_never_shown():
    config = registrar.Config(
        **minimal(url=f"http://registrar:{SECRET.replace('/', '%2F').replace('@', '%40')}@127.0.0.1:1/eureka/"),
        user="registrar",
        password=SECRET,
    )
    assert SECRET not in repr(config) and "***" in repr(config)
    assert "pa55" not in repr(config)
    client = registrar.Client(config)
    assert "pa55" not in repr(client)
    client.close()
    # errors about the URL never echo its user-info
    with pytest.raises(registrar.InvalidConfigError) as raised:
        registrar.Client(from_env=False, **minimal(url=f"http://registrar:{SECRET}@127.0.0.1:1/eureka/?x=1"))
    assert "pa55" not in str(raised.value) and "pa55" not in repr(raised.value)
    with pytest.raises(registrar.InvalidConfigError) as raised:
        registrar.Client(from_env=False, **minimal(user=None, password=SECRET))
    assert "pa55" not in str(raised.value)


def test_status_and_metadata_arguments():
    client = registrar.Client(from_env=False, **minimal())
    client.set_status("out_of_service")
    assert client.status == registrar.Status.OUT_OF_SERVICE
    client.up()
    assert client.info().status == registrar.Status.UP
    with pytest.raises(ValueError, match="unknown status 'sideways'"):
        client.set_status("sideways")
    with pytest.raises(registrar.InvalidArgumentError, match="UNKNOWN"):
        client.set_status(registrar.Status.UNKNOWN)
    with pytest.raises(registrar.InvalidArgumentError):
        client.set_status(42)
    with pytest.raises(registrar.InvalidArgumentError, match="key '1bad'"):
        client.set_metadata("1bad", "x")
    client.update_metadata({"a": "1", "b": "2"})
    client.set_metadata("a", None)
    assert (client.get_metadata("a"), client.get_metadata("b")) == (None, "2")
    client.close()


def test_lifecycle_without_a_server():
    client = registrar.Client(from_env=False, **minimal())
    info = client.info()
    assert info.state == registrar.State.NOT_STARTED and info.heartbeats == 0
    with pytest.raises(registrar.TimeoutError, match="not been started"):
        client.wait_registered(timeout=0.1)
    client.stop()
    client.stop()  # idempotent
    assert client.state == registrar.State.STOPPED
    with pytest.raises(registrar.ShutDownError):
        client.start()
    with pytest.raises(registrar.ShutDownError):
        client.up()
    client.close()
    client.close()  # idempotent
    assert client.closed and "closed" in repr(client)
    for call in (client.info, client.start, client.stop, lambda: client.get_metadata("a")):
        with pytest.raises(registrar.ShutDownError):
            call()


def test_unreachable_registry_times_out_with_the_reason():
    client = registrar.Client(from_env=False, **minimal(timeout=1))
    client.start()
    with pytest.raises(registrar.TimeoutError) as raised:
        client.wait_registered(timeout=0.6)
    message = str(raised.value)
    assert re.search(r"not registered within 600 ms", message), message
    assert isinstance(raised.value.__cause__, registrar.TransportError)
    assert client.info().last_error == registrar.ErrorCode.TRANSPORT
    assert client.info().failed_requests >= 1
    assert isinstance(client.last_error, registrar.TransportError)
    client.close(timeout=2)


def test_log_messages_reach_python():
    seen = []
    sinks_before = len(registrar._client._log_sinks)
    client = registrar.Client(from_env=False, **minimal())
    client.set_logger(lambda level, message: seen.append((level, message)), registrar.LogLevel.WARN)
    client.start()
    with pytest.raises(registrar.TimeoutError):
        client.wait_registered(timeout=1.0)
    client.close(timeout=2)
    assert seen, "no log message for an unreachable registry"
    assert all(isinstance(level, registrar.LogLevel) for level, _ in seen)
    assert any("unreachable" in message for _, message in seen), seen
    # once per distinct problem, not once per retry
    assert len(seen) <= 3, seen
    # the library released the Python function (free_user_data was called)
    assert len(registrar._client._log_sinks) == sinks_before


def test_finalizer_is_a_safety_net_with_a_warning():
    client = registrar.Client(from_env=False, **minimal())
    client.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught), caught


def test_settings_come_from_the_library_and_every_one_is_accepted() -> None:
    listed = registrar.settings()
    # The library's own table, read through the C API: same length, same order.
    lib = registrar._native.lib
    assert len(listed) == lib.registrar_setting_count() > 0
    assert [s.name for s in listed] == [
        lib.registrar_setting_name(i).decode() for i in range(len(listed))
    ]
    assert lib.registrar_setting_name(len(listed)) is None
    names = [s.name for s in listed]
    assert "REGISTRY_URL" in names and "REGISTRY_FETCH_INTERVAL" in names
    assert len(set(names)) == len(names)
    port = next(s for s in listed if s.name == "REGISTRY_PORT")
    assert "8080" in port.description
    config = registrar.Config()
    for setting in listed:
        assert setting.name.startswith("REGISTRY_") and setting.description
        config.set(setting.name, None)  # every listed name is a key Config accepts
        config.set(setting.name[len("REGISTRY_"):].lower(), None)


# REGISTRY_URL values that leaked the password before the core's one redaction (issue 9); the
# password is "Xy7q<sep>Zw9k" and neither half may show.
MALFORMED_URLS = [
    "http://user:Xy7q/Zw9k@127.0.0.1:8761/eureka/",
    "http://user:Xy7q#Zw9k@127.0.0.1:8761/eureka/",
    "http://user:Xy7q?Zw9k@127.0.0.1:8761/eureka/",
    "http://user:Xy7q@Zw9k@127.0.0.1:8761/eureka/",
    "http://user:Xy7q,Zw9k@127.0.0.1:8761/eureka/",
    "user:Xy7qZw9k@127.0.0.1:8761/eureka/",
    "http://ok:1/eureka/,http://user:Xy7q/Zw9k@127.0.0.1:8761/eureka/",
    ["http://user:Xy7qZw9k@a:1/eureka/", "user:Xy7qZw9k@b:2/eureka/"],
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_malformed_urls_never_show_the_password(url):
    config = registrar.Config(**minimal(url=url, port="x"))
    shown = [repr(config), config.describe()]
    with pytest.raises(registrar.InvalidConfigError) as raised:
        registrar.Client(config)
    shown += [str(raised.value), repr(raised.value)]
    for text in shown:
        assert "Xy7q" not in text and "Zw9k" not in text, text
    assert "REGISTRY_URL='" in repr(config) and "REGISTRY_PORT 'x'" in str(raised.value)
    config.close()


def test_every_mistake_in_one_message_and_unsafe_names():
    with pytest.raises(registrar.InvalidConfigError) as raised:
        registrar.Config(**minimal(type="consul", port="eighty")).validate()
    assert "REGISTRY_TYPE 'consul'" in str(raised.value)
    assert "REGISTRY_PORT 'eighty'" in str(raised.value)
    for name in (".", "..", "%2e%2e"):
        with pytest.raises(registrar.InvalidConfigError, match="REGISTRY_APP_NAME"):
            registrar.Config(**minimal(app_name=name)).validate()
        with pytest.raises(registrar.InvalidConfigError, match="REGISTRY_INSTANCE_ID"):
            registrar.Config(**minimal(instance_id=name)).validate()
