#!/usr/bin/env bash
# Makes the test certificates and starts the two shared TLS registries, side by side:
#
#   scripts/test-tls-servers.sh RUN_DIR
#
# RUN_DIR/certs (scripts/test-certs.sh), RUN_DIR/shared-tls (https, server certificate from
# certs/ca.pem) and RUN_DIR/shared-mtls (https + client certificate from certs/client-ca.pem
# required). Prints the variables the test suites read, as export lines for eval:
# REGISTRAR_TEST_TLS_CERTS, REGISTRAR_TEST_EUREKA_TLS_URL, REGISTRAR_TEST_EUREKA_MTLS_URL.
# The caller stops both servers (scripts/test-eureka.sh stop DIR), also on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${1:?usage: $0 RUN_DIR}
certs=$("$root/scripts/test-certs.sh" "$run_dir/certs")
"$root/scripts/test-eureka.sh" start "$run_dir/shared-tls" --tls "$certs" >/dev/null & tls=$!
"$root/scripts/test-eureka.sh" start "$run_dir/shared-mtls" --tls "$certs" --mtls >/dev/null & mtls=$!
wait $tls && wait $mtls
echo "export REGISTRAR_TEST_TLS_CERTS='$certs'"
echo "export REGISTRAR_TEST_EUREKA_TLS_URL='$(cat "$run_dir/shared-tls/url")'"
echo "export REGISTRAR_TEST_EUREKA_MTLS_URL='$(cat "$run_dir/shared-mtls/url")'"
