"""The baseline of the web benchmark: gunicorn serving one static file.

A WSGI app with no framework that returns the bytes of a file read once at
start-up: the ceiling of what gunicorn itself can serve on this machine, run
with the same worker settings as the portal so the ratio shows what Django
and our pages cost on top.
"""

import os
from pathlib import Path

_BODY = Path(os.environ.get("BENCH_STATIC_FILE", __file__)).read_bytes()
_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Length", str(len(_BODY))),
]


def application(environ, start_response):
    start_response("200 OK", list(_HEADERS))
    return [_BODY]
