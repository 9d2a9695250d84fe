"""Validators for every value that may reach an argv or a config file.

Each returns the value in its canonical form or raises
:class:`~portal.host.errors.InvalidValue` with a message an operator can act
on. Forms call the same functions, so the web page and the worker agree on
what is valid. They check the shape of the value, never "escape" it: a value
that needs escaping is refused.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import InvalidValue

# Linux interface names: at most 15 bytes, no '/', no whitespace, not '.'
# or '..'. We are stricter (ASCII letters, digits, '-', '_', '.') so the name
# is also safe in every config format we write.
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def interface_name(value: str) -> str:
    """A network interface name such as ``wlan0`` or ``mesh-1``."""
    if not isinstance(value, str) or not _IFNAME.match(value) or value in (".", ".."):
        raise InvalidValue(
            f"{value!r} is not a valid interface name (1-15 letters, digits, '-', '_' or '.')"
        )
    return value


def namespace_name(value: str) -> str:
    """A network namespace name (also a file name under /run/netns)."""
    if not isinstance(value, str) or not _NAMESPACE.match(value):
        raise InvalidValue(f"{value!r} is not a valid namespace name")
    return value


def mac_address(value: str) -> str:
    """A MAC address, returned lower-case with colons."""
    candidate = value.strip().lower().replace("-", ":") if isinstance(value, str) else ""
    if not _MAC.match(candidate):
        raise InvalidValue(f"{value!r} is not a MAC address (six pairs of hex digits)")
    return candidate


def ipv4_address(value: str) -> str:
    """A single IPv4 address."""
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise InvalidValue(f"{value!r} is not an IPv4 address")


def ip_address(value: str) -> str:
    """An IPv4 or IPv6 address."""
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise InvalidValue(f"{value!r} is not an IP address")


def ip_interface(value: str) -> str:
    """An address with its prefix length, e.g. ``10.12.0.1/24``."""
    try:
        return str(ipaddress.ip_interface(value))
    except (ValueError, TypeError):
        raise InvalidValue(f"{value!r} is not an address with a prefix (like 10.0.0.1/24)")


def ip_network(value: str) -> str:
    """A network prefix, e.g. ``10.12.0.0/24`` (host bits must be zero)."""
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except (ValueError, TypeError):
        raise InvalidValue(f"{value!r} is not a network prefix (like 10.12.0.0/24)")


def port_number(value: int) -> int:
    """A TCP/UDP port."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidValue(f"{value!r} is not a port number (1-65535)")
    return value


def positive_seconds(value: float, *, maximum: float = 86400 * 30) -> float:
    """A positive duration in seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise InvalidValue(f"{value!r} is not a duration between 0 and {maximum:g} seconds")
    return value


def pid(value: int) -> int:
    """A process id."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 < value < 2**22:
        raise InvalidValue(f"{value!r} is not a process id")
    return value
