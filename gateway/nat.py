"""The gateway's nftables table: masquerade the mesh out of the uplink.

One table, ``ip byz_gateway``, owned by this app and by nothing else, so
turning sharing off is deleting that table and nothing more. It holds:

- ``postrouting`` (nat): packets from the node's client subnet and from the
  mesh (:data:`MESH_NETWORK`) leaving through the uplink are masqueraded to
  the uplink's address; the Internet never sees a mesh address and needs
  no route back to the mesh;
- ``forward`` (filter): connections the mesh opened come back in; nothing
  else from the uplink is forwarded into the mesh (the uplink's LAN, a
  hostile router, cannot reach mesh hosts through this node); TCP SYNs
  leaving through the uplink get their MSS clamped to the route's MTU,
  because tethered phones and satellite links often have a smaller MTU
  and drop the ICMP that would tell.

The file replaces the table in one transaction (``table``, ``delete
table``, then the new table): loading it twice gives one table, and a file
``nft -c`` refuses changes nothing. Values are validated before rendering;
a hostile interface name or network raises and nothing is rendered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _

from portal.host import validate
from portal.host.errors import InvalidValue

TABLE = "byz_gateway"
FAMILY = "ip"
# Where every mesh node's addresses come from (meshnet.addressing.MESH_RANGE).
MESH_NETWORK = "10.0.0.0/8"
MAX_SOURCE_NETWORKS = 16


@dataclass(frozen=True)
class NatPlan:
    """What the table needs: the uplink and the networks allowed out."""

    uplink_interface: str
    source_networks: tuple[str, ...]


def source_networks(client_subnet: str, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The node's client subnet, then the mesh, then ``extra``: no repeats,
    none inside another already listed."""
    networks: list[ipaddress.IPv4Network] = []
    for text in (client_subnet, MESH_NETWORK, *extra):
        if not text:
            continue
        network = _network(text)
        if any(network.subnet_of(other) for other in networks):
            continue
        networks = [n for n in networks if not n.subnet_of(network)] + [network]
    return tuple(str(n) for n in networks)


def _network(text: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(str(text), strict=True)
    except ValueError:
        network = None
    if network is None or network.prefixlen == 0:
        raise InvalidValue(
            _("%(value)s is not an IPv4 network that may use the uplink.")
            % {"value": repr(text)[:40]}
        )
    return network


def render(plan: NatPlan) -> str:
    """The nft file that (re)creates ``ip byz_gateway`` for ``plan``."""
    uplink = validate.interface_name(plan.uplink_interface)
    if not plan.source_networks:
        raise InvalidValue(_("No network is allowed to use the uplink."))
    if len(plan.source_networks) > MAX_SOURCE_NETWORKS:
        raise InvalidValue(
            _("At most %(count)s networks may use the uplink.")
            % {"count": MAX_SOURCE_NETWORKS}
        )
    sources = ", ".join(str(_network(text)) for text in plan.source_networks)
    return (
        "# The gateway's NAT, rendered by the portal; do not edit.\n"
        f"table {FAMILY} {TABLE}\n"
        f"delete table {FAMILY} {TABLE}\n"
        f"table {FAMILY} {TABLE} {{\n"
        f"\tset mesh_networks {{\n"
        f"\t\ttype ipv4_addr; flags interval;\n"
        f"\t\telements = {{ {sources} }}\n"
        f"\t}}\n"
        f"\tchain postrouting {{\n"
        f"\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        f'\t\toifname "{uplink}" ip saddr @mesh_networks masquerade\n'
        f"\t}}\n"
        f"\tchain forward {{\n"
        f"\t\ttype filter hook forward priority filter; policy accept;\n"
        f'\t\toifname "{uplink}" tcp flags syn tcp option maxseg size set rt mtu\n'
        f'\t\tiifname "{uplink}" ct state established,related accept\n'
        f'\t\tiifname "{uplink}" drop\n'
        f"\t}}\n"
        f"}}\n"
    )
