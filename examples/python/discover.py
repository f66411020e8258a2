#!/usr/bin/env python3
"""discover: prints the UP instances of the application named on the command line, one per
line, as ``INSTANCE_ID host:port STATUS``, sorted by instance id, and exits 0 (also when the
application has no UP instance). One full fetch of the registry, then the answer from memory.

Configured by the REGISTRY_* environment like register.py (REGISTRY_URL, optionally
REGISTRY_USER / REGISTRY_PASSWORD and REGISTRY_TIMEOUT; no REGISTRY_APP_NAME needed):

    REGISTRY_URL=http://127.0.0.1:8761/eureka/ python examples/python/discover.py MY_AWSOME_GO_MS

Exit status: 0 success, 1 the registry could not be read (the reason on stderr), 2 usage or
configuration error.
"""

import sys

import registrar

READY_TIMEOUT = 15.0


def main(argv: list) -> int:
    if len(argv) != 2 or not argv[1]:
        print(f"usage: {argv[0]} APP_NAME   (REGISTRY_URL etc. in the environment)", file=sys.stderr)
        return 2
    try:
        discovery = registrar.Discovery()  # the REGISTRY_* environment
    except registrar.RegistrarError as e:
        print(f"discover: configuration: {e}", file=sys.stderr)
        return 2
    with discovery:
        try:
            discovery.wait_ready(timeout=READY_TIMEOUT)
            instances = discovery.instances(argv[1])
        except registrar.RegistrarError as e:
            print(f"discover: fetching the registry: {e}", file=sys.stderr)
            return 1
    for instance in instances:
        print(f"{instance.instance_id} {instance.host_name}:{instance.port} {instance.status.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
