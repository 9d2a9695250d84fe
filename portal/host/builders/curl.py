"""curl: fetch one small document over plain HTTP, with every limit fixed.

The mesh directory (:mod:`meshnet.directory`) fetches each node's
``/api/v1/node`` from inside the managed node's network namespace (in the
lab the worker lives in the machine's own namespace, so Python's own HTTP
client would reach the wrong network). The other node is untrusted, so the
options are not the caller's to choose:

- ``-q`` first: no ``~/.curlrc`` or other config file is read;
- ``--proto =http``: plain HTTP only (no file://, no gopher, no TLS), and
  no ``--location``, with ``--max-redirs 0``: a redirect is never followed;
- ``--connect-timeout`` and ``--max-time`` bound the whole exchange;
- ``--max-filesize`` refuses a declared-too-big answer before it starts,
  and the command's output cap (one byte more than the limit) catches one
  that does not declare its size: the caller sees ``truncated``;
- ``--fail``: an HTTP error status is a failed fetch, not a body;
- ``--noproxy *``, ``--globoff``: no proxy, the URL is taken literally.

The URL is built here from a validated IP address and a fixed path; no
part of it comes from the other node.
"""

from __future__ import annotations

import ipaddress

from .. import validate
from ..commands import Command
from ..errors import InvalidValue

MAX_BODY_BYTES = 1024 * 1024
_PATH_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-_."
)


def fetch_http(
    address: str,
    path: str,
    *,
    port: int = 80,
    max_bytes: int = 32 * 1024,
    connect_timeout: float = 2.0,
    max_time: float = 4.0,
) -> Command:
    """GET ``http://ADDRESS[:PORT]PATH`` with the limits above."""
    address = validate.ip_address(address)
    port = validate.port_number(port)
    if not path.startswith("/") or len(path) > 200 or not set(path) <= _PATH_CHARS:
        raise InvalidValue(f"{path[:40]!r} is not a plain URL path")
    max_bytes = validate.whole_number(max_bytes, minimum=1, maximum=MAX_BODY_BYTES)
    connect_timeout = validate.positive_seconds(connect_timeout, maximum=30)
    max_time = validate.positive_seconds(max_time, maximum=60)
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return Command(
        (
            "curl",
            "-q",
            "--silent",
            "--show-error",
            "--fail",
            "--globoff",
            "--noproxy",
            "*",
            "--proto",
            "=http",
            "--max-redirs",
            "0",
            "--connect-timeout",
            f"{connect_timeout:g}",
            "--max-time",
            f"{max_time:g}",
            "--max-filesize",
            str(max_bytes),
            "--header",
            "Accept: application/json",
            "--user-agent",
            "byzantium-directory/1",
            "--output",
            "-",
            f"http://{host}:{port}{path}",
        ),
        timeout=max_time + 2,
        check=False,
        output_cap=max_bytes + 1,
    )
