#!/usr/bin/env bash
# Builds, starts and stops the real Eureka server the tests run against
# (tests/eureka-server: Spring Cloud Netflix Eureka Server with fast test settings).
#
#   scripts/test-eureka.sh jar                 build the jar once (cached by source hash); print its path
#   scripts/test-eureka.sh start DIR [--auth] [--port N] [--tls CERTS [--mtls]]
#                                              start a server on a free loopback port (or N), wait
#                                              until GET /eureka/apps answers, print its service URL.
#                                              DIR receives pid, port, url, log. --auth requires
#                                              basic auth (user registrar, password from
#                                              REGISTRAR_TEST_PASSWORD, default s3cret-pw).
#                                              --tls serves https with CERTS/server.pem (made by
#                                              scripts/test-certs.sh CERTS); --mtls also requires
#                                              a client certificate signed by CERTS/client-ca.pem.
#                                              --peer URL replicates with the Eureka server at
#                                              URL (eureka.server.my-url set to our own URL, URL
#                                              in eureka.client.service-url.defaultZone).
#   scripts/test-eureka.sh stop DIR            stop the server started in DIR (no-op if none)
#
# Two Spring Cloud lines, same sources: REGISTRAR_TEST_EUREKA_LINE=boot4 (default: 2025.1 on
# Boot 4, Eureka 5.0, pom.xml) or boot3 (2025.0 on Boot 3.5, Eureka 4.3, pom-boot3.xml) selects
# the jar that `jar` builds and `start` runs.
#
# The server's output goes to DIR/log, never to our stdout/stderr, so a stray server cannot
# hold a CI pipe open.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
project="$root/tests/eureka-server"
cache="${REGISTRAR_CACHE_DIR:-$root/.cache}"

jar() {
  local line=${REGISTRAR_TEST_EUREKA_LINE:-boot4} pom=pom.xml out=target name=eureka-server
  case $line in
    boot4) ;;
    boot3) pom=pom-boot3.xml out=target-boot3 name=eureka-server-boot3 ;;
    *) echo "REGISTRAR_TEST_EUREKA_LINE=$line: expected boot4 or boot3" >&2; exit 2 ;;
  esac
  local hash
  hash=$(cat "$project/$pom" $(find "$project/src" -type f | sort) | sha256sum | cut -c1-16)
  local jar="$cache/$name-$hash.jar"
  if [ ! -f "$jar" ]; then
    mkdir -p "$cache"
    echo "building the test Eureka server ($line, Maven, once)..." >&2
    (cd "$project" && mvn -q -B -DskipTests -f "$pom" package >&2)
    cp "$project/$out/eureka-server.jar" "$jar.tmp" && mv "$jar.tmp" "$jar"
  fi
  echo "$jar"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local dir=$1; shift
  local auth=false port="" certs="" mtls=false peer=""
  while [ $# -gt 0 ]; do
    case $1 in
      --auth) auth=true ;;
      --peer) peer=$2; shift ;;
      --port) port=$2; shift ;;
      --tls) certs=$(cd "$2" && pwd); shift ;;
      --mtls) mtls=true ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
  done
  mkdir -p "$dir"
  local jarfile; jarfile=$(jar)
  [ -n "$port" ] || port=$(free_port)
  # https: Spring Boot reads the PEM files itself (server.ssl.*); curl checks it like a client.
  local scheme=http tls_args=() curl_tls=()
  if [ -n "$certs" ]; then
    scheme=https
    tls_args=(--server.ssl.certificate="file:$certs/server.pem"
              --server.ssl.certificate-private-key="file:$certs/server.key")
    curl_tls=(--cacert "$certs/ca.pem")
    if $mtls; then
      tls_args+=(--server.ssl.trust-certificate="file:$certs/client-ca.pem"
                 --server.ssl.client-auth=need)
      curl_tls+=(--cert "$certs/client.pem" --key "$certs/client.key")
    fi
  fi
  local peer_args=()
  [ -z "$peer" ] || peer_args=(--eureka.server.my-url="$scheme://127.0.0.1:$port/eureka/"
                              --eureka.client.service-url.defaultZone="$peer")
  # Small heap, quick JIT and serial GC: a test registry, started often, on a 2-core machine.
  setsid java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k \
    -jar "$jarfile" --server.port="$port" --server.address=127.0.0.1 \
    --registrar.test.auth="$auth" \
    --spring.security.user.name=registrar \
    --spring.security.user.password="${REGISTRAR_TEST_PASSWORD:-s3cret-pw}" \
    "${tls_args[@]}" "${peer_args[@]}" \
    </dev/null >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  echo "$port" >"$dir/port"
  local url="$scheme://127.0.0.1:$port/eureka/"
  echo "$url" >"$dir/url"
  local creds=()
  $auth && creds=(-u "registrar:${REGISTRAR_TEST_PASSWORD:-s3cret-pw}")
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "${creds[@]}" "${curl_tls[@]}" -H 'Accept: application/json' "${url}apps" 2>/dev/null; then
      echo "$url"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "the test Eureka server exited during start-up; its log:" >&2
      tail -30 "$dir/log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "the test Eureka server did not answer within 60 s; log in $dir/log" >&2
  stop "$dir"
  return 1
}

stop() {
  local dir=$1
  [ -f "$dir/pid" ] || return 0
  local pid; pid=$(cat "$dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid"
}

cmd=${1:-}; shift || true
case $cmd in
  jar) jar ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  *) echo "usage: $0 jar | start DIR [--auth] [--port N] [--tls CERTS [--mtls]] [--peer URL] | stop DIR" >&2; exit 2 ;;
esac
