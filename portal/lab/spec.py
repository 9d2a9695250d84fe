"""What a lab looks like: its members, links and addresses, as plain data.

Nothing here touches the system; :mod:`portal.lab.lab` builds what this
module describes. Keeping the plan pure lets unit tests check a topology or
an address plan without root.

Address plan (the same in every lab, since each lab lives in namespaces of
its own and no two labs ever share a link):

- node ``nI`` has the mesh address ``10.213.0.I/32`` on its loopback, its
  identity in the mesh whatever links it has;
- node ``nI`` serves the client subnet ``10.213.I.0/24`` on its bridge
  ``br-lan`` and takes ``.1`` there; its dnsmasq leases the rest, as on a
  real node (:mod:`meshnet.dnsmasq_config`).

10.213/16 sits in the middle of 10/8, away from the 10.0/16, 10.1/16 and
10.10/16 blocks home routers and VPNs like to use, so a developer who looks
at lab routes beside the machine's own does not mistake one for the other.
Mesh links carry only IPv6 link-local addresses: babeld announces IPv4
routes through IPv6 next hops (v4-via-v6), as on a real mesh radio.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import asdict, dataclass

from portal.host.errors import InvalidValue

TOPOLOGIES = ("line", "ring", "grid")
MAX_NODES = 64
MAX_CLIENTS = 64

MESH_BLOCK = ipaddress.IPv4Network("10.213.0.0/24")
CLIENT_BRIDGE = "br-lan"
CLIENT_INTERFACE = "eth0"

_MEMBER = re.compile(
    r"^(?:(?P<short>[nc])(?P<n1>[0-9]{1,3})|(?P<long>node|client)-(?P<n2>[0-9]{1,3}))$"
)


@dataclass(frozen=True)
class LabSpec:
    """The shape of a lab: how many nodes, how they are linked, how many clients."""

    nodes: int = 3
    topology: str = "line"
    clients: int = 1
    # Only the "hardware" (namespaces, links, bridges): no addresses, no
    # daemons, no leases; a test configures the nodes itself.
    bare: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int):
            raise InvalidValue("the number of nodes must be a whole number")
        if not 1 <= self.nodes <= MAX_NODES:
            raise InvalidValue(f"a lab has 1 to {MAX_NODES} nodes, not {self.nodes}")
        if self.topology not in TOPOLOGIES:
            raise InvalidValue(
                f"topology must be one of {', '.join(TOPOLOGIES)}, "
                f"not {self.topology!r}"
            )
        if not isinstance(self.bare, bool):
            raise InvalidValue("bare is true or false")
        if isinstance(self.clients, bool) or not isinstance(self.clients, int):
            raise InvalidValue("the number of clients must be a whole number")
        if not 0 <= self.clients <= MAX_CLIENTS:
            raise InvalidValue(
                f"a lab has 0 to {MAX_CLIENTS} clients, not {self.clients}"
            )

    @property
    def node_names(self) -> list[str]:
        return [node_name(index) for index in range(1, self.nodes + 1)]

    @property
    def client_names(self) -> list[str]:
        return [client_name(index) for index in range(1, self.clients + 1)]

    def edges(self) -> list[tuple[str, str]]:
        """The node pairs joined by a veth link, lower index first."""
        return [
            (node_name(a), node_name(b))
            for a, b in topology_edges(self.topology, self.nodes)
        ]

    def node_of_client(self, client: str) -> str:
        """Clients are dealt round the nodes: c1 on n1, c2 on n2, ..."""
        index = member_index(client)
        return node_name((index - 1) % self.nodes + 1)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def topology_edges(topology: str, nodes: int) -> list[tuple[int, int]]:
    """Index pairs (1-based) of the links of a topology.

    - line: 1-2, 2-3, ... ;
    - ring: a line closed from the last node back to the first (3 nodes or
      more; with two nodes a ring is their one link);
    - grid: rows of ``ceil(sqrt(N))`` nodes, each linked to its right and
      lower neighbour; the last row may be short.
    """
    if topology == "line" or (topology == "ring" and nodes < 3):
        return [(i, i + 1) for i in range(1, nodes)]
    if topology == "ring":
        return [(i, i + 1) for i in range(1, nodes)] + [(1, nodes)]
    if topology == "grid":
        width = math.ceil(math.sqrt(nodes))
        edges = []
        for index in range(nodes):
            if (index + 1) % width and index + 1 < nodes:
                edges.append((index + 1, index + 2))
            if index + width < nodes:
                edges.append((index + 1, index + width + 1))
        return edges
    raise InvalidValue(f"unknown topology {topology!r}")


def node_name(index: int) -> str:
    return f"n{index}"


def client_name(index: int) -> str:
    return f"c{index}"


def member_index(name: str) -> int:
    """The number of ``n3`` or ``c2``."""
    return int(name[1:])


def parse_member(text: str) -> str:
    """``n1``, ``node-1``, ``c2`` or ``client-2`` as the short name (``n1``, ``c2``)."""
    match = _MEMBER.match(text.strip().lower()) if isinstance(text, str) else None
    if match is None:
        raise InvalidValue(
            f"{text!r} is not a lab member: use n1, node-1, c1 or client-1"
        )
    number = int(match["n1"] or match["n2"])
    kind = match["short"] or ("n" if match["long"] == "node" else "c")
    if number < 1:
        raise InvalidValue(f"{text!r} is not a lab member: numbers start at 1")
    return f"{kind}{number}"


def namespace_of(prefix: str, member: str) -> str:
    return f"{prefix}-{member}"


def mesh_address(node: str) -> ipaddress.IPv4Address:
    """The node's mesh address (its /32 identity in the mesh)."""
    return MESH_BLOCK.network_address + member_index(node)


def client_subnet(node: str) -> ipaddress.IPv4Network:
    """The /24 the node serves to its clients."""
    return ipaddress.IPv4Network(f"10.213.{member_index(node)}.0/24")


def client_gateway(node: str) -> ipaddress.IPv4Address:
    """The node's own address on its client subnet (``.1``)."""
    return client_subnet(node).network_address + 1


def link_interface(peer: str) -> str:
    """Name, inside a node, of its veth towards ``peer`` (``to-n2``)."""
    return f"to-{peer}"


def client_port(client: str) -> str:
    """Name, inside a node, of the bridge port a client is plugged into."""
    return f"cl-{client}"
