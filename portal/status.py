"""A snapshot of the node for the dashboard, and how to show it to people.

The web process never runs a system command, so the dashboard cannot ask
the system itself. The routine job ``portal.sample_status``
(:mod:`portal.jobs`) calls :func:`collect_status` in the worker every few
seconds and stores the result as one JSON row
(:class:`portal.models.NodeStatus`); the dashboard reads that row and says
how old it is.

Everything here is a plain function: the collection takes a
:class:`~portal.host.node.Host` (tests pass one with a
:class:`~portal.host.runner.RecordingRunner` and recorded ``ip -j`` output)
and a babeld socket path (tests serve a recorded dump on a socket of their
own). Each part fails on its own: when babeld is not running the interfaces
are still shown, with the reason babeld could not be read.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal.host.builders import inspect
from portal.host.commands import Command
from portal.host.errors import HostError
from portal.host.node import Host

# A snapshot older than this is called stale on the dashboard: the job runs
# every 15 seconds, so four missed runs mean the worker is not sampling.
STALE_AFTER_SECONDS = 60
PROC_UPTIME = Path("/proc/uptime")
# Installed babel routes kept in a snapshot (a node with 1000 routes is a
# very large mesh; the pages say when the list was cut).
MAX_STORED_ROUTES = 1000


def _iw_dev_command() -> Command:
    """``iw dev``: which interfaces are wireless (no radio is not an error)."""
    return Command(argv=("iw", "dev"), timeout=5, check=False)


def parse_iw_dev(text: str) -> frozenset[str]:
    """Interface names from ``iw dev`` output (lines ``Interface wlan0``)."""
    names = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "Interface":
            names.add(parts[1])
    return frozenset(names)


def _plain(obj: Any) -> Any:
    """A reader's dataclass as plain JSON types (tuples become lists), so the
    snapshot reads back from the database exactly as it was collected."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def read_uptime(path: Path = PROC_UPTIME) -> float | None:
    """Seconds since the machine booted, or None when it cannot be read."""
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def collect_interfaces(host: Host) -> tuple[list[dict[str, Any]], str]:
    """The interfaces as JSON-able dicts, and an error text ('' when fine)."""
    from portal.host.readers import parse_ip_addr

    wireless: frozenset[str] = frozenset()
    try:
        iw = host.runner.run(_iw_dev_command())
        if iw.ok:
            wireless = parse_iw_dev(iw.stdout)
    except HostError:
        pass  # no iw, no radios: every interface is simply not wireless
    try:
        result = host.runner.run(inspect.addr_show())
        interfaces = parse_ip_addr(result.stdout, wireless=wireless)
    except (HostError, ValueError) as error:
        return [], str(error)
    return [_plain(info) for info in interfaces], ""


def collect_babel(socket_path: Path, *, timeout: float = 2.0) -> dict[str, Any]:
    """babeld's neighbours and route counts from its read-only local socket."""
    from portal.host.babel import read_dump

    try:
        dump = read_dump(socket_path, timeout=timeout)
    except (OSError, HostError, ValueError) as error:
        return {
            "available": False,
            "error": str(error) or error.__class__.__name__,
            "socket": str(socket_path),
            "neighbours": [],
        }
    return {
        "available": True,
        "error": "",
        "socket": str(socket_path),
        "my_id": dump.my_id,
        "version": dump.version,
        "neighbours": [_plain(n) for n in dump.neighbours],
        "route_count": len(dump.routes),
        "xroute_count": len(dump.xroutes),
        # For the mesh status pages (meshnet.status): babel's interfaces and
        # the routes it chose, capped so a huge mesh cannot swell the row.
        "interfaces": [_plain(i) for i in dump.interfaces],
        "routes": [_plain(r) for r in dump.installed_routes[:MAX_STORED_ROUTES]],
        "xroutes": [_plain(x) for x in dump.xroutes[:MAX_STORED_ROUTES]],
    }


def _interface_details(host: Host, interfaces: list[dict[str, Any]]) -> dict[str, Any]:
    """Drivers and radio abilities (``iw phy``), from the meshnet app."""
    from meshnet.wireless import collect_interface_details

    try:
        return collect_interface_details(host, interfaces)
    except (HostError, OSError, ValueError) as error:
        return {"error": str(error), "drivers": {}, "wireless": {}, "radios": {}}


def collect_status(
    host: Host, *, babel_socket: Path, uptime_path: Path = PROC_UPTIME
) -> dict[str, Any]:
    """Everything the dashboard shows about the system, as JSON-able data."""
    started = time.monotonic()
    interfaces, interfaces_error = collect_interfaces(host)
    return {
        "version": 1,
        "host_mode": host.mode,
        "namespace": host.namespace,
        "uptime_seconds": read_uptime(uptime_path),
        "interfaces": interfaces,
        "interfaces_error": interfaces_error,
        "babel": collect_babel(babel_socket),
        "interface_details": _interface_details(host, interfaces),
        "duration": round(time.monotonic() - started, 3),
    }


# -- formatting for people ---------------------------------------------------

_BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(value: int | float | None) -> str:
    """1536 -> "1.5 KiB"; binary units, the number in the reader's locale."""
    if value is None:
        return "—"
    if value < 1024:
        return ngettext("%(count)s byte", "%(count)s bytes", int(value)) % {
            "count": number_format(int(value))
        }
    amount = float(value)
    unit_index = 0
    amount /= 1024
    while amount >= 1024 and unit_index < len(_BYTE_UNITS) - 1:
        amount /= 1024
        unit_index += 1
    unit = _BYTE_UNITS[unit_index]
    # Translators: a size such as "1.5 MiB"; unit is KiB, MiB, GiB ...
    return _("%(amount)s %(unit)s") % {
        "amount": number_format(amount, decimal_pos=1 if amount < 100 else 0),
        "unit": unit,
    }


def format_count(value: int | None) -> str:
    """A plain count with the locale's thousands grouping."""
    if value is None:
        return "—"
    return number_format(value, force_grouping=True)


def format_duration(seconds: float | None, *, parts: int = 2) -> str:
    """3700 -> "1 hour 1 minute"; at most ``parts`` units, largest first."""
    if seconds is None:
        return "—"
    remaining = max(0, int(seconds))
    units = (
        (86400, lambda n: ngettext("%(count)d day", "%(count)d days", n)),
        (3600, lambda n: ngettext("%(count)d hour", "%(count)d hours", n)),
        (60, lambda n: ngettext("%(count)d minute", "%(count)d minutes", n)),
        (1, lambda n: ngettext("%(count)d second", "%(count)d seconds", n)),
    )
    # The first non-zero unit and the one after it: "1 day 3 hours", and
    # "1 day" (not "1 day 5 minutes") when the hours are zero.
    counts = []
    for size, word in units:
        count, remaining = divmod(remaining, size)
        counts.append((count, word))
    first = next((i for i, (count, _w) in enumerate(counts) if count), len(counts) - 1)
    words = [
        word(count) % {"count": count}
        for count, word in counts[first : first + parts]
        if count
    ]
    if not words:
        return ngettext("%(count)d second", "%(count)d seconds", 0) % {"count": 0}
    return " ".join(words)
