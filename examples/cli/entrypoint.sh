#!/bin/sh
# Container entrypoint: register the container's service in Eureka for as long as it runs.
# The advertised address defaults to the container's own IP (the first non-loopback IPv4);
# behind NAT, set REGISTRY_HOSTNAME / REGISTRY_IP_ADDRESS / REGISTRY_PORT to what callers reach.
# `exec` makes registrar the process that receives `docker stop`'s SIGTERM.
set -e
: "${REGISTRY_URL:?set REGISTRY_URL to the Eureka service URL(s)}"
exec registrar run -- "$@"
