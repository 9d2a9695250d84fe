"""The mesh state of one node as plain data, detached from the database.

Jobs read the models once, turn them into a :class:`MeshState` and hand it
to the plain functions that render configs and plan commands. The same
value is what a rollback stores (``to_dict``/``from_dict``) and what the lab
tests build by hand for nodes that have no database of their own, so every
node of a test mesh is configured by the same code as the real one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class InterfaceState:
    """One interface with a role on the mesh (see ``MeshInterface``)."""

    name: str
    role: str  # "mesh" | "clients"
    medium: str  # "ibss" | "mesh-point" | "wired" | "ap"
    essid: str = ""
    channel: int | None = None
    bssid: str = ""
    mesh_id: str = ""
    passphrase: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class MeshState:
    """Everything needed to configure the mesh side of one node."""

    node_name: str
    protocol: str = "babel"
    mesh_address: str | None = None
    client_subnet: str = ""
    mesh_domain: str = "mesh"
    babel_hmac_key: str = ""
    dhcp_lease_seconds: int = 3600
    announce_default_route: bool = False
    # How the addresses were chosen ("auto", "manual" or "" for not yet):
    # carried here so a rolled-back address change also restores it.
    address_origin: str = ""
    interfaces: tuple[InterfaceState, ...] = field(default_factory=tuple)
    # RFC 8908 API URI for DHCP option 114; set by the captive app when its
    # portal is on, None otherwise.
    captive_portal_api: str | None = None
    # Where dnsmasq forwards names that are not the mesh's (IP or IPv4#PORT);
    # set by the gateway app, empty for a mesh without a way out.
    upstream_servers: tuple[str, ...] = ()
    # A working gateway also answers DNS for the other nodes of the mesh
    # (on its mesh links, never DHCP there); set by the gateway app.
    dns_for_mesh: bool = False
    # While the captive portal is on and the mesh has no way to the
    # Internet, every name outside the mesh domain resolves to this address
    # of the node (the captive app decides, see captive.probes), so a phone
    # that types any site lands on the node's pages instead of a DNS error.
    offline_dns_answer: str | None = None

    @property
    def mesh_interfaces(self) -> tuple[InterfaceState, ...]:
        return tuple(i for i in self.interfaces if i.enabled and i.role == "mesh")

    @property
    def client_interfaces(self) -> tuple[InterfaceState, ...]:
        return tuple(i for i in self.interfaces if i.enabled and i.role == "clients")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interfaces"] = [asdict(i) for i in self.interfaces]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeshState:
        values = dict(data)
        values["interfaces"] = tuple(
            InterfaceState(**item) for item in values.get("interfaces", ())
        )
        values["upstream_servers"] = tuple(values.get("upstream_servers", ()))
        return cls(**values)

    @classmethod
    def from_db(cls) -> MeshState:
        """Read the desired state from the models (jobs call this)."""
        from portal.models import NodeSettings

        from .models import MeshInterface, MeshSettings

        settings_row = MeshSettings.load()
        node = NodeSettings.peek()
        interfaces = tuple(
            InterfaceState(
                name=row.name,
                role=row.role,
                medium=row.medium,
                essid=row.essid,
                channel=row.channel,
                bssid=row.bssid,
                mesh_id=row.mesh_id,
                passphrase=row.passphrase,
                enabled=row.enabled,
            )
            for row in MeshInterface.objects.order_by("role", "name")
        )
        return cls(
            node_name=node.node_name or "node",
            protocol=settings_row.protocol,
            mesh_address=settings_row.mesh_address,
            client_subnet=settings_row.client_subnet,
            mesh_domain=settings_row.mesh_domain,
            babel_hmac_key=settings_row.babel_hmac_key,
            dhcp_lease_seconds=settings_row.dhcp_lease_seconds,
            announce_default_route=settings_row.announce_default_route,
            address_origin=settings_row.address_origin,
            interfaces=interfaces,
            captive_portal_api=_captive_portal_api(),
            upstream_servers=_upstream_servers(),
            dns_for_mesh=settings_row.announce_default_route,
            offline_dns_answer=_offline_dns_answer(),
        )


def _captive_portal_api() -> str | None:
    """The captive app's RFC 8908 API URI when its portal is on (option 114)."""
    from captive.selectors import captive_portal_api_uri

    return captive_portal_api_uri()


def _upstream_servers() -> tuple[str, ...]:
    """The gateway app's choice of upstream resolvers for dnsmasq."""
    from gateway.selectors import dns_upstream_servers

    return dns_upstream_servers()


def _offline_dns_answer() -> str | None:
    """The captive app's answer for every outside name while offline."""
    from captive.selectors import offline_dns_answer

    return offline_dns_answer()
