#!/usr/bin/env python3
"""A TLS listener presenting a certificate one Eureka server cannot serve beside its good one
(a wrong host name, an expired certificate). It only shakes hands: the client must refuse the
certificate before any HTTP is sent.

    tls_listener.py CERT KEY PORTFILE [SECONDS]

Listens on 127.0.0.1 (a free port, written to PORTFILE once listening) and exits by itself
after SECONDS (default 120), so a forgotten listener cannot linger.
"""
import os
import socket
import ssl
import sys
import threading

cert, key, port_file = sys.argv[1], sys.argv[2], sys.argv[3]
lifetime = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)


def handshake(conn):
    with conn:
        conn.settimeout(5)
        try:
            context.wrap_socket(conn, server_side=True).close()
        except OSError:
            pass

def serve():
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handshake, args=(conn,), daemon=True).start()

threading.Thread(target=serve, daemon=True).start()
threading.Event().wait(lifetime)
