"""gunicorn configuration that registers the server (not each worker) with Eureka.

    REGISTRY_URL=http://127.0.0.1:8761/eureka/ REGISTRY_APP_NAME=hello-wsgi \
        gunicorn -c examples/python/gunicorn.conf.py --preload -w 4 -b 127.0.0.1:8000 \
        --chdir examples/python wsgi_app:app

One gunicorn server is one Eureka instance (one host:port), however many workers it forks, so
the registration lives in the master process:

* ``when_ready`` runs in the master once the listening socket is bound, before any worker is
  forked: it creates the client with the real port and starts it. The client's background
  thread then lives in the master; workers come and go (and are restarted) without touching it.
* ``on_exit`` runs in the master at shutdown: it deregisters (a DELETE; DOWN only if that fails).
* Workers inherit a copy of the ``client`` object but must not use it: in a worker every call
  raises ``registrar.ForkedError`` (and never hangs). ``post_worker_init`` below shows it.

This works the same with and without ``--preload``. With ``--preload`` the application module
is imported in the master before forking; do not create the client at import time in a
worker-imported module without ``--preload``, or every worker would register the same instance.
"""

import os

import registrar

client = None  # created in the master, in when_ready


def when_ready(server):
    global client
    host, port = server.LISTENERS[0].sock.getsockname()[:2]
    base = f"http://{host}:{port}"
    client = registrar.Client(
        port=port,
        hostname=os.environ.get("REGISTRY_HOSTNAME") or host,
        ip_address=os.environ.get("REGISTRY_IP_ADDRESS") or host,
        health_check_url=f"{base}/health",
        status_page_url=f"{base}/health",
        home_page_url=f"{base}/",
    )
    client.up()
    client.start()
    server.log.info("registrar: registering %s/%s", client.app_name, client.instance_id)


def post_worker_init(worker):
    # Only to show the rule: the master's client is not usable in a worker.
    try:
        client.info()
        worker.log.warning("registrar: the master's client answered in a worker (unexpected)")
    except registrar.ForkedError:
        worker.log.info("registrar: worker %s leaves the registration to the master", worker.pid)


def on_exit(server):
    if client is not None:
        try:
            client.close()
            server.log.info("registrar: deregistered %s/%s", client.app_name, client.instance_id)
        except registrar.RegistrarError as e:
            server.log.warning("registrar: deregistration incomplete: %s", e)
