"""Connection tracking: forget the flows of one client (``conntrack -D``).

The captive portal needs this twice. When a client is let through, flows it
opened while held (a kept-alive HTTP connection whose first packet was
redirected to the portal) still carry their NAT mapping in the kernel's
connection table; unless they are forgotten, that connection keeps talking
to the portal. When a client is sent back to the portal, its live flows must
stop: once forgotten, their next packet is looked at afresh by the firewall
and refused.

``conntrack -D`` exits 1 when no flow matched, which for us is a normal
answer, so the commands are built with ``check=False`` and
:func:`deleted_count` reads the result. Filters are on the original
direction (``-s``: who opened the flow; ``-d``: who it was opened to), which
is also how redirected flows are found: their original tuple still names the
client and the address it asked for, only the reply tuple names the node.
"""

from __future__ import annotations

import ipaddress
import re

from .. import validate
from ..commands import Command, CommandResult
from ..errors import CommandFailed

CONNTRACK_TIMEOUT = 30.0
_DELETED = re.compile(r"(\d+) flow entries have been deleted")


def _family(address: str) -> str:
    return "ipv6" if ipaddress.ip_address(address).version == 6 else "ipv4"


def delete_from(source: str) -> Command:
    """Forget every flow opened by ``source`` (``conntrack -D -f FAM -s IP``)."""
    address = validate.ip_address(source)
    return Command(
        ("conntrack", "-D", "-f", _family(address), "-s", address),
        timeout=CONNTRACK_TIMEOUT,
        check=False,
    )


def delete_to(destination: str) -> Command:
    """Forget every flow opened towards ``destination`` (``-d IP``)."""
    address = validate.ip_address(destination)
    return Command(
        ("conntrack", "-D", "-f", _family(address), "-d", address),
        timeout=CONNTRACK_TIMEOUT,
        check=False,
    )


def list_from(source: str) -> Command:
    """The flows opened by ``source``, one per line (``conntrack -L``)."""
    address = validate.ip_address(source)
    return Command(
        ("conntrack", "-L", "-f", _family(address), "-s", address),
        timeout=CONNTRACK_TIMEOUT,
    )


def deleted_count(result: CommandResult) -> int:
    """How many flows a ``conntrack -D`` removed; raises when it really failed.

    conntrack reports the count on stderr ("N flow entries have been
    deleted") and exits 1 when N is 0; any other failure (module missing,
    bad option, timeout) raises :class:`CommandFailed`.
    """
    match = _DELETED.search(result.stderr) or _DELETED.search(result.stdout)
    if match is None and result.ok and not (result.stderr or result.stdout):
        return 0  # a recording runner (dry-run) answers empty
    if result.timed_out or match is None:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}"
        raise CommandFailed(f"{' '.join(result.argv)} failed: {reason}", result)
    count = int(match.group(1))
    if result.returncode not in (0, 1) or (result.returncode == 1 and count):
        raise CommandFailed(
            f"{' '.join(result.argv)} failed (exit code {result.returncode})", result
        )
    return count
