"""Reads of the interfaces part: every interface of the node, for the pages.

The web process runs no command: the interface list comes from the
``NodeStatus`` snapshot the worker samples (``portal.sample_status``), which
:func:`meshnet.wireless.collect_interface_details` extends with each
interface's driver and, for radios, what ``iw phy`` says they can do. The
rows here join that with the roles the operator gave (``MeshInterface``).

Kinds as the operator sees them: **wireless** (a radio), **wired** (an
Ethernet card), **virtual** (everything made in software: bridges, veth
pairs, VLANs, tunnels, loopback). What an interface may become follows from
it: a radio offers what it supports (ad-hoc, 802.11s, access point); a
wired or virtual link that carries frames (Ethernet, veth, VLAN, bond,
bridge) can be a wired mesh link or a wired client port; loopback,
batman-adv's ``bat0`` and layer-3 tunnels cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from portal.models import NodeStatus

from . import wireless
from .models import InterfaceMedium, InterfaceRole, MeshInterface

CATEGORY_WIRELESS = "wireless"
CATEGORY_WIRED = "wired"
CATEGORY_VIRTUAL = "virtual"
# ip kinds (portal.host.readers) whose links carry Ethernet frames.
_FRAME_KINDS = frozenset({"ethernet", "veth", "vlan", "bond", "bridge"})

# (role, medium) pairs, in the order the page offers them.
USES: tuple[tuple[str, str], ...] = (
    (InterfaceRole.MESH, InterfaceMedium.IBSS),
    (InterfaceRole.MESH, InterfaceMedium.MESH_POINT),
    (InterfaceRole.MESH, InterfaceMedium.WIRED),
    (InterfaceRole.CLIENTS, InterfaceMedium.ACCESS_POINT),
    (InterfaceRole.CLIENTS, InterfaceMedium.WIRED),
)


def use_key(role: str, medium: str) -> str:
    """``"mesh:ibss"``: one choice of the interface page."""
    return f"{role}:{medium}"


@dataclass(frozen=True)
class InterfaceRow:
    """One interface for the pages: the snapshot's facts plus its role."""

    name: str
    kind: str
    category: str
    mac: str
    driver: str
    operstate: str
    is_up: bool
    addresses: tuple[str, ...]
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    radio: wireless.Radio | None = None
    wireless_type: str = ""
    wireless_channel: int | None = None
    assignment: MeshInterface | None = None
    uses: tuple[str, ...] = field(default_factory=tuple)

    @property
    def configurable(self) -> bool:
        return bool(self.uses)

    @property
    def usable_channels(self) -> tuple[wireless.Channel, ...]:
        return self.radio.usable_channels() if self.radio else ()


@dataclass(frozen=True)
class InterfaceOverview:
    """The list page's data: rows, how old they are, and why if missing."""

    rows: tuple[InterfaceRow, ...]
    collected_at: datetime | None
    error: str = ""
    radios_error: str = ""
    # Interfaces with a role whose device the snapshot does not show.
    missing: tuple[MeshInterface, ...] = ()

    @property
    def age_seconds(self) -> float | None:
        if self.collected_at is None:
            return None
        return max(0.0, (timezone.now() - self.collected_at).total_seconds())


def _category(kind: str, is_wireless: bool) -> str:
    if is_wireless or kind == "wireless":
        return CATEGORY_WIRELESS
    if kind == "ethernet":
        return CATEGORY_WIRED
    return CATEGORY_VIRTUAL


def _uses(kind: str, category: str, radio: wireless.Radio | None) -> tuple[str, ...]:
    if category == CATEGORY_WIRELESS:
        if radio is None:
            # The radio's abilities are not known yet: offer every wireless
            # use; the worker's plan fails clearly if the card cannot.
            media = {"ibss", "mesh-point", "ap"}
        else:
            media = {
                medium
                for medium, supported in (
                    ("ibss", radio.supports_ibss),
                    ("mesh-point", radio.supports_mesh_point),
                    ("ap", radio.supports_ap),
                )
                if supported
            }
        return tuple(
            use_key(role, medium) for role, medium in USES if str(medium) in media
        )
    if kind in _FRAME_KINDS:
        return (
            use_key(InterfaceRole.MESH, InterfaceMedium.WIRED),
            use_key(InterfaceRole.CLIENTS, InterfaceMedium.WIRED),
        )
    return ()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _rows(data: dict[str, Any]) -> list[InterfaceRow]:
    details = data.get("interface_details") or {}
    drivers = details.get("drivers") or {}
    wireless_info = details.get("wireless") or {}
    radios = {
        phy: wireless.radio_from_dict(radio)
        for phy, radio in (details.get("radios") or {}).items()
        if isinstance(radio, dict)
    }
    assignments = {row.name: row for row in MeshInterface.objects.all()}
    rows = []
    for item in data.get("interfaces") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = item["name"]
        kind = str(item.get("kind") or "other")
        info = wireless_info.get(name) if isinstance(wireless_info, dict) else None
        info = info if isinstance(info, dict) else {}
        radio = radios.get(str(info.get("phy"))) if info else None
        category = _category(kind, bool(info))
        flags = item.get("flags") or []
        addresses = tuple(
            f"{a.get('address')}/{a.get('prefixlen')}"
            for a in item.get("addresses") or []
            if isinstance(a, dict) and a.get("address")
        )
        channel = info.get("channel")
        rows.append(
            InterfaceRow(
                name=name,
                kind=kind,
                category=category,
                mac=str(item.get("mac") or ""),
                driver=str(drivers.get(name) or ""),
                operstate=str(item.get("operstate") or "UNKNOWN"),
                is_up="UP" in flags,
                addresses=addresses,
                rx_bytes=_int(item.get("rx_bytes")),
                tx_bytes=_int(item.get("tx_bytes")),
                rx_packets=_int(item.get("rx_packets")),
                tx_packets=_int(item.get("tx_packets")),
                radio=radio,
                wireless_type=str(info.get("type") or ""),
                wireless_channel=channel if isinstance(channel, int) else None,
                assignment=assignments.get(name),
                uses=_uses(kind, category, radio),
            )
        )
    return rows


def interface_overview() -> InterfaceOverview:
    """Every interface from the latest snapshot, with its role if any."""
    snapshot = NodeStatus.latest()
    if snapshot is None:
        return InterfaceOverview(
            rows=(), collected_at=None, missing=tuple(MeshInterface.objects.all())
        )
    data = snapshot.data or {}
    rows = _rows(data)
    names = {row.name for row in rows}
    details = data.get("interface_details") or {}
    return InterfaceOverview(
        rows=tuple(rows),
        collected_at=snapshot.collected_at,
        error=str(data.get("interfaces_error") or ""),
        radios_error=str(details.get("error") or ""),
        missing=tuple(MeshInterface.objects.exclude(name__in=names)),
    )


def interface_row(name: str) -> InterfaceRow | None:
    """One interface of the latest snapshot, or None."""
    snapshot = NodeStatus.latest()
    if snapshot is None:
        return None
    for row in _rows(snapshot.data or {}):
        if row.name == name:
            return row
    return None


def client_interface_names() -> list[str]:
    """Interfaces that serve clients now (the node has one client subnet)."""
    return list(
        MeshInterface.objects.filter(role=InterfaceRole.CLIENTS).values_list(
            "name", flat=True
        )
    )
