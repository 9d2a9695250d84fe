"""Wireless interfaces with ``iw`` (nl80211), never the old ``iwconfig``.

Builders for what the mesh needs of a radio: list radios and interfaces,
switch an interface's type (ad-hoc, 802.11s mesh point, managed, access
point), join and leave an IBSS cell or an 802.11s mesh, set the regulatory
domain, and bring an interface up or down (with ``ip``: ``iw`` has no such
verb). The argv of each is pinned in ``portal/tests/test_host_builders_wireless``.

Syntax checked against iw 5.19 (Debian 12) ``iw help``::

    dev <devname> ibss join <SSID> <freq in MHz> [NOHT|HT20|HT40+|HT40-|...]
        [fixed-freq] [<fixed bssid>] ...
    dev <devname> mesh join <mesh ID> [[freq <freq in MHz> <NOHT|HT20|...>] ...]
    dev <devname> set type <type>   (managed, ibss, monitor, mesh, wds; __ap)

Network names travel as one argv element (no shell ever sees them), but
they are still validated: 1 to 32 bytes of printable text.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from .. import validate
from ..commands import Command
from ..errors import InvalidValue

# The interface types the portal switches to. "__ap" is iw's name for an
# access point interface (normally hostapd sets it itself).
INTERFACE_TYPES = frozenset({"ibss", "mesh", "managed", "__ap"})
CHANNEL_WIDTHS = frozenset({"NOHT", "HT20", "HT40+", "HT40-"})
IW_TIMEOUT = 10.0
# `iw phy` of a machine with several dual-band radios is a few dozen KiB.
IW_OUTPUT_CAP = 1024 * 1024

_PHY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")
_COUNTRY = re.compile(r"^(00|[A-Z]{2})\Z")


def interface_name(value: str) -> str:
    """:func:`validate.interface_name`, also refusing a trailing newline.

    The shared validator's pattern ends in ``$``, which also matches before
    a final newline, so ``"wlan0\\n"`` would pass it; until that is fixed
    there, the wireless builders refuse any line break themselves.
    """
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        validate.interface_name("\n")  # raises with the usual message
    return validate.interface_name(value)


def phy_name(value: str) -> str:
    """A radio name as the kernel gives it (``phy0``)."""
    if not isinstance(value, str) or not _PHY.match(value):
        raise InvalidValue(
            _("%(value)s is not a radio name (like phy0).")
            % {"value": repr(value)[:40]}
        )
    return value


def frequency(value: int) -> int:
    """A channel's centre frequency in MHz (2.4, 5 and 6 GHz bands)."""
    return validate.whole_number(value, minimum=2400, maximum=7200)


def country_code(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, or ``00`` (the world domain)."""
    if not isinstance(value, str) or not _COUNTRY.match(value):
        raise InvalidValue(
            _("%(value)s is not a country code (two capital letters, like DE).")
            % {"value": repr(value)[:40]}
        )
    return value


def _iw(*argv: str, check: bool = True) -> Command:
    return Command(
        ("iw", *argv), timeout=IW_TIMEOUT, output_cap=IW_OUTPUT_CAP, check=check
    )


def dev_list() -> Command:
    """``iw dev``: wireless interfaces grouped by radio (``phy#N``)."""
    return _iw("dev")


def phy_list() -> Command:
    """``iw phy``: the capabilities of every radio."""
    return _iw("phy")


def phy_info(phy: str) -> Command:
    """``iw phy PHY info``: the capabilities of one radio."""
    return _iw("phy", phy_name(phy), "info")


def dev_info(interface: str) -> Command:
    """``iw dev IF info``: type, channel and cell of one interface."""
    return _iw("dev", interface_name(interface), "info")


def set_type(interface: str, interface_type: str) -> Command:
    """Switch an interface's type; the interface must be down."""
    if interface_type not in INTERFACE_TYPES:
        raise InvalidValue(
            _("%(value)s is not a wireless interface type.")
            % {"value": repr(interface_type)[:40]}
        )
    return _iw("dev", interface_name(interface), "set", "type", interface_type)


def ibss_join(
    interface: str,
    essid: str,
    frequency_mhz: int,
    *,
    fixed_frequency: bool = True,
    bssid: str | None = None,
) -> Command:
    """Join (or create) an ad-hoc cell.

    ``fixed-freq`` keeps the radio on the chosen channel instead of following
    a cell of the same name elsewhere; a fixed BSSID makes independent nodes
    that start at the same time form one cell instead of several.
    """
    argv = [
        "dev",
        interface_name(interface),
        "ibss",
        "join",
        validate.essid(essid),
        str(frequency(frequency_mhz)),
    ]
    if fixed_frequency:
        argv.append("fixed-freq")
    if bssid:
        argv.append(unicast_bssid(bssid))
    return _iw(*argv)


def ibss_leave(interface: str) -> Command:
    """Leave the ad-hoc cell (no error when not in one)."""
    return _iw("dev", interface_name(interface), "ibss", "leave", check=False)


def mesh_join(
    interface: str, mesh_id: str, frequency_mhz: int, *, width: str = "HT20"
) -> Command:
    """Join an open 802.11s mesh on one channel."""
    if width not in CHANNEL_WIDTHS:
        raise InvalidValue(
            _("%(value)s is not a channel width.") % {"value": repr(width)[:40]}
        )
    return _iw(
        "dev",
        interface_name(interface),
        "mesh",
        "join",
        validate.essid(mesh_id),
        "freq",
        str(frequency(frequency_mhz)),
        width,
    )


def mesh_leave(interface: str) -> Command:
    """Leave the 802.11s mesh (no error when not in one)."""
    return _iw("dev", interface_name(interface), "mesh", "leave", check=False)


def regulatory_domain_set(country: str) -> Command:
    """Tell the kernel which country's channel rules apply."""
    return _iw("reg", "set", country_code(country))


def interface_up(interface: str) -> Command:
    """``ip link set dev IF up`` (iw has no up/down verb)."""
    return Command(("ip", "link", "set", "dev", interface_name(interface), "up"))


def interface_down(interface: str) -> Command:
    """``ip link set dev IF down``: needed before changing the type."""
    return Command(("ip", "link", "set", "dev", interface_name(interface), "down"))


def unicast_bssid(value: str) -> str:
    """A cell id: a MAC address that is unicast and not all zero.

    A multicast BSSID (lowest bit of the first octet set) or
    00:00:00:00:00:00 is refused by drivers or makes every node start a cell
    of its own.
    """
    if isinstance(value, str) and "\n" in value:
        validate.mac_address("\n")  # raises with the usual message
    mac = validate.mac_address(value)
    first = int(mac[:2], 16)
    if first & 1 or mac == "00:00:00:00:00:00":
        raise InvalidValue(
            _(
                "%(value)s cannot be a cell id: it must be a unicast address "
                "(the first pair even) and not all zeros."
            )
            % {"value": repr(value)[:40]}
        )
    return mac
