"""Duplicate address detection with arping, before a node takes an address.

Debian 12 ships two arpings: package ``arping`` (Thomas Habets, 2.23, the one
installed here and named by the Makefile) and ``iputils-arping``. Their flags
differ: iputils' DAD call is ``arping -D -c N -w S -I IF ADDR``, but in
Habets' arping ``-D`` only changes the display and ``-I`` does not exist. This
module targets Habets' arping (``arping --help`` prints "ARPing 2.23, by
Thomas Habets"); the argv is pinned in the tests:

    arping -0 -C 1 -c COUNT -w SECONDS -i IF ADDR

- ``-0`` sends the probe from 0.0.0.0, an RFC 5227 ARP probe: we do not claim
  the address while asking whether someone else holds it (Linux answers such
  probes for its own addresses).
- ``-C 1`` stops at the first answer; ``-c`` and ``-w`` bound the wait.
- ``-i`` names the interface (no guessing).

Exit code (checked against the real program between two namespaces): 0 when
at least one reply came (address in use), 1 when none came (free) **and also
1 for errors** such as an unknown interface. So the command runs with
``check=False`` and :func:`address_in_use` reads the statistics line
("N packets transmitted, M packets received") to tell the cases apart: no
statistics line means arping failed, which raises ``CommandFailed``.
"""

from __future__ import annotations

import re

from .. import validate
from ..commands import Command, CommandResult
from ..errors import CommandFailed

_STATISTICS = re.compile(r"(\d+) packets transmitted, (\d+) packets received")


def duplicate_address_probe(
    interface: str, address: str, *, count: int = 3, wait_seconds: int = 3
) -> Command:
    """Ask the link whether anyone already uses IPv4 ``address``."""
    count = validate.whole_number(count, minimum=1, maximum=20)
    wait_seconds = validate.whole_number(wait_seconds, minimum=1, maximum=30)
    return Command(
        (
            "arping",
            "-0",
            "-C",
            "1",
            "-c",
            str(count),
            "-w",
            str(wait_seconds),
            "-i",
            validate.interface_name(interface),
            validate.ipv4_address(address),
        ),
        timeout=wait_seconds + 5,
        check=False,
    )


def address_in_use(result: CommandResult) -> bool:
    """True when someone answered the probe, False when nobody did."""
    match = _STATISTICS.search(result.stdout)
    if match is None or result.timed_out or result.returncode not in (0, 1):
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}"
        raise CommandFailed(f"arping could not probe: {reason}", result)
    return int(match.group(2)) > 0
