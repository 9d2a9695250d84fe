"""Read-only inspection with ``ip -j``: interfaces, addresses, links, routes.

These commands change nothing, so they run with ``check=True`` (a failure is
a real problem, e.g. an unknown device) and a raised output cap: ``-s -d``
output is about 2 KiB per interface and a busy node may have dozens. Their
output is parsed by :mod:`portal.host.readers`.

IPv4 routes are listed without ``-4`` (ip's default family is IPv4), IPv6
routes with ``-6``, exactly as an operator would type them.
"""

from __future__ import annotations

from typing import Literal

from django.utils.translation import gettext as _

from .. import validate
from ..commands import Command
from ..errors import InvalidValue

INSPECT_OUTPUT_CAP = 4 * 1024 * 1024
INSPECT_TIMEOUT = 10.0

# Route tables by name as iproute2 knows them, or a number.
ROUTE_TABLE_NAMES = frozenset({"main", "local", "default", "all"})


def _inspect(*argv: str) -> Command:
    return Command(argv, timeout=INSPECT_TIMEOUT, output_cap=INSPECT_OUTPUT_CAP)


def addr_show(interface: str | None = None) -> Command:
    """Addresses, details and counters of every interface, or of one."""
    argv = ("ip", "-j", "-s", "-d", "addr", "show")
    if interface is not None:
        argv += ("dev", validate.interface_name(interface))
    return _inspect(*argv)


def link_show(interface: str | None = None) -> Command:
    """Links (no addresses) of every interface, or of one."""
    argv = ("ip", "-j", "link", "show")
    if interface is not None:
        argv += ("dev", validate.interface_name(interface))
    return _inspect(*argv)


def route_table(table: str | int) -> str:
    """A routing table: a name iproute2 knows, or a number 1..2**32-1."""
    if isinstance(table, str) and table in ROUTE_TABLE_NAMES:
        return table
    if isinstance(table, int):
        return str(validate.whole_number(table, minimum=1, maximum=2**32 - 1))
    raise InvalidValue(
        _("%(value)s is not a routing table.") % {"value": repr(table)[:40]}
    )


def route_show(*, family: Literal[4, 6] = 4, table: str | int | None = None) -> Command:
    """The routes of one family, from the main table or the one given."""
    if family == 4:
        argv: tuple[str, ...] = ("ip", "-j", "route", "show")
    elif family == 6:
        argv = ("ip", "-j", "-6", "route", "show")
    else:
        raise InvalidValue(
            _("%(value)s is not an address family (4 or 6).")
            % {"value": repr(family)[:40]}
        )
    if table is not None:
        argv += ("table", route_table(table))
    return _inspect(*argv)
