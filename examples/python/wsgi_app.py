"""A minimal WSGI application for examples/python/gunicorn.conf.py."""

import json
import os


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/health":
        body = {"status": "UP", "worker": os.getpid()}
    else:
        body = {"hello": "wsgi", "worker": os.getpid()}
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
