"""Reads of the gateway app: settings, the mode, upstream DNS, choices.

Read-only; never creates rows (the web process may call these on every
page, and ``MeshState.from_db`` calls :func:`dns_upstream_servers`).
"""

from __future__ import annotations

from typing import Any

from . import dns
from .apply import GatewayPlan, OnionChoice, UplinkConfig
from .models import GatewayMode, GatewaySettings


def gateway_settings() -> GatewaySettings:
    """The settings row, or an unsaved row of defaults before the first save."""
    return GatewaySettings.objects.filter(pk=1).first() or GatewaySettings()


def gateway_mode() -> str:
    """``none`` / ``direct`` / ``tor``: how this node's mesh reaches the Internet."""
    return gateway_settings().mode


def internet_summary() -> dict[str, Any]:
    """What the dashboard shows: the mode and its words."""
    row = gateway_settings()
    return {
        "mode": row.mode,
        "label": GatewayMode(row.mode).label,
        "uplink": row.uplink_interface,
        "sharing": row.sharing,
        "online": row.uplink_online,
        "tor_progress": row.tor_progress,
    }


def onion_service_choices() -> list[tuple[str, str]]:
    """Catalogue services that may be published as onion services."""
    from services.catalogue import catalogue

    return [(entry.id, str(entry.name)) for entry in catalogue() if entry.onion]


def onion_choices_for(ids: list[str]) -> tuple[OnionChoice, ...]:
    """The chosen catalogue ids with the port each publishes (first TCP port)."""
    from services.catalogue import catalogue

    cat = catalogue()
    chosen = []
    for service_id in ids:
        try:
            entry = cat.get(service_id)
        except KeyError:
            continue
        ports = [p for p in entry.ports if p.proto == "tcp"]
        if entry.onion and ports:
            chosen.append(OnionChoice(name=entry.id, port=ports[0].port))
    return tuple(chosen)


def mesh_gateway_addresses() -> list[str]:
    """Client-side addresses (``x.x.x.1``) of the mesh's other gateways, from
    the directory: where this node's dnsmasq forwards Internet names."""
    from meshnet.models import DirectoryEntry
    from meshnet.node_document import client_gateway_address

    addresses = []
    for entry in DirectoryEntry.objects.filter(gateway=True).order_by("name"):
        address = client_gateway_address(entry.client_subnet) or entry.address
        addresses.append(address)
    return addresses


def _own_addresses() -> list[str]:
    from meshnet.models import MeshSettings
    from meshnet.node_document import client_gateway_address

    mesh = MeshSettings.objects.filter(pk=1).first()
    if mesh is None:
        return []
    return [
        a for a in (mesh.mesh_address, client_gateway_address(mesh.client_subnet)) if a
    ]


def dns_upstream_servers() -> tuple[str, ...]:
    """dnsmasq's upstreams for this node now (see :mod:`gateway.dns`)."""
    row = gateway_settings()
    tor_listen = None
    if row.sharing and row.tor_enabled:
        own = _own_addresses()
        tor_listen = own[-1] if own else None
    return dns.choose_upstreams(
        sharing=row.sharing and bool(row.uplink_interface),
        online=row.uplink_online,
        tor=row.tor_enabled,
        mode=row.dns_mode,
        lease_servers=row.lease_dns_servers or (),
        custom=row.dns_servers or (),
        mesh_gateways=mesh_gateway_addresses(),
        own_addresses=_own_addresses(),
        tor_listen=tor_listen,
    )


def gateway_plan() -> GatewayPlan:
    """The plan :func:`gateway.apply.apply_gateway` applies, from the row."""
    row = gateway_settings()
    uplink = (
        UplinkConfig(
            interface=row.uplink_interface,
            addressing=row.addressing,
            address=row.static_address,
            router=row.static_router or "",
        )
        if row.uplink_interface
        else None
    )
    return GatewayPlan(
        uplink=uplink,
        sharing=row.sharing,
        online=row.uplink_online,
        tor=row.tor_enabled,
        onion_services=onion_choices_for(list(row.onion_services or [])),
        upstream_servers=dns_upstream_servers(),
    )
