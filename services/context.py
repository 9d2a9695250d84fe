"""Everything a component needs to act on one service, as plain data.

A job builds a :class:`ServiceContext` once (catalogue entry, the host, the
node's addresses, the checked settings and the secrets) and hands it to the
components; tests build one by hand for a lab node. Nothing here touches
the database.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from portal.host.node import Host

from .catalogue import PLACEHOLDER_RE, CatalogueEntry


@dataclass(frozen=True)
class NodeNetwork:
    """The node's own addresses and interfaces on each side."""

    node_name: str
    client_addresses: tuple[str, ...] = ()
    mesh_addresses: tuple[str, ...] = ()
    client_interfaces: tuple[str, ...] = ()
    mesh_interfaces: tuple[str, ...] = ()
    uplink_addresses: tuple[str, ...] = ()
    domain: str = "mesh"

    @classmethod
    def from_mesh_state(cls, state: Any) -> NodeNetwork:
        """From a :class:`meshnet.state.MeshState` (its own or a lab node's)."""
        client: tuple[str, ...] = ()
        if state.client_subnet:
            network = ipaddress.IPv4Network(state.client_subnet, strict=False)
            client = (str(network.network_address + 1),)
        return cls(
            node_name=state.node_name,
            client_addresses=client,
            mesh_addresses=(state.mesh_address,) if state.mesh_address else (),
            client_interfaces=tuple(i.name for i in state.client_interfaces),
            mesh_interfaces=tuple(i.name for i in state.mesh_interfaces),
            domain=state.mesh_domain or "mesh",
        )


@dataclass(frozen=True)
class ServiceContext:
    """One service on one node: what it is, where it lives, its values."""

    entry: CatalogueEntry
    host: Host
    network: NodeNetwork
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    on_uplink: bool = False

    def node_path(self, name: str) -> str:
        """A service folder or TLS file as a node path."""
        entry = self.entry
        return {
            "config_dir": entry.config_dir,
            "data_dir": entry.data_dir,
            "run_dir": entry.run_dir,
            "log_dir": entry.log_dir,
            "tls_cert": f"{entry.config_dir}/tls/cert.pem",
            "tls_key": f"{entry.config_dir}/tls/key.pem",
            "tls_pem": f"{entry.config_dir}/tls/cert-and-key.pem",
        }[name]

    def real(self, name: str) -> str:
        """The same path as this machine sees it (lab: under the node root)."""
        return str(self.host.files.path(self.node_path(name)))

    def real_path(self, node_path: str) -> str:
        return str(self.host.files.path(node_path))

    @property
    def listen_all(self) -> tuple[str, ...]:
        extra = self.network.uplink_addresses if self.on_uplink else ()
        return (*self.network.client_addresses, *self.network.mesh_addresses, *extra)

    def placeholder(self, name: str) -> str:
        """The value of one ``{name}`` placeholder (catalogue-checked names)."""
        if name in (
            "config_dir",
            "data_dir",
            "run_dir",
            "log_dir",
            "tls_cert",
            "tls_key",
            "tls_pem",
        ):
            return self.real(name)
        if name == "client_address":
            return (self.network.client_addresses or ("127.0.0.1",))[0]
        if name == "mesh_address":
            return (self.network.mesh_addresses or ("127.0.0.1",))[0]
        if name.startswith("port_"):
            return str(self.entry.port(name[5:]).port)
        if name.startswith("setting_"):
            value = self.settings.get(name[8:])
            return "" if value is None else str(value)
        raise KeyError(name)


def expand(
    text: str, context: ServiceContext, extra: dict[str, str] | None = None
) -> str:
    """Replace ``{name}`` placeholders; names were checked at catalogue load."""
    extra = extra or {}

    def value(match: Any) -> str:
        name = match.group(1)
        if name in extra:
            return extra[name]
        return context.placeholder(name)

    return PLACEHOLDER_RE.sub(value, text)
