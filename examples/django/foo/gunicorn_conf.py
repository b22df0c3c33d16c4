"""Optional gunicorn settings for running the image on a shared network.

The article's entrypoint binds `[::]:80`, as it should inside a container with its own network
namespace (slipway run's default: publish it with `-p PORT:80`). Where the container shares the
host's network (`--network host`), port 80 may be taken, so start the unchanged entrypoint with
    GUNICORN_CMD_ARGS=--config=python:foo.gunicorn_conf  FOO_BIND=127.0.0.1:PORT
The command line's --bind wins over any config file, so the address is replaced in the
on_starting hook, which runs before gunicorn opens its listening sockets.
"""
import os


def on_starting(server):
    bind = os.environ.get("FOO_BIND")
    if bind:
        server.cfg.set("bind", bind.split(","))
