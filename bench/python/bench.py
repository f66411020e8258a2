#!/usr/bin/env python3
"""registrar vs py-eureka-client: what registering one Python process costs, side by side.

Run by hand (not part of the tests), against a real Eureka server on loopback:

    bench/python/run.sh                       # makes a venv, starts a server, runs this
    python bench/python/bench.py --url http://127.0.0.1:8761/eureka/ [--rounds 3] ...

Method. Every measurement runs in a fresh child process (python bench.py --child KIND), the
two clients alternating, several rounds, medians reported. In the child:

1. baseline: RSS (VmRSS of /proc/self/status) and threads (/proc/self/task) of a bare
   interpreter that has imported only what the harness itself needs;
2. import + start: wall time from before ``import`` of the client package until the registry
   has accepted the registration (registrar: ``wait_registered`` returns; py-eureka-client:
   ``init`` returns, which registers synchronously);
3. warm-up: two heartbeat intervals;
4. heartbeats: the main thread sleeps for HEARTBEATS x INTERVAL; process CPU time (user+sys
   of all threads, ``time.process_time``) and the number of heartbeats the registry accepted
   are read before and after; CPU per heartbeat = CPU delta / heartbeat delta. Idle CPU
   between heartbeats is included, as it should be. registrar counts accepted heartbeats
   itself (``info().heartbeats``); for py-eureka-client the module's ``send_heartbeat``
   coroutine is wrapped with a counter that increments after it returns without error.
5. RSS and threads added: after the heartbeats minus the baseline;
6. deregistration (not measured).

Both clients register the same kind of instance (host localhost, 127.0.0.1, one port),
heartbeat at the same configured interval, and only register: py-eureka-client's registry
fetching is switched off (should_discover=False) since registrar's registration does no
fetching either.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any, Dict, List

KINDS = ("registrar", "py-eureka-client")


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def child(kind: str, url: str, interval: float, heartbeats: int) -> Dict[str, Any]:
    app = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    base_rss, base_threads = rss_kib(), threads()
    started = time.perf_counter()
    if kind == "registrar":
        import registrar

        client = registrar.Client(
            from_env=False,
            url=url,
            app_name=app,
            hostname="localhost",
            ip_address="127.0.0.1",
            port=9001,
            heartbeat_interval=interval,
            lease_duration=30,
        )
        client.up()
        client.start()
        client.wait_registered(timeout=30)
        start_s = time.perf_counter() - started

        def count() -> int:
            return client.info().heartbeats

        def stop() -> None:
            client.close()

    else:
        from py_eureka_client import eureka_client
        import py_eureka_client.eureka_client as module

        accepted = [0]
        original = module.send_heartbeat

        async def counting(*args: Any, **kwargs: Any) -> None:
            await original(*args, **kwargs)
            accepted[0] += 1

        module.send_heartbeat = counting
        eureka_client.init(
            eureka_server=url,
            app_name=app,
            instance_host="localhost",
            instance_ip="127.0.0.1",
            instance_port=9001,
            renewal_interval_in_secs=interval,  # type: ignore[arg-type]  (a float works)
            duration_in_secs=30,
            should_discover=False,
        )
        start_s = time.perf_counter() - started

        def count() -> int:
            return accepted[0]

        def stop() -> None:
            eureka_client.stop()

    time.sleep(2 * interval)  # warm-up
    beats0, cpu0, wall0 = count(), time.process_time(), time.perf_counter()
    time.sleep(heartbeats * interval)
    beats1, cpu1, wall1 = count(), time.process_time(), time.perf_counter()
    result = {
        "kind": kind,
        "start_ms": start_s * 1000,
        "rss_added_kib": rss_kib() - base_rss,
        "threads_added": threads() - base_threads,
        "heartbeats": beats1 - beats0,
        "cpu_ms": (cpu1 - cpu0) * 1000,
        "window_s": wall1 - wall0,
    }
    result["cpu_us_per_heartbeat"] = (
        result["cpu_ms"] * 1000 / result["heartbeats"] if result["heartbeats"] else float("nan")
    )
    stop()
    return result


def run_child(kind: str, args: argparse.Namespace) -> Dict[str, Any]:
    command = [
        sys.executable, os.path.abspath(__file__), "--child", kind, "--url", args.url,
        "--interval", str(args.interval), "--heartbeats", str(args.heartbeats),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{kind} run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="Eureka service URL (loopback)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.1, help="heartbeat interval, s")
    parser.add_argument("--heartbeats", type=int, default=50, help="heartbeat intervals measured")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write all results to this file")
    args = parser.parse_args()
    if not args.url.startswith(("http://127.", "http://localhost")):
        raise SystemExit("run the benchmark against a server on loopback only")

    if args.child:
        result = child(args.child, args.url, args.interval, args.heartbeats)
        print("RESULT " + json.dumps(result), flush=True)
        return

    results: Dict[str, List[Dict[str, Any]]] = {k: [] for k in KINDS}
    for round_ in range(args.rounds):
        order = KINDS if round_ % 2 == 0 else tuple(reversed(KINDS))
        for kind in order:
            result = run_child(kind, args)
            results[kind].append(result)
            print(
                f"round {round_ + 1} {kind:17} start {result['start_ms']:7.1f} ms  "
                f"rss +{result['rss_added_kib']:6d} KiB  threads +{result['threads_added']}  "
                f"{result['heartbeats']:3d} heartbeats  {result['cpu_us_per_heartbeat']:8.1f} us/hb",
                flush=True,
            )

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    rows = [
        ("RSS added (KiB)", "rss_added_kib", "{:.0f}"),
        ("threads added", "threads_added", "{:.0f}"),
        ("CPU per heartbeat (us)", "cpu_us_per_heartbeat", "{:.1f}"),
        ("import + start to registered (ms)", "start_ms", "{:.1f}"),
        ("heartbeats in the window", "heartbeats", "{:.0f}"),
    ]
    print()
    print(
        f"medians of {args.rounds} rounds; heartbeat interval {args.interval} s, "
        f"window {args.heartbeats} intervals; Python {sys.version.split()[0]}"
    )
    header = f"| {'metric':36} | {'registrar':>10} | {'py-eureka-client':>16} | {'ratio':>7} |"
    print(header)
    print("|" + "-" * 38 + "|" + "-" * 11 + ":|" + "-" * 17 + ":|" + "-" * 8 + ":|")
    for label, key, fmt in rows:
        mine, theirs = median("registrar", key), median("py-eureka-client", key)
        ratio = f"{theirs / mine:.1f}x" if mine and key != "heartbeats" else ""
        print(f"| {label:36} | {fmt.format(mine):>10} | {fmt.format(theirs):>16} | {ratio:>7} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
