"""ping (iputils): one ICMP echo out of a chosen interface.

The gateway's uplink check asks "does the Internet answer through this
interface?", so the packet is bound to the interface (``-I``): a default
route learnt from another gateway of the mesh cannot make a dead uplink
look alive. ``-n``: no name lookups (the check must not depend on DNS);
one packet; a bounded wait. A non-zero exit means "no reply", a normal
answer, so the command does not raise on it.
"""

from __future__ import annotations

from .. import validate
from ..commands import Command


def echo_via(target: str, interface: str, *, wait_seconds: int = 1) -> Command:
    """``ping -n -q -c 1 -W WAIT -I INTERFACE TARGET`` (IPv4 target)."""
    wait = validate.whole_number(wait_seconds, minimum=1, maximum=10)
    return Command(
        (
            "ping",
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            str(wait),
            "-I",
            validate.interface_name(interface),
            validate.ipv4_address(target),
        ),
        timeout=wait + 5,
        check=False,
    )
