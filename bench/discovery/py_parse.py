"""The Python side of the discovery benchmark (see README.md): py-eureka-client's parsing of a
full registry, and its lookup of an application's UP instances.

    python py_parse.py REGISTRY.json REGISTRY.xml RUNS LOOKUPS

py-eureka-client (0.13) asks the server for XML and parses it with ElementTree plus its own
object building (`eureka_basic._build_applications`): that is its real full-fetch path, timed
here on the XML form of the same registry the Rust side parses as JSON. `json.loads` of the
JSON form is timed too, as the floor any JSON-based Python client starts from (it builds no
objects and no index). Prints one JSON object with the figures.
"""
import gc
import json
import statistics
import sys
import time
import tracemalloc
from xml.etree import ElementTree

from py_eureka_client import eureka_basic


def parse_xml(data):
    # What py-eureka-client does with the body of GET apps (minus the HTTP call).
    return eureka_basic._build_applications(ElementTree.fromstring(data))


def timed(fn, data, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn(data)
        times.append(time.perf_counter() - start)
        del result
    return {"min_ms": min(times) * 1e3, "median_ms": statistics.median(times) * 1e3}


def memory(fn, data):
    """Peak and retained bytes of Python allocations during one parse (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    result = fn(data)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, {"peak_bytes": peak, "retained_bytes": retained}


def main():
    json_path, xml_path, runs, lookups = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    json_data = open(json_path, "rb").read()
    xml_data = open(xml_path, "rb").read()

    out = {"python": sys.version.split()[0]}
    parse_xml(xml_data)  # warm-up
    out["py_eureka_client_xml"] = timed(parse_xml, xml_data, runs)
    apps, mem = memory(parse_xml, xml_data)
    out["py_eureka_client_xml"].update(mem)
    instances = sum(len(a.instances) for a in apps.applications)
    out["py_eureka_client_xml"]["instances"] = instances

    json.loads(json_data)
    out["json_loads"] = timed(json.loads, json_data, runs)
    _, mem = memory(json.loads, json_data)
    out["json_loads"].update(mem)

    # Lookup: one UP instance of an app, round robin, through py-eureka-client's own API
    # (get_application + up_instances, as its do_service path does).
    names = [a.name for a in apps.applications]
    start = time.perf_counter()
    for i in range(lookups):
        ups = apps.get_application(names[i % len(names)]).up_instances
        chosen = ups[i % len(ups)]
    elapsed = time.perf_counter() - start
    assert chosen is not None
    out["py_eureka_client_lookup_ns"] = elapsed / lookups * 1e9
    out["lookups"] = lookups
    print(json.dumps(out))


if __name__ == "__main__":
    main()
