"""A read-only client for babeld's local socket (``local-path PATH``).

babeld 1.12 (Debian 12) speaks a line protocol on that Unix socket. On
connect it sends a header ending in ``ok``::

    BABEL 1.0
    version babeld-1.12.1
    host vm
    my-id 60:a6:96:93:1d:58:de:a6
    ok

and ``dump`` answers with one ``add`` line per object, then ``ok``
(recorded from the real babeld, two namespaces joined by a veth pair)::

    add interface byzh-va up true ipv6 fe80::ecb4:ceff:fe4a:1d58
    add neighbour 55ddeb663eb0 address fe80::8013:1cff:fe86:7291 if byzh-va
        reach fff8 ureach 0000 rxcost 96 txcost 96 cost 96
    add xroute 10.99.0.1/32-0.0.0.0/0 prefix 10.99.0.1/32 from 0.0.0.0/0 metric 0
    add route 55ddeb664410 prefix 10.99.0.2/32 from 0.0.0.0/0 installed yes
        id 18:07:a0:d7:91:80:9a:14 metric 96 refmetric 0
        via fe80::8013:1cff:fe86:7291 if byzh-va
    ok

(each ``add`` is one line; wrapped here). After the kind and the object's
id every line is ``key value`` pairs, so the parser reads pairs and ignores
keys it does not know (``rtt``/``rttcost`` appear on neighbours only with
timestamps enabled; newer babeld versions add fields). An interface that is
down reads ``add interface NAME up false``.

Decisions: the socket is the read-only one (``local-path``, not
``local-path-readwrite``), and only ``dump`` is sent; the whole exchange has
one deadline (``timeout``) and a size cap, so a stuck or hostile peer cannot
hang or swell a page view; a missing socket or a refused connection raises
:class:`~portal.host.errors.HostError` saying babeld is not running.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import HostError

MAX_DUMP_BYTES = 4 * 1024 * 1024


class BabelNotRunning(HostError):
    """babeld's local socket is missing or nobody listens on it."""


@dataclass(frozen=True)
class BabelInterface:
    name: str
    up: bool
    ipv6: str | None = None
    ipv4: str | None = None


@dataclass(frozen=True)
class BabelNeighbour:
    """A babel speaker heard on one of our interfaces, with link quality."""

    id: str
    address: str
    interface: str
    reach: int  # bitmap of the last 16 hellos heard
    ureach: int
    rxcost: int
    txcost: int
    cost: int
    rtt: float | None = None  # milliseconds, when timestamps are enabled
    rttcost: int | None = None


@dataclass(frozen=True)
class BabelRoute:
    """A route learnt from a neighbour; ``installed`` is the chosen one."""

    id: str
    prefix: str
    source_prefix: str
    installed: bool
    router_id: str
    metric: int
    refmetric: int
    via: str
    interface: str


@dataclass(frozen=True)
class BabelXroute:
    """A route this node announces (redistributed from the kernel)."""

    id: str
    prefix: str
    source_prefix: str
    metric: int


@dataclass(frozen=True)
class BabelDump:
    version: str
    host: str
    my_id: str
    interfaces: tuple[BabelInterface, ...]
    neighbours: tuple[BabelNeighbour, ...]
    routes: tuple[BabelRoute, ...]
    xroutes: tuple[BabelXroute, ...]

    @property
    def installed_routes(self) -> tuple[BabelRoute, ...]:
        return tuple(route for route in self.routes if route.installed)


def _pairs(tokens: list[str]) -> dict[str, str]:
    return {tokens[i]: tokens[i + 1] for i in range(0, len(tokens) - 1, 2)}


def _int(value: str | None, base: int = 10, default: int = 0) -> int:
    try:
        return int(value, base) if value is not None else default
    except ValueError:
        return default


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def parse_dump(text: str) -> BabelDump:
    """Parse the header and the ``dump`` answer (both, as one text)."""
    header: dict[str, str] = {}
    interfaces: list[BabelInterface] = []
    neighbours: list[BabelNeighbour] = []
    routes: list[BabelRoute] = []
    xroutes: list[BabelXroute] = []
    lines = text.splitlines()
    if not lines or not lines[0].startswith("BABEL "):
        raise HostError("babeld's socket did not greet with BABEL")
    for line in lines[1:]:
        tokens = line.split()
        if not tokens or tokens[0] in ("ok", "BABEL"):
            continue
        if tokens[0] != "add" or len(tokens) < 3:
            if len(tokens) == 2:
                header.setdefault(tokens[0], tokens[1])
            continue
        kind, name, fields = tokens[1], tokens[2], _pairs(tokens[3:])
        if kind == "interface":
            interfaces.append(
                BabelInterface(
                    name=name,
                    up=fields.get("up") == "true",
                    ipv6=fields.get("ipv6"),
                    ipv4=fields.get("ipv4"),
                )
            )
        elif kind == "neighbour":
            neighbours.append(
                BabelNeighbour(
                    id=name,
                    address=fields.get("address", ""),
                    interface=fields.get("if", ""),
                    reach=_int(fields.get("reach"), 16),
                    ureach=_int(fields.get("ureach"), 16),
                    rxcost=_int(fields.get("rxcost")),
                    txcost=_int(fields.get("txcost")),
                    cost=_int(fields.get("cost")),
                    rtt=_float(fields.get("rtt")),
                    rttcost=_int(fields["rttcost"]) if "rttcost" in fields else None,
                )
            )
        elif kind == "route":
            routes.append(
                BabelRoute(
                    id=name,
                    prefix=fields.get("prefix", ""),
                    source_prefix=fields.get("from", ""),
                    installed=fields.get("installed") == "yes",
                    router_id=fields.get("id", ""),
                    metric=_int(fields.get("metric")),
                    refmetric=_int(fields.get("refmetric")),
                    via=fields.get("via", ""),
                    interface=fields.get("if", ""),
                )
            )
        elif kind == "xroute":
            xroutes.append(
                BabelXroute(
                    id=name,
                    prefix=fields.get("prefix", ""),
                    source_prefix=fields.get("from", ""),
                    metric=_int(fields.get("metric")),
                )
            )
    return BabelDump(
        version=header.get("version", ""),
        host=header.get("host", ""),
        my_id=header.get("my-id", ""),
        interfaces=tuple(interfaces),
        neighbours=tuple(neighbours),
        routes=tuple(routes),
        xroutes=tuple(xroutes),
    )


def _ends_with_status(buffer: bytes) -> bytes | None:
    """The final status line (ok/no/bad) once the buffer ends with one."""
    if not buffer.endswith(b"\n"):
        return None
    last = buffer.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    word = last.split(b" ", 1)[0]
    return word if word in (b"ok", b"no", b"bad") else None


def _read_until_status(
    sock: socket.socket, buffer: bytearray, start: int, deadline: float, limit: int
) -> bytes:
    """Read into ``buffer`` until the part after ``start`` ends in a status."""
    while True:
        status = _ends_with_status(bytes(buffer[start:]))
        if status is not None:
            return status
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HostError("babeld did not answer in time")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise HostError("babeld did not answer in time") from None
        if not chunk:
            raise HostError("babeld closed its socket before answering")
        buffer += chunk
        if len(buffer) > limit:
            raise HostError(f"babeld's answer is larger than {limit} bytes")


def read_dump(
    socket_path: Path, timeout: float = 2.0, *, max_bytes: int = MAX_DUMP_BYTES
) -> BabelDump:
    """Connect to babeld's local socket, ``dump``, and parse the answer."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(str(socket_path))
        except (FileNotFoundError, ConnectionRefusedError) as error:
            raise BabelNotRunning(
                f"babeld is not running (nothing listens on {socket_path}: "
                f"{error.strerror})"
            ) from None
        except TimeoutError:
            raise HostError("babeld did not accept the connection in time") from None
        except OSError as error:
            raise HostError(
                f"cannot connect to babeld at {socket_path}: {error}"
            ) from None
        buffer = bytearray()
        status = _read_until_status(sock, buffer, 0, deadline, max_bytes)
        if status != b"ok":
            raise HostError("babeld refused the connection")
        sock.sendall(b"dump\n")
        status = _read_until_status(sock, buffer, len(buffer), deadline, max_bytes)
        if status != b"ok":
            raise HostError("babeld refused the dump request")
    finally:
        sock.close()
    return parse_dump(buffer.decode("utf-8", errors="replace"))


def neighbours_by_interface(
    neighbours: Iterable[BabelNeighbour],
) -> dict[str, list[BabelNeighbour]]:
    """Neighbours grouped by the interface they were heard on."""
    grouped: dict[str, list[BabelNeighbour]] = {}
    for neighbour in neighbours:
        grouped.setdefault(neighbour.interface, []).append(neighbour)
    return grouped
