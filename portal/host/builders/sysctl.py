"""Kernel parameters: read and set a short, whitelisted set of sysctl keys.

Only the switches a mesh node needs are accepted, each with the values that
make sense for it: IPv4/IPv6 forwarding, reverse-path filtering, redirects,
proxy ARP, router advertisements and IPv6 on/off, globally (``all``,
``default``) or per interface. Anything else (``kernel.*``, ``vm.*`` ...) is
refused, so a job cannot be turned into a general kernel tweaker.

Inside a network namespace the ``net.*`` keys are the namespace's own.

Interface names containing a dot (``eth0.10``) are written with a slash in a
sysctl key (``net.ipv4.conf.eth0/10.forwarding``), as sysctl(8) expects;
:func:`interface_key` does that conversion.

Argv: ``sysctl -n KEY`` to read (the bare value on stdout) and ``sysctl -w
KEY=VALUE`` to set; the key and value are one argv element, no shell.
"""

from __future__ import annotations

import re
from typing import Literal

from django.utils.translation import gettext as _

from .. import validate
from ..commands import Command
from ..errors import HostError, InvalidValue

# Global keys and their allowed values.
GLOBAL_KEYS: dict[str, range] = {
    "net.ipv4.ip_forward": range(0, 2),
}

# Per-interface settings (also valid for the pseudo interfaces all/default).
INTERFACE_SETTINGS: dict[str, dict[str, range]] = {
    "ipv4": {
        "forwarding": range(0, 2),
        "rp_filter": range(0, 3),
        "send_redirects": range(0, 2),
        "accept_redirects": range(0, 2),
        "proxy_arp": range(0, 2),
    },
    "ipv6": {
        "forwarding": range(0, 2),
        "accept_ra": range(0, 3),
        "accept_redirects": range(0, 2),
        "disable_ipv6": range(0, 2),
    },
}

_CONF_KEY = re.compile(
    r"^net\.(?P<family>ipv4|ipv6)\.conf\.(?P<interface>[A-Za-z0-9_/-]{1,15})"
    r"\.(?P<setting>[a-z_6]{1,32})$"
)

SYSCTL_TIMEOUT = 10.0


def _allowed_values(key: str) -> range:
    """The values ``key`` may take; raises InvalidValue for other keys."""
    if isinstance(key, str):
        if key in GLOBAL_KEYS:
            return GLOBAL_KEYS[key]
        match = _CONF_KEY.match(key)
        if match:
            settings = INTERFACE_SETTINGS[match["family"]]
            interface = match["interface"]
            real_name = interface.replace("/", ".")
            if match["setting"] in settings and (
                interface in ("all", "default")
                or validate.interface_name(real_name) == real_name
            ):
                return settings[match["setting"]]
    raise InvalidValue(
        _("%(value)s is not a kernel setting the portal may change.")
        % {"value": repr(key)[:60]}
    )


def sysctl_key(key: str) -> str:
    """A whitelisted key such as ``net.ipv4.conf.mesh0.forwarding``."""
    _allowed_values(key)
    return key


def interface_key(family: Literal["ipv4", "ipv6"], interface: str, setting: str) -> str:
    """The key of a per-interface setting, e.g. ``net.ipv6.conf.wlan0.accept_ra``."""
    if family not in INTERFACE_SETTINGS:
        raise InvalidValue(
            _("%(value)s is not an address family (ipv4 or ipv6).")
            % {"value": repr(family)[:40]}
        )
    if interface not in ("all", "default"):
        interface = validate.interface_name(interface).replace(".", "/")
    return sysctl_key(f"net.{family}.conf.{interface}.{setting}")


def read(key: str) -> Command:
    """Read one value (``sysctl -n KEY``)."""
    return Command(("sysctl", "-n", sysctl_key(key)), timeout=SYSCTL_TIMEOUT)


def write(key: str, value: int) -> Command:
    """Set one value (``sysctl -w KEY=VALUE``), within the key's range."""
    allowed = _allowed_values(key)
    validate.whole_number(value, minimum=allowed.start, maximum=allowed.stop - 1)
    return Command(("sysctl", "-w", f"{key}={value}"), timeout=SYSCTL_TIMEOUT)


def parse_value(stdout: str) -> int:
    """The integer printed by :func:`read`."""
    text = stdout.strip()
    if not re.fullmatch(r"-?\d{1,19}", text):
        raise HostError(f"sysctl printed {text[:40]!r}, not a number")
    return int(text)
