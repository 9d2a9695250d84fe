"""What this node announces: running, healthy, not withdrawn services.

:func:`announced_services` is read by the web process (no command runs):
the node document (``GET /api/v1/node``, and through it the directory of
every other node, mesh DNS ``SERVICE.NODE.mesh`` and their captive pages)
gets it through the provider registered with
:func:`meshnet.node_document.register_service_provider` in
``ServicesConfig.ready``; the captive page of this node reads the same
provider. mDNS records on the client side are written by the announcement
component (:mod:`services.components`) for the responder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import catalogue as catalogue_module
from .catalogue import CatalogueEntry
from .context import NodeNetwork
from .models import ObservedState, ServiceState


@dataclass(frozen=True)
class AnnouncedService:
    """One service as a client on the mesh reaches it."""

    id: str
    name: str
    protocol: str
    port: int | None
    url: str
    purpose: str = ""


def client_use(entry: CatalogueEntry, host: str) -> AnnouncedService:
    """How a client reaches ``entry`` at ``host`` (an address or a name)."""
    client = entry.client
    if client.kind == "url":
        url = client.url.replace("{host}", host)
        for port in entry.ports:
            url = url.replace("{port_" + port.name + "}", str(port.port))
        port_number = None
        for port in entry.ports:
            if f":{port.port}/" in url or url.endswith(f":{port.port}"):
                port_number = port.port
        return AnnouncedService(
            id=entry.id,
            name=entry.name,
            protocol=url.split(":", 1)[0],
            port=port_number,
            url=url,
            purpose=entry.purpose,
        )
    port = entry.port(client.port)
    return AnnouncedService(
        id=entry.id,
        name=entry.name,
        protocol=port.name,
        port=port.port,
        url="",
        purpose=entry.purpose,
    )


def announced_rows() -> list[ServiceState]:
    """Rows of services that are on, running, healthy and not withdrawn."""
    known = set(catalogue_module.catalogue().ids())
    rows = ServiceState.objects.filter(
        enabled=True,
        observed=ObservedState.RUNNING,
        withdrawn=False,
        last_health_ok=True,
    ).order_by("service_id")
    return [row for row in rows if row.service_id in known]


def _network() -> NodeNetwork:
    from meshnet.state import MeshState

    return NodeNetwork.from_mesh_state(MeshState.from_db())


def announced_services(network: NodeNetwork | None = None) -> list[AnnouncedService]:
    """Every announced service, reached at the node's mesh address."""
    network = network or _network()
    host = (network.mesh_addresses or network.client_addresses or ("",))[0]
    cat = catalogue_module.catalogue()
    return [client_use(cat.get(row.service_id), host) for row in announced_rows()]


def service_offers() -> Iterable:
    """The provider meshnet's node document calls."""
    from meshnet.node_document import ServiceOffer

    return [
        ServiceOffer(
            id=service.id,
            name=service.name,
            protocol=service.protocol,
            port=service.port,
            url=service.url,
            purpose=service.purpose[:200],
        )
        for service in announced_services()
    ]
