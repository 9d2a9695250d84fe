"""Validators for every value that may reach an argv or a config file.

Each returns the value in its canonical form or raises
:class:`~portal.host.errors.InvalidValue` with a message an operator can act
on. Forms call the same functions, so the web page and the worker agree on
what is valid. They check the shape of the value, never "escape" it: a value
that needs escaping is refused.

The messages reach the operator through forms, so they are translatable
(``gettext`` at the moment of the check, in the request's language) and use
named placeholders.

A few values are legitimately free text (an ESSID may hold spaces, quotes and
``;``). :func:`essid` and :func:`free_text` accept those, refusing only
control characters, NUL and over-long values: they reach a program as one
literal argv element, and no shell ever sees them.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from django.utils.translation import gettext as _

from .errors import InvalidValue

# Linux interface names: at most 15 bytes, no '/', no whitespace, not '.'
# or '..'. We are stricter (ASCII letters, digits, '-', '_', '.') so the name
# is also safe in every config format we write.
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}\Z")
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")


def interface_name(value: str) -> str:
    """A network interface name such as ``wlan0`` or ``mesh-1``."""
    if not isinstance(value, str) or not _IFNAME.fullmatch(value):
        raise InvalidValue(
            _(
                "%(value)s is not a valid interface name "
                "(1 to 15 letters, digits, '-', '_' or '.')."
            )
            % {"value": _shown(value)}
        )
    return value


def namespace_name(value: str) -> str:
    """A network namespace name (also a file name under /run/netns)."""
    if not isinstance(value, str) or not _NAMESPACE.fullmatch(value):
        raise InvalidValue(
            _("%(value)s is not a valid namespace name.") % {"value": _shown(value)}
        )
    return value


def mac_address(value: str) -> str:
    """A MAC address, returned lower-case with colons."""
    candidate = value.lower().replace("-", ":") if isinstance(value, str) else ""
    if not _MAC.fullmatch(candidate):
        raise InvalidValue(
            _("%(value)s is not a MAC address (six pairs of hex digits).")
            % {"value": _shown(value)}
        )
    return candidate


def ipv4_address(value: str) -> str:
    """A single IPv4 address."""
    try:
        _plain(value)
        return str(ipaddress.IPv4Address(value))
    except (ValueError, TypeError):
        raise InvalidValue(
            _("%(value)s is not an IPv4 address.") % {"value": _shown(value)}
        ) from None


def ip_address(value: str) -> str:
    """An IPv4 or IPv6 address."""
    try:
        _plain(value)
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise InvalidValue(
            _("%(value)s is not an IP address.") % {"value": _shown(value)}
        ) from None


def ip_interface(value: str) -> str:
    """An address with its prefix length, e.g. ``10.12.0.1/24``."""
    try:
        _plain(value)
        return str(ipaddress.ip_interface(value))
    except (ValueError, TypeError):
        raise InvalidValue(
            _("%(value)s is not an address with a prefix (like 10.0.0.1/24).")
            % {"value": _shown(value)}
        ) from None


def ip_network(value: str) -> str:
    """A network prefix, e.g. ``10.12.0.0/24`` (host bits must be zero)."""
    try:
        _plain(value)
        return str(ipaddress.ip_network(value, strict=True))
    except (ValueError, TypeError):
        raise InvalidValue(
            _("%(value)s is not a network prefix (like 10.12.0.0/24).")
            % {"value": _shown(value)}
        ) from None


def port_number(value: int) -> int:
    """A TCP/UDP port."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidValue(
            _("%(value)s is not a port number (1 to 65535).") % {"value": _shown(value)}
        )
    return value


def positive_seconds(value: float, *, maximum: float = 86400 * 30) -> float:
    """A positive duration in seconds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= maximum
    ):
        raise InvalidValue(
            _("%(value)s is not a duration between 0 and %(maximum)s seconds.")
            % {"value": _shown(value), "maximum": f"{maximum:g}"}
        )
    return value


def pid(value: int) -> int:
    """A process id."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 < value < 2**22:
        raise InvalidValue(
            _("%(value)s is not a process id.") % {"value": _shown(value)}
        )
    return value


def whole_number(value: int, *, minimum: int, maximum: int) -> int:
    """An integer within ``minimum..maximum`` (bools refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not minimum <= value <= maximum
    ):
        raise InvalidValue(
            _("%(value)s is not a whole number from %(minimum)s to %(maximum)s.")
            % {"value": _shown(value), "minimum": minimum, "maximum": maximum}
        )
    return value


# nft identifiers (tables, chains, sets): stricter than nft's own grammar so
# the name is also a plain word in every file we render.
_NFT_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}\Z")


def nft_identifier(value: str) -> str:
    """The name of an nftables table, chain or set, e.g. ``byz_captive``."""
    if not isinstance(value, str) or not _NFT_IDENTIFIER.fullmatch(value):
        raise InvalidValue(
            _(
                "%(value)s is not a valid firewall name (a letter, then up to "
                "31 letters, digits or '_')."
            )
            % {"value": _shown(value)}
        )
    return value


# Paths handed to a program as an argument (``nft -f PATH``). Only the
# characters our own folders use; a path with spaces or quotes is refused.
_ARG_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]{0,1023}\Z")


def absolute_path(value: str) -> str:
    """An absolute, normalised file path that is safe as a single argument."""
    if (
        not isinstance(value, str)
        or not _ARG_PATH.fullmatch(value)
        or "//" in value
        or any(part in (".", "..") for part in value.split("/"))
    ):
        raise InvalidValue(
            _("%(value)s is not an acceptable absolute file path.")
            % {"value": _shown(value)}
        )
    return value


def free_text(value: str, *, max_bytes: int = 255) -> str:
    """Printable text of at most ``max_bytes`` UTF-8 bytes.

    Spaces, quotes and punctuation are allowed; control characters (newline,
    tab, NUL, escape ...), surrogates and unassigned code points are not.
    """
    if (
        not isinstance(value, str)
        or not value
        or len(value.encode("utf-8", errors="replace")) > max_bytes
        or any(unicodedata.category(char) in _UNPRINTABLE for char in value)
    ):
        raise InvalidValue(
            _(
                "%(value)s is not acceptable: use 1 to %(max_bytes)s bytes of "
                "printable text, without line breaks or control characters."
            )
            % {"value": _shown(value), "max_bytes": max_bytes}
        )
    return value


def essid(value: str) -> str:
    """A wireless network name: 1-32 bytes of printable text."""
    return free_text(value, max_bytes=32)


_UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _plain(value: object) -> None:
    """Refuse surrounding space and control characters that parsers forgive.

    ``ipaddress`` rejects most junk itself, but it accepts an IPv6 scope id
    (``fe80::1%anything at all``), which would carry free text into an argv:
    scope ids are refused, the interface is always a separate parameter.
    """
    if (
        not isinstance(value, str)
        or value != value.strip()
        or not value.isprintable()
        or "%" in value
    ):
        raise ValueError("not plain text")


def _shown(value: object, limit: int = 40) -> str:
    """The value as an operator may see it in a message: quoted, short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
