"""Opt-in deregistration at exit and on SIGTERM (host-side), and the default of doing nothing."""

from __future__ import annotations

import signal
import subprocess
import textwrap
import threading

import pytest

import registrar

from conftest import FAST, PYTHON, Registry, python_env, unique_app

PRELUDE = """
import os, signal, sys, time
import registrar
FAST = {fast!r}
client = registrar.Client(from_env=False, url={url!r}, app_name={app!r}, **FAST)
client.up()
client.start()
client.wait_registered(timeout=10)
"""


def script(url: str, app: str, body: str) -> str:
    return PRELUDE.format(fast=FAST, url=url, app=app) + textwrap.dedent(body)


def spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=python_env(),
    )


def read_line(process: subprocess.Popen, timeout: float = 30.0) -> str:
    result = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()))
    reader.start()
    reader.join(timeout)
    if not result:
        process.kill()
        raise AssertionError(f"no output within {timeout} s; stderr: {process.stderr.read()}")
    return result[0].strip()


def finish(process: subprocess.Popen, timeout: float = 30.0) -> subprocess.CompletedProcess:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the process did not exit within {timeout} s: {err}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_nothing_is_installed_by_default(eureka_url, registry: Registry):
    """Without the opt-in, exit leaves the instance registered (until its lease expires): the
    library installs no handler of its own, and exiting with a running client is clean."""
    app = unique_app("noexit")
    before = signal.getsignal(signal.SIGTERM)
    process = spawn(script(eureka_url, app, """
        print(client.instance_id, signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)
    """))
    instance_id, default_handler = read_line(process).split()
    result = finish(process)
    assert result.returncode == 0, result.stderr
    assert default_handler == "True"
    assert registry.instance(app, instance_id) is not None  # still there: the host's call
    assert signal.getsignal(signal.SIGTERM) == before
    registry.wait_gone(app, instance_id, timeout=15)  # and evicted when its lease runs out


def test_atexit_deregisters_in_the_owner_only(eureka_url, registry: Registry):
    app = unique_app("atexit")
    process = spawn(script(eureka_url, app, """
        registrar.deregister_at_exit(client, signals=())
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # a child's normal exit runs the inherited exit hook: it must do nothing
        os.waitpid(pid, 0)
        print(client.instance_id, flush=True)
        sys.stdin.readline()
    """))
    instance_id = read_line(process)
    assert registry.instance(app, instance_id)["status"] == "UP"  # the child left it alone
    process.stdin.write("\n")
    process.stdin.flush()
    result = finish(process)
    assert result.returncode == 0, result.stderr
    assert registry.instance(app, instance_id) is None  # the parent's exit deregistered it


def test_sigterm_deregisters_then_dies_as_by_default(eureka_url, registry: Registry):
    app = unique_app("sigterm")
    process = spawn(script(eureka_url, app, """
        registrar.deregister_at_exit(client)
        print(client.instance_id, flush=True)
        time.sleep(60)
    """))
    instance_id = read_line(process)
    assert registry.instance(app, instance_id)["status"] == "UP"
    process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert registry.instance(app, instance_id) is None


def test_sigterm_chains_to_the_previous_handler(eureka_url, registry: Registry):
    app = unique_app("chain")
    process = spawn(script(eureka_url, app, """
        def previous(signum, frame):
            print("previous handler ran", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, previous)
        registrar.deregister_at_exit(client)
        print(client.instance_id, flush=True)
        time.sleep(60)
    """))
    instance_id = read_line(process)
    process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result.returncode == 3, result.stderr
    assert "previous handler ran" in result.stdout
    assert registry.instance(app, instance_id) is None


def test_hook_removal_and_threads():
    client = registrar.Client(
        from_env=False, url="http://127.0.0.1:1/eureka/", app_name="hooks", hostname="h"
    )
    before = signal.getsignal(signal.SIGTERM)
    hook = registrar.deregister_at_exit(client)
    assert signal.getsignal(signal.SIGTERM) != before
    hook.remove()
    hook.remove()
    assert signal.getsignal(signal.SIGTERM) == before

    raised = []

    def elsewhere() -> None:
        try:
            registrar.deregister_at_exit(client)
        except RuntimeError as e:
            raised.append(e)
        registrar.deregister_at_exit(client, signals=()).remove()  # exit hook alone is fine

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert raised and "main thread" in str(raised[0])
    client.close()


def test_exiting_right_after_registration_never_aborts(eureka_url):
    """Python exits while the background thread is still delivering "registered" log messages
    to the Python logger. The exit hook removes the loggers; each removal must wait for the
    call in progress and free the callback itself: a call or free that reached Python once it
    was finalizing killed the thread mid-unwind and aborted the process ("FATAL: exception not
    rethrown", SIGABRT; 8 of 60 runs of this script before the fix)."""
    code = textwrap.dedent(f"""
        import logging, registrar
        logging.basicConfig(level=logging.DEBUG)
        clients = [registrar.Client(from_env=False, url={eureka_url!r}, app_name="EXITRACE",
                                    instance_id=f"exitrace-{{i}}", **{FAST!r})
                   for i in range(5)]
        for client in clients:
            client.up()
            client.start()
        for client in clients:
            client.wait_registered(timeout=10)
    """)
    assert_never_aborts(code)


def test_exiting_while_a_health_check_runs_never_aborts(eureka_url):
    """Python exits while the library's health check thread is inside a Python check. The
    exit hook removes the checks; each removal must wait for the call in progress and free
    the check itself: a check still running (or freed) on the library's thread once Python was
    finalizing killed that thread mid-unwind and aborted the process ("FATAL: exception not
    rethrown", SIGABRT; 14 of 30 runs of this script before the fix)."""
    code = textwrap.dedent(f"""
        import threading, time, registrar
        running = threading.Event()
        def check():
            running.set()
            time.sleep(0.02)
            return True
        clients = [registrar.Client(from_env=False, url={eureka_url!r}, app_name="HEALTHEXIT",
                                    instance_id=f"healthexit-{{i}}", health_interval=0.1,
                                    health_threshold=2, **{FAST!r})
                   for i in range(5)]
        for client in clients:
            client.set_health_check(check)
            client.up()
            client.start()
        for client in clients:
            client.wait_registered(timeout=10)
        running.clear()
        assert running.wait(5), "no check ran"
    """)
    assert_never_aborts(code)


def assert_never_aborts(code: str, runs: int = 30) -> None:
    """Runs the script `runs` times; each must exit cleanly (the races are timing-dependent)."""
    aborted = []
    for run in range(runs):
        result = subprocess.run(
            [PYTHON, "-c", code], capture_output=True, text=True, env=python_env(), timeout=60
        )
        if result.returncode != 0:
            aborted.append((run, result.returncode, result.stderr[-300:]))
    assert not aborted, aborted
