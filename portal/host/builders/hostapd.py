"""hostapd: an access point for phones and laptops on a wireless card.

:func:`render_config` turns a :class:`HostapdConfig` into the text of
``/etc/byzantium/hostapd-<if>.conf``; :func:`start` runs hostapd in the
background on it, with a pid file so it is stopped by pid, never by name.

Decisions:

- The network name is written as ``ssid2=`` in hex (hostapd's hexdump form)
  with ``utf8_ssid=1``: whatever bytes the name holds, it cannot end a line
  or start another setting.
- WPA2-PSK with CCMP only (``wpa=2``) when a passphrase is given; an open
  network otherwise (the captive portal greets clients either way).
- No ``ctrl_interface``: nothing else talks to this hostapd, so no control
  socket is left for other local users.

hostapd has no check-only flag. The strongest real check is to let hostapd
read the file with an interface that does not exist: it parses the whole
file first (printing ``Line N: ...`` and ``N errors found in configuration
file``) and only then fails to set up the interface or the driver.
:func:`check_command` and :func:`check_errors` do exactly that and tell the
two outcomes apart; the tests run the real hostapd 2.10.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from .. import validate
from ..commands import Command, CommandResult
from ..errors import CommandFailed, InvalidValue
from . import iw

HW_MODES = frozenset({"g", "a"})
# Interface name used when only parsing the config: never created by us, and
# checked to be absent before the check runs.
CHECK_INTERFACE = "byz-nocheck0"
CHECK_TIMEOUT = 15.0

_COUNTRY = re.compile(r"^[A-Z]{2}\Z")
_PARSE_ERROR = re.compile(r"^(Line \d+: .*|.*errors? found in configuration file.*)$")
# What hostapd prints once the file parsed and it moves on to the radio.
_PARSED_MARKERS = (
    "Failed to initialize driver",
    "Could not read interface",
    "nl80211:",
    "interface state UNINITIALIZED",
    "Failed to initialize interface",
)


def passphrase(value: str) -> str:
    """A WPA passphrase: 8 to 63 printable ASCII characters."""
    if (
        not isinstance(value, str)
        or not 8 <= len(value) <= 63
        or any(not " " <= char <= "~" for char in value)
    ):
        raise InvalidValue(
            _(
                "A passphrase must be 8 to 63 printable ASCII characters "
                "(letters, digits, spaces and punctuation, no accents)."
            )
        )
    return value


@dataclass(frozen=True)
class HostapdConfig:
    """One access point: interface, network name, channel, optional WPA2."""

    interface: str
    ssid: str
    channel: int
    hw_mode: str = "g"
    passphrase: str = ""
    country: str = ""

    def __post_init__(self) -> None:
        iw.interface_name(self.interface)
        validate.essid(self.ssid)
        if self.hw_mode not in HW_MODES:
            raise InvalidValue(
                _("%(value)s is not a band mode (g or a).")
                % {"value": repr(self.hw_mode)[:40]}
            )
        high = 14 if self.hw_mode == "g" else 196
        validate.whole_number(self.channel, minimum=1, maximum=high)
        if self.passphrase:
            passphrase(self.passphrase)
        if self.country and not _COUNTRY.match(self.country):
            raise InvalidValue(
                _("%(value)s is not a country code (two capital letters, like DE).")
                % {"value": repr(self.country)[:40]}
            )


def render_config(config: HostapdConfig, *, interface: str | None = None) -> str:
    """The hostapd.conf text; ``interface`` overrides the name (checks)."""
    name = iw.interface_name(interface or config.interface)
    lines = [
        f"# hostapd configuration of {name}, rendered by the portal; do not edit.",
        f"interface={name}",
        "driver=nl80211",
        f"ssid2={config.ssid.encode('utf-8').hex()}",
        "utf8_ssid=1",
        f"hw_mode={config.hw_mode}",
        f"channel={config.channel}",
        "ieee80211n=1",
        "wmm_enabled=1",
        "auth_algs=1",
        "ignore_broadcast_ssid=0",
    ]
    if config.country:
        lines += [f"country_code={config.country}", "ieee80211d=1"]
    if config.passphrase:
        lines += [
            "wpa=2",
            "wpa_key_mgmt=WPA-PSK",
            "rsn_pairwise=CCMP",
            f"wpa_passphrase={passphrase(config.passphrase)}",
        ]
    return "\n".join(lines) + "\n"


def start(config_path: str, pid_path: str) -> Command:
    """Run hostapd in the background (``-B``) with a pid file."""
    return Command(
        (
            "hostapd",
            "-B",
            "-P",
            validate.absolute_path(pid_path),
            validate.absolute_path(config_path),
        ),
        timeout=30,
    )


def check_command(config_path: str) -> Command:
    """Let hostapd parse a config rendered for :data:`CHECK_INTERFACE`."""
    return Command(
        ("hostapd", validate.absolute_path(config_path)),
        timeout=CHECK_TIMEOUT,
        check=False,
    )


def check_errors(result: CommandResult) -> list[str]:
    """hostapd's complaints about the file; ``[]`` when it parsed cleanly.

    Raises :class:`CommandFailed` when the output shows neither outcome (the
    program is missing, or it ran on a real interface), so an unknown answer
    is never taken for a clean file.
    """
    output = f"{result.stdout}\n{result.stderr}"
    errors = [
        line.strip() for line in output.splitlines() if _PARSE_ERROR.match(line.strip())
    ]
    if errors:
        return errors
    if result.returncode != 0 and any(marker in output for marker in _PARSED_MARKERS):
        return []
    raise CommandFailed(
        f"hostapd gave no verdict on the configuration (exit {result.returncode})",
        result,
    )
