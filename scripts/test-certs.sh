#!/usr/bin/env bash
# Makes the throw-away certificates the TLS tests use (openssl CLI), in DIR:
#
#   ca.pem                       test CA (the registry's "company CA"); ca.key
#   server.pem  server.key       signed by ca.pem for localhost and 127.0.0.1
#   wrong-host.pem/.key          signed by ca.pem, but for wrong-host.invalid only
#   expired.pem/.key             signed by ca.pem for localhost and 127.0.0.1, expired yesterday
#   untrusted-ca.pem             a CA nobody signed anything with (trusting it trusts nothing)
#   client-ca.pem                the CA the mTLS server accepts client certificates from
#   client.pem  client.key       client certificate (EC key, SEC1 "EC PRIVATE KEY")
#   client-pkcs8.key             the same key as PKCS#8 ("PRIVATE KEY")
#   client-encrypted.key         the same key, encrypted (PKCS#8, password "secret")
#   client-rsa.pem client-rsa.key  a second client certificate with an RSA (PKCS#1) key
#   not-pem.txt                  a file that is not PEM
#
#   scripts/test-certs.sh DIR    (re)creates them unless DIR/.complete exists; prints DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
cd "$dir"
if [ -f .complete ]; then pwd; exit 0; fi

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.pkcs8" 2>/dev/null
  openssl ec -in "$1.pkcs8" -out "$1" 2>/dev/null; rm -f "$1.pkcs8"; }

ca() { # name, subject
  ec_key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

leaf() { # name, signing CA, days, extended key usage, subjectAltName (or "")
  local name=$1 ca=$2 days=$3 eku=$4 san=$5
  [ -f "$name.key" ] || ec_key "$name.key"
  openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$name.ext"
  # A negative -days puts notAfter before now: an expired certificate, made today.
  openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
    -days "$days" -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

ca ca "registrar test CA"
ca untrusted-ca "registrar untrusted test CA"
ca client-ca "registrar test client CA"
leaf server ca 30 serverAuth "DNS:localhost,IP:127.0.0.1"
leaf wrong-host ca 30 serverAuth "DNS:wrong-host.invalid"
leaf expired ca -1 serverAuth "DNS:localhost,IP:127.0.0.1"
leaf client client-ca 30 clientAuth ""
openssl pkcs8 -topk8 -nocrypt -in client.key -out client-pkcs8.key
openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:secret -in client.key -out client-encrypted.key
openssl genrsa -traditional -out client-rsa.key 2048 2>/dev/null
leaf client-rsa client-ca 30 clientAuth ""
echo "this is not a PEM file" >not-pem.txt
chmod 600 ./*.key
touch .complete
pwd
