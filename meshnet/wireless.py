"""Wireless and link-layer work of a mesh node, as plain functions.

What this module knows, and why:

- **Radios.** :func:`parse_iw_phy` reads ``iw phy`` (the capabilities of
  each radio: interface modes such as IBSS, mesh point and AP; bands and
  channels with their frequencies, and which channels are disabled, need
  radar detection or may not start a network "no IR"). :func:`parse_iw_dev`
  reads ``iw dev`` (which interface sits on which radio, in which mode).
  Both tolerate the small differences between iw versions (``2412 MHz`` and
  ``2412.0 MHz``; "passive scanning, no IBSS" in old iw is "no IR" in new).
- **Channels.** :func:`frequency_of` / :func:`channel_of` map channel
  numbers to centre frequencies: 2.4 GHz channels 1-13 are 2407 + 5 x n MHz
  and channel 14 is 2484 MHz; 5 GHz channels are 5000 + 5 x n MHz. 6 GHz
  is not offered for mesh links: it needs rules (AFC, low-power indoor)
  that ad-hoc and 802.11s links cannot follow.
- **Community defaults (interoperability).** An ad-hoc mesh only forms
  when every node uses the same network name, channel and cell id (BSSID).
  The defaults are those of Commotion Wireless, which Byzantium Linux
  adopted in 2012 (tested together in Red Hook, New York, after Hurricane
  Sandy): ESSID ``commotionwireless.net``, channel 5, BSSID
  ``02:CA:FF:EE:BA:BE``. That BSSID is also the one Freifunk, OLSR
  communities and qMp use, so a node started with the defaults meets them.
- **Derived BSSID.** When the operator picks another name or channel and
  leaves the BSSID empty, :func:`derive_bssid` derives it from the two, so
  independent nodes configured alike meet in the same cell instead of each
  starting its own (IBSS cells otherwise merge slowly or never): the first
  six bytes of SHA-256 of ``"byzantium-ibss:" + ESSID + ":" + channel``,
  with the first octet's lowest bit cleared (unicast) and second-lowest set
  (locally administered), so it can never clash with a real card's address
  nor be a multicast or all-zero id. Known community profiles
  (:data:`COMMUNITY_PROFILES`) keep their published BSSID instead.
- **Plans.** :func:`plan_interface` turns one :class:`InterfaceState` into
  an :class:`InterfacePlan`: files to write and commands to run, in order;
  :func:`plan_teardown` undoes one; :func:`plan_batman` enslaves mesh
  interfaces to batman-adv. :func:`apply_interfaces` runs them on a
  :class:`~portal.host.node.Host` and remembers what it configured (in
  ``/var/lib/byzantium/interfaces.json``), so an interface the operator
  released is returned to normal even though its row is gone, and an
  interface the portal never configured (an uplink) is never touched.
- **802.11s with a passphrase** (SAE) is not something ``iw`` can do: the
  kernel leaves the SAE handshake and peering to user space, so the plan
  renders a ``wpa_supplicant`` mesh network (``mode=5``, ``key_mgmt=SAE``,
  management-frame protection on) and runs wpa_supplicant on the
  interface instead of ``iw mesh join``.

The web process never runs these plans; the worker does, through the
routing part's apply (see ``meshnet.routing_services``) or the
``meshnet.apply_interfaces`` job of this part.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from meshnet.state import InterfaceState, MeshState
from portal.host import validate
from portal.host.builders import batctl, hostapd, iw, process
from portal.host.commands import Command
from portal.host.errors import HostError, InvalidValue

# -- channels ----------------------------------------------------------------

BAND_2GHZ = "2.4"
BAND_5GHZ = "5"
BAND_6GHZ = "6"
BAND_60GHZ = "60"
CHANNELS_2GHZ = tuple(range(1, 15))
# Every 20 MHz channel number of the 5 GHz band (UNII-1 to UNII-4).
CHANNELS_5GHZ = (
    *range(32, 65, 4),
    *range(100, 145, 4),
    *range(149, 178, 4),
)


def frequency_of(channel: int) -> int:
    """Centre frequency in MHz of a 2.4 or 5 GHz channel number."""
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise InvalidValue(_("A channel is a whole number."))
    if 1 <= channel <= 13:
        return 2407 + 5 * channel
    if channel == 14:
        return 2484
    if channel in CHANNELS_5GHZ:
        return 5000 + 5 * channel
    raise InvalidValue(
        _("%(channel)s is not a 2.4 GHz or 5 GHz channel.") % {"channel": channel}
    )


def band_of(frequency: int) -> str:
    """The band a frequency (MHz) belongs to."""
    if 2400 <= frequency <= 2500:
        return BAND_2GHZ
    if 5150 <= frequency <= 5925:
        return BAND_5GHZ
    if 5925 < frequency <= 7125:
        return BAND_6GHZ
    if 57000 <= frequency <= 71000:
        return BAND_60GHZ
    return ""


def channel_of(frequency: int) -> int:
    """Channel number of a frequency (MHz) in the 2.4, 5 or 6 GHz band."""
    if frequency == 2484:
        return 14
    if 2412 <= frequency <= 2472 and (frequency - 2407) % 5 == 0:
        return (frequency - 2407) // 5
    if frequency == 5935:
        return 2
    if 5950 < frequency <= 7115 and (frequency - 5950) % 5 == 0:
        return (frequency - 5950) // 5
    if 5000 < frequency <= 5925 and frequency % 5 == 0:
        return (frequency - 5000) // 5
    raise InvalidValue(
        _("%(frequency)s MHz is not a Wi-Fi channel.") % {"frequency": frequency}
    )


def hw_mode_of(channel: int) -> str:
    """hostapd's ``hw_mode``: ``g`` on 2.4 GHz, ``a`` on 5 GHz."""
    return "g" if band_of(frequency_of(channel)) == BAND_2GHZ else "a"


# -- radios: iw phy / iw dev ---------------------------------------------------

MODE_IBSS = "IBSS"
MODE_MESH_POINT = "mesh point"
MODE_AP = "AP"
MODE_MANAGED = "managed"


@dataclass(frozen=True)
class Channel:
    """One channel of a radio as ``iw phy`` lists it."""

    number: int
    frequency: int
    band: str
    max_power_dbm: float | None = None
    disabled: bool = False
    # "no IR" (no initiating radiation; "passive scanning"/"no IBSS" in old
    # iw): the radio may join a network heard there but not start one.
    no_ir: bool = False
    radar: bool = False

    @property
    def usable_to_start(self) -> bool:
        """Whether this node may start a cell / mesh / AP here on its own."""
        return not (self.disabled or self.no_ir or self.radar)


@dataclass(frozen=True)
class Radio:
    """A wireless card (a "wiphy") and what it can do."""

    phy: str
    index: int | None
    modes: tuple[str, ...] = ()
    channels: tuple[Channel, ...] = ()

    @property
    def supports_ibss(self) -> bool:
        return MODE_IBSS in self.modes

    @property
    def supports_mesh_point(self) -> bool:
        return MODE_MESH_POINT in self.modes

    @property
    def supports_ap(self) -> bool:
        return MODE_AP in self.modes

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.band for c in self.channels))

    def channel(self, number: int) -> Channel | None:
        """The 2.4/5 GHz channel of that number (6 GHz ones are left out)."""
        for item in self.channels:
            if item.number == number and item.band in (BAND_2GHZ, BAND_5GHZ):
                return item
        return None

    def usable_channels(self) -> tuple[Channel, ...]:
        return tuple(
            c
            for c in self.channels
            if c.usable_to_start and c.band in (BAND_2GHZ, BAND_5GHZ)
        )


@dataclass(frozen=True)
class WirelessInterface:
    """A wireless network interface as ``iw dev`` shows it."""

    name: str
    phy_index: int | None
    type: str = ""
    mac: str = ""
    ssid: str = ""
    channel: int | None = None
    frequency: int | None = None

    @property
    def phy(self) -> str | None:
        return None if self.phy_index is None else f"phy{self.phy_index}"


_FREQUENCY_LINE = re.compile(r"^\*\s*(\d+)(?:\.\d+)?\s*MHz\s*\[(\d+)\](.*)$")
_POWER = re.compile(r"\(([\d.]+) dBm\)")
_MODE_LINE = re.compile(r"^\*\s*(.+?)\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip("\t"))


def _flags(rest: str) -> tuple[bool, bool, bool]:
    text = rest.lower()
    disabled = "(disabled)" in text
    no_ir = any(word in text for word in ("no ir", "passive scanning", "no ibss"))
    radar = "radar detection" in text
    return disabled, no_ir, radar


def parse_iw_phy(text: str) -> list[Radio]:
    """Radios from ``iw phy`` or ``iw phy PHY info`` output."""
    radios: list[Radio] = []
    phy: str | None = None
    index: int | None = None
    modes: list[str] = []
    channels: list[Channel] = []
    section = ""
    section_indent = 0

    def finish() -> None:
        if phy is not None:
            radios.append(
                Radio(
                    phy=phy, index=index, modes=tuple(modes), channels=tuple(channels)
                )
            )

    for raw in text.splitlines():
        if not raw.strip():
            continue
        line = raw.strip()
        depth = _indent(raw)
        if line.startswith("Wiphy "):
            finish()
            phy, index, modes, channels, section = line.split()[1], None, [], [], ""
            continue
        if phy is None:
            continue
        if section and depth <= section_indent:
            section = ""
        if line.startswith("wiphy index:"):
            try:
                index = int(line.split(":", 1)[1])
            except ValueError:
                index = None
        elif line == "Supported interface modes:":
            section, section_indent = "modes", depth
        elif line == "Frequencies:":
            section, section_indent = "frequencies", depth
        elif section == "modes" and (match := _MODE_LINE.match(line)):
            modes.append(match.group(1))
        elif section == "frequencies" and (match := _FREQUENCY_LINE.match(line)):
            frequency, number, rest = (
                int(match.group(1)),
                int(match.group(2)),
                match.group(3),
            )
            power = _POWER.search(rest)
            disabled, no_ir, radar = _flags(rest)
            channels.append(
                Channel(
                    number=number,
                    frequency=frequency,
                    band=band_of(frequency),
                    max_power_dbm=float(power.group(1)) if power else None,
                    disabled=disabled,
                    no_ir=no_ir,
                    radar=radar,
                )
            )
    finish()
    # `iw phy` of old versions prints no "wiphy index"; phyN means index N.
    return [
        radio
        if radio.index is not None or not radio.phy[3:].isdigit()
        else Radio(
            phy=radio.phy,
            index=int(radio.phy[3:]),
            modes=radio.modes,
            channels=radio.channels,
        )
        for radio in radios
    ]


_IW_CHANNEL = re.compile(r"^channel (\d+) \((\d+)(?:\.\d+)? MHz\)")


def parse_iw_dev(text: str) -> list[WirelessInterface]:
    """Wireless interfaces from ``iw dev`` output, with their radio index."""
    found: list[WirelessInterface] = []
    phy_index: int | None = None
    current: dict[str, Any] | None = None

    def finish() -> None:
        if current is not None:
            found.append(WirelessInterface(**current))

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("phy#"):
            finish()
            current = None
            try:
                phy_index = int(line[4:])
            except ValueError:
                phy_index = None
        elif line.startswith("Interface "):
            finish()
            current = {"name": line.split(None, 1)[1], "phy_index": phy_index}
        elif line.startswith("Unnamed/non-netdev interface"):
            finish()
            current = None
        elif current is not None:
            key, _sep, value = line.partition(" ")
            if key == "type":
                current["type"] = value
            elif key == "addr":
                current["mac"] = value
            elif key == "ssid":
                current["ssid"] = value
            elif key == "channel" and (match := _IW_CHANNEL.match(line)):
                current["channel"] = int(match.group(1))
                current["frequency"] = int(match.group(2))
    finish()
    return found


# -- community defaults, BSSID -----------------------------------------------


@dataclass(frozen=True)
class CommunityProfile:
    """Settings a known community mesh publishes, so we can meet it."""

    name: str
    essid: str
    channel: int
    bssid: str


COMMUNITY_PROFILES: tuple[CommunityProfile, ...] = (
    # Commotion Wireless; Byzantium Linux 0.5 used the same since 2012.
    CommunityProfile(
        "Commotion / Byzantium", "commotionwireless.net", 5, "02:ca:ff:ee:ba:be"
    ),
)
DEFAULT_PROFILE = COMMUNITY_PROFILES[0]
DEFAULT_IBSS_ESSID = DEFAULT_PROFILE.essid
DEFAULT_IBSS_CHANNEL = DEFAULT_PROFILE.channel
DEFAULT_IBSS_BSSID = DEFAULT_PROFILE.bssid
# 802.11s has no cell id: the mesh id and channel are all peers must share.
DEFAULT_MESH_ID = "byzantium-mesh"
DEFAULT_MESH_CHANNEL = 5
# Access point for phones: another non-overlapping 2.4 GHz channel than the
# mesh's defaults, so a node with two radios does not talk over itself.
DEFAULT_AP_ESSID = "Byzantium"
DEFAULT_AP_CHANNEL = 11


def derive_bssid(essid: str, channel: int) -> str:
    """A cell id derived from network name and channel (see module doc)."""
    digest = hashlib.sha256(f"byzantium-ibss:{essid}:{channel}".encode()).digest()
    octets = bytearray(digest[:6])
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{octet:02x}" for octet in octets)


def default_bssid(essid: str, channel: int) -> str:
    """The published BSSID of a known community, or the derived one."""
    for profile in COMMUNITY_PROFILES:
        if profile.essid == essid and profile.channel == channel:
            return profile.bssid
    return derive_bssid(essid, channel)


# -- validation of operator input --------------------------------------------

_NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}\Z")


def network_name(value: str) -> str:
    """An ESSID or mesh id as the portal accepts it.

    Stricter than the standard (which allows any 32 bytes): ASCII letters,
    digits, '.', '-' and '_', so the name is typed the same on every node,
    shows the same on every phone and is plain text in every config file.
    """
    if not isinstance(value, str) or len(value.encode("utf-8")) > 32:
        raise InvalidValue(_("A network name is at most 32 characters."))
    if not _NETWORK_NAME.match(value):
        raise InvalidValue(
            _(
                "%(value)s is not accepted as a network name: use 1 to 32 "
                "letters (A-Z, a-z), digits, '.', '-' or '_', starting with a "
                "letter or digit; no spaces or accents."
            )
            % {"value": repr(value)[:40]}
        )
    return value


def check_channel(radio: Radio | None, channel: int) -> Channel | None:
    """Refuse a channel this radio cannot use to start a network.

    Without a known radio (the snapshot has not read ``iw phy`` yet) only the
    channel number is checked.
    """
    frequency_of(channel)
    if radio is None:
        return None
    found = radio.channel(channel)
    if found is None:
        raise InvalidValue(
            _("This radio has no channel %(channel)s.") % {"channel": channel}
        )
    if found.disabled:
        raise InvalidValue(
            _("Channel %(channel)s is disabled on this radio (country rules).")
            % {"channel": channel}
        )
    if found.radar or found.no_ir:
        raise InvalidValue(
            _(
                "Channel %(channel)s may only be used after radar detection or "
                "when another network is already heard there; pick a channel "
                "without those limits so this node can start the mesh itself."
            )
            % {"channel": channel}
        )
    return found


# -- plans -------------------------------------------------------------------

CONFIG_DIR = "/etc/byzantium"
RUN_DIR = "/run/byzantium"
RECORD_PATH = "/var/lib/byzantium/interfaces.json"


def hostapd_config_path(interface: str) -> str:
    return f"{CONFIG_DIR}/hostapd-{iw.interface_name(interface)}.conf"


def hostapd_pid_path(interface: str) -> str:
    return f"{RUN_DIR}/hostapd-{iw.interface_name(interface)}.pid"


def supplicant_config_path(interface: str) -> str:
    return f"{CONFIG_DIR}/wpa_supplicant-{iw.interface_name(interface)}.conf"


def supplicant_pid_path(interface: str) -> str:
    return f"{RUN_DIR}/wpa_supplicant-{iw.interface_name(interface)}.pid"


@dataclass(frozen=True)
class PlannedFile:
    """A file a plan writes (node path), with its mode."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class InterfacePlan:
    """What configuring one interface takes, in order.

    ``stop_pid_files``: daemons of an earlier apply to stop first (by the
    pid in the file), ``files`` then ``commands``.
    """

    interface: str
    stop_pid_files: tuple[str, ...] = ()
    files: tuple[PlannedFile, ...] = ()
    commands: tuple[Command, ...] = ()
    remove_files: tuple[str, ...] = ()

    @property
    def argvs(self) -> list[tuple[str, ...]]:
        return [command.argv for command in self.commands]


def render_supplicant_mesh(mesh_id: str, channel: int, passphrase: str) -> str:
    """wpa_supplicant config of an 802.11s mesh secured with SAE.

    The mesh id is written in hex (wpa_supplicant's unquoted form), the
    passphrase quoted (wpa_supplicant takes everything up to the last quote
    literally); both were validated, so neither holds a line break.
    """
    network_name(mesh_id)
    hostapd.passphrase(passphrase)
    return (
        "# wpa_supplicant 802.11s mesh (SAE), rendered by the portal; do not edit.\n"
        "user_mpm=1\n"
        "network={\n"
        f"\tssid={mesh_id.encode().hex()}\n"
        "\tmode=5\n"
        f"\tfrequency={frequency_of(channel)}\n"
        "\tkey_mgmt=SAE\n"
        f'\tsae_password="{passphrase}"\n'
        "\tieee80211w=2\n"
        "}\n"
    )


def supplicant_start(config_path: str, pid_path: str, interface: str) -> Command:
    """wpa_supplicant in the background on one interface (nl80211)."""
    return Command(
        (
            "wpa_supplicant",
            "-B",
            "-D",
            "nl80211",
            "-i",
            iw.interface_name(interface),
            "-c",
            validate.absolute_path(config_path),
            "-P",
            validate.absolute_path(pid_path),
        ),
        timeout=30,
    )


def hostapd_config(
    iface: InterfaceState, *, country: str = ""
) -> hostapd.HostapdConfig:
    """The access point an AP interface state describes."""
    channel = iface.channel or DEFAULT_AP_CHANNEL
    return hostapd.HostapdConfig(
        interface=iface.name,
        ssid=iface.essid or DEFAULT_AP_ESSID,
        channel=channel,
        hw_mode=hw_mode_of(channel),
        passphrase=iface.passphrase,
        country=country,
    )


def plan_interface(
    iface: InterfaceState, *, files_root: Path | None = None, country: str = ""
) -> InterfacePlan:
    """Files and commands that give ``iface`` its role on the link layer.

    ``files_root``: where node paths really are (``host.files.root``); argvs
    name real paths (a lab node's files live below its own folder).
    """
    name = iw.interface_name(iface.name)
    real = _real_path(files_root)
    regulatory = (iw.regulatory_domain_set(country),) if country else ()
    if iface.medium == "ibss":
        essid = network_name(iface.essid or DEFAULT_IBSS_ESSID)
        channel = iface.channel or DEFAULT_IBSS_CHANNEL
        bssid = iw.unicast_bssid(iface.bssid or default_bssid(essid, channel))
        return InterfacePlan(
            interface=name,
            commands=(
                *regulatory,
                iw.interface_down(name),
                iw.set_type(name, "ibss"),
                iw.interface_up(name),
                iw.ibss_join(
                    name,
                    essid,
                    frequency_of(channel),
                    fixed_frequency=True,
                    bssid=bssid,
                ),
            ),
        )
    if iface.medium == "mesh-point":
        mesh_id = network_name(iface.mesh_id or DEFAULT_MESH_ID)
        channel = iface.channel or DEFAULT_MESH_CHANNEL
        setup = (
            *regulatory,
            iw.interface_down(name),
            iw.set_type(name, "mesh"),
            iw.interface_up(name),
        )
        stop = (supplicant_pid_path(name),)
        if not iface.passphrase:
            return InterfacePlan(
                interface=name,
                stop_pid_files=stop,
                commands=(*setup, iw.mesh_join(name, mesh_id, frequency_of(channel))),
                remove_files=(supplicant_config_path(name),),
            )
        config = supplicant_config_path(name)
        return InterfacePlan(
            interface=name,
            stop_pid_files=stop,
            files=(
                PlannedFile(
                    config,
                    render_supplicant_mesh(mesh_id, channel, iface.passphrase),
                    0o600,
                ),
            ),
            commands=(
                *setup,
                supplicant_start(real(config), real(supplicant_pid_path(name)), name),
            ),
        )
    if iface.medium == "ap":
        config = hostapd_config_path(name)
        return InterfacePlan(
            interface=name,
            stop_pid_files=(hostapd_pid_path(name),),
            files=(
                PlannedFile(
                    config,
                    hostapd.render_config(hostapd_config(iface, country=country)),
                    0o600,
                ),
            ),
            commands=(
                *regulatory,
                iw.interface_down(name),
                hostapd.start(real(config), real(hostapd_pid_path(name))),
            ),
        )
    if iface.medium == "wired":
        return InterfacePlan(interface=name, commands=(iw.interface_up(name),))
    raise InvalidValue(
        _("%(value)s is not a kind of interface the portal configures.")
        % {"value": repr(iface.medium)[:40]}
    )


def plan_teardown(name: str, medium: str) -> InterfacePlan:
    """Return an interface the portal configured to an ordinary state."""
    name = iw.interface_name(name)
    if medium == "ibss":
        commands: tuple[Command, ...] = (
            iw.ibss_leave(name),
            iw.interface_down(name),
            iw.set_type(name, "managed"),
        )
        return InterfacePlan(interface=name, commands=commands)
    if medium == "mesh-point":
        return InterfacePlan(
            interface=name,
            stop_pid_files=(supplicant_pid_path(name),),
            commands=(
                iw.mesh_leave(name),
                iw.interface_down(name),
                iw.set_type(name, "managed"),
            ),
            remove_files=(supplicant_config_path(name),),
        )
    if medium == "ap":
        return InterfacePlan(
            interface=name,
            stop_pid_files=(hostapd_pid_path(name),),
            commands=(iw.interface_down(name), iw.set_type(name, "managed")),
            remove_files=(hostapd_config_path(name),),
        )
    # A wired link keeps its link state; its addresses and routing are the
    # routing part's business.
    return InterfacePlan(interface=name)


def plan_batman(
    wanted: Sequence[str], *, enslaved: Iterable[str] = (), exists: bool = False
) -> tuple[Command, ...]:
    """Commands that leave exactly ``wanted`` under batman-adv's ``bat0``.

    ``enslaved`` is what ``batctl meshif bat0 interface`` listed, ``exists``
    whether bat0 is there: adding an interface twice is an error in batctl,
    so the plan only adds what is missing and removes what is no longer
    wanted.
    """
    names = [iw.interface_name(n) for n in wanted]
    current = set(enslaved)
    commands: list[Command] = []
    if not exists:
        commands.append(batctl.create_mesh_interface())
    for name in sorted(current - set(names)):
        commands.append(batctl.interface_del(name))
    for name in names:
        if name not in current:
            commands.append(batctl.interface_add(name))
    commands.append(iw.interface_up(batctl.MESH_INTERFACE))
    return tuple(commands)


def _real_path(files_root: Path | None):  # noqa: ANN202 - small closure
    def real(node_path: str) -> str:
        if files_root is None:
            return node_path
        return str(Path(files_root, node_path.lstrip("/")))

    return real


# -- running plans on a host -------------------------------------------------


@dataclass
class ApplyReport:
    """What :func:`apply_interfaces` did, for the job summary."""

    configured: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    batman: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stop_by_pid_file(host: Any, pid_path: str) -> None:
    text = host.files.read_text(pid_path)
    if text is None:
        return
    try:
        pid = int(text.strip())
        host.runner.run(process.send_signal(pid, "TERM"))
    except (ValueError, InvalidValue):
        pass
    host.files.remove(pid_path)


def run_plan(host: Any, plan: InterfacePlan) -> None:
    """Stop old daemons, write files, run commands, remove stale files."""
    for pid_path in plan.stop_pid_files:
        _stop_by_pid_file(host, pid_path)
    for planned in plan.files:
        host.files.write(planned.path, planned.content, mode=planned.mode)
    for command in plan.commands:
        host.runner.run(command)
    for path in plan.remove_files:
        host.files.remove(path)


def read_record(host: Any) -> dict[str, Any]:
    """What the last apply configured: {"interfaces": {name: medium}}."""
    text = host.files.read_text(RECORD_PATH)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    interfaces = data.get("interfaces") if isinstance(data, dict) else None
    batman_list = data.get("batman") if isinstance(data, dict) else None
    fingerprints = data.get("fingerprints") if isinstance(data, dict) else None
    return {
        "interfaces": interfaces if isinstance(interfaces, dict) else {},
        "batman": batman_list if isinstance(batman_list, list) else [],
        "fingerprints": fingerprints if isinstance(fingerprints, dict) else {},
    }


def _fingerprint(iface: InterfaceState, country: str) -> str:
    """A digest of everything that shapes an interface's link-layer setup.

    An interface whose digest did not change since the last apply is left
    alone: re-joining a cell or restarting hostapd on every apply would drop
    every neighbour and client for a moment. A digest, not the values, is
    stored, so the record never holds a passphrase.
    """
    payload = json.dumps({"iface": asdict(iface), "country": country}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def apply_interfaces(
    host: Any,
    state: MeshState,
    *,
    country: str = "",
    sys_module: Path = batctl.SYS_MODULE,
    with_batman: bool = True,
) -> ApplyReport:
    """Give every interface of ``state`` its link-layer role on ``host``.

    Interfaces configured by an earlier apply and absent now are torn down
    first. With batman-adv as the protocol the mesh interfaces are put under
    ``bat0`` (a missing kernel module raises
    :class:`~portal.host.builders.batctl.BatmanModuleMissing` before
    anything changes). Idempotent: running it twice leaves the same system.
    """
    report = ApplyReport()
    record = read_record(host)
    wanted = {i.name: i for i in state.interfaces if i.enabled}
    # with_batman=False: the caller (meshnet.apply) handles batman-adv itself.
    batman_wanted = (
        [i.name for i in state.mesh_interfaces]
        if with_batman and state.protocol == "batman-adv"
        else []
    )
    if batman_wanted:
        batctl.ensure_module(host.runner, sys_module)
    for name, medium in sorted(record["interfaces"].items()):
        previous_medium = medium
        current = wanted.get(name)
        if current is None or current.medium != previous_medium:
            try:
                run_plan(host, plan_teardown(name, str(previous_medium)))
            except InvalidValue:
                continue
            if current is None:
                report.released.append(name)
    fingerprints = {
        name: _fingerprint(iface, country) for name, iface in wanted.items()
    }
    for iface in wanted.values():
        unchanged = (
            record["fingerprints"].get(iface.name) == fingerprints[iface.name]
            and record["interfaces"].get(iface.name) == iface.medium
        )
        if unchanged:
            continue
        run_plan(
            host, plan_interface(iface, files_root=host.files.root, country=country)
        )
        report.configured.append(iface.name)
    previous_batman = [n for n in record["batman"] if isinstance(n, str)]
    if batman_wanted or previous_batman:
        if batman_wanted:
            listing = host.runner.run(batctl.interface_list())
            enslaved = batctl.parse_interface_list(listing.stdout) if listing.ok else {}
            exists = listing.ok
            for command in plan_batman(batman_wanted, enslaved=enslaved, exists=exists):
                host.runner.run(command)
        else:
            for name in previous_batman:
                host.runner.run(batctl.interface_del(name))
        report.batman = batman_wanted
    host.files.write(
        RECORD_PATH,
        json.dumps(
            {
                "interfaces": {i.name: i.medium for i in wanted.values()},
                "batman": batman_wanted,
                "fingerprints": fingerprints,
            },
            sort_keys=True,
        ),
    )
    return report


def verify_hostapd_config(host: Any, config: hostapd.HostapdConfig) -> list[str]:
    """hostapd's own verdict on a config ([] when it parses cleanly).

    The config is rendered for an interface that does not exist and handed to
    the real hostapd, which parses it and then fails at the radio; parse
    errors are told apart from that failure (see the hostapd builder).
    """
    check_path = f"{RUN_DIR}/hostapd-check.conf"
    host.files.write(
        check_path,
        hostapd.render_config(config, interface=hostapd.CHECK_INTERFACE),
        mode=0o600,
    )
    try:
        result = host.runner.run(
            hostapd.check_command(str(host.files.path(check_path)))
        )
        return hostapd.check_errors(result)
    finally:
        host.files.remove(check_path)


# -- what the status snapshot adds ---------------------------------------------

SYS_CLASS_NET = Path("/sys/class/net")
# ethtool's driver name of virtual links, from ip's link kind.
_VIRTUAL_DRIVERS = {
    "veth": "veth",
    "bridge": "bridge",
    "vlan": "8021q",
    "bond": "bonding",
    "dummy": "dummy",
    "wireguard": "wireguard",
    "batman": "batman-adv",
    "tunnel": "tun",
}


def interface_driver(
    name: str, kind: str = "", *, sys_class_net: Path | None = SYS_CLASS_NET
) -> str:
    """The kernel driver behind an interface (``e1000e``, ``ath9k``, ``veth``).

    Read from ``/sys/class/net/IF/device/driver`` for hardware; a virtual
    link has no device there and is named by its kind, as ``ethtool -i``
    would. ``sys_class_net=None`` skips sysfs (a lab node: /sys shows this
    machine's interfaces, not the namespace's).
    """
    if sys_class_net is not None:
        try:
            link = (sys_class_net / name / "device" / "driver").resolve(strict=True)
            return link.name
        except (OSError, RuntimeError):
            pass
    return _VIRTUAL_DRIVERS.get(kind, "")


def collect_interface_details(
    host: Any,
    interfaces: Sequence[dict[str, Any]],
    *,
    sys_class_net: Path | None = SYS_CLASS_NET,
) -> dict[str, Any]:
    """Driver of each interface and, for radios, what they can do.

    Called by ``portal.status.collect_status`` in the worker; returns JSON
    data: ``{"drivers": {if: driver}, "wireless": {if: {...}}, "radios":
    {phy: {...}}, "error": ""}``. Missing ``iw`` or nl80211 means no radios,
    not an error.
    """
    sysfs = sys_class_net if host.namespace is None else None
    drivers = {
        str(item.get("name")): interface_driver(
            str(item.get("name")), str(item.get("kind") or ""), sys_class_net=sysfs
        )
        for item in interfaces
        if item.get("name")
    }
    details: dict[str, Any] = {"drivers": drivers, "wireless": {}, "radios": {}}
    try:
        dev = host.runner.run(_checked_false(iw.dev_list()))
        phy = host.runner.run(_checked_false(iw.phy_list()))
    except HostError as error:
        details["error"] = str(error)
        return details
    if dev.ok:
        details["wireless"] = {
            w.name: asdict(w) | {"phy": w.phy} for w in parse_iw_dev(dev.stdout)
        }
    if phy.ok:
        details["radios"] = {r.phy: radio_to_dict(r) for r in parse_iw_phy(phy.stdout)}
    details["error"] = ""
    return details


def _checked_false(command: Command) -> Command:
    return Command(
        command.argv,
        timeout=command.timeout,
        check=False,
        output_cap=command.output_cap,
    )


def radio_to_dict(radio: Radio) -> dict[str, Any]:
    data = asdict(radio)
    data["modes"] = list(radio.modes)
    data["channels"] = [asdict(c) for c in radio.channels]
    return data


def radio_from_dict(data: dict[str, Any]) -> Radio:
    """A radio back from the snapshot's JSON (unknown keys ignored)."""
    channels = []
    for item in data.get("channels") or []:
        try:
            channels.append(
                Channel(
                    number=int(item["number"]),
                    frequency=int(item["frequency"]),
                    band=str(item.get("band") or band_of(int(item["frequency"]))),
                    max_power_dbm=item.get("max_power_dbm"),
                    disabled=bool(item.get("disabled")),
                    no_ir=bool(item.get("no_ir")),
                    radar=bool(item.get("radar")),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    index = data.get("index")
    return Radio(
        phy=str(data.get("phy") or ""),
        index=index if isinstance(index, int) else None,
        modes=tuple(str(m) for m in data.get("modes") or ()),
        channels=tuple(channels),
    )


def supplicant_check_command(config_path: str) -> Command:
    """Let wpa_supplicant parse a mesh config on an interface that is absent.

    Like hostapd, wpa_supplicant has no check-only flag; it reads the whole
    file before it looks at the interface, and says ``Line N: ...`` and
    ``Failed to read or parse configuration`` when the file is wrong.
    """
    return Command(
        (
            "wpa_supplicant",
            "-D",
            "nl80211",
            "-i",
            hostapd.CHECK_INTERFACE,
            "-c",
            validate.absolute_path(config_path),
        ),
        timeout=hostapd.CHECK_TIMEOUT,
        check=False,
    )


def supplicant_check_errors(result: Any) -> list[str]:
    """wpa_supplicant's complaints about a config; ``[]`` when it parsed."""
    output = f"{result.stdout}\n{result.stderr}"
    errors = [
        line.strip()
        for line in output.splitlines()
        if re.match(
            r"^(Line \d+: |Failed to read or parse configuration)", line.strip()
        )
    ]
    if errors:
        return errors
    if "Successfully initialized wpa_supplicant" in output and result.returncode != 0:
        return []
    raise HostError(
        "wpa_supplicant gave no verdict on the configuration "
        f"(exit {result.returncode})"
    )
