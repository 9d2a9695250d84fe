"""The mesh as an operator sees it: health in plain words, neighbours, routes,
and a picture of the nodes this node can reach.

Everything here reads the worker's last :class:`portal.models.NodeStatus`
snapshot (babeld's neighbours, interfaces and installed routes, collected by
``portal.sample_status``) and the directory (:class:`meshnet.models.
DirectoryEntry`, for names). Pages never ask the system themselves.

The topology is what babel tells one node, drawn honestly: babel knows for
each destination only the *first hop* (the neighbour a packet leaves
through) and the metric, not the whole path. So the picture puts this node
in the middle, its neighbours on a first ring (lines labelled with the link
cost), and every other node on an outer ring next to the neighbour it is
reached through (dashed lines, labelled with the total metric). Names come
from the directory and are escaped by the template that draws the SVG.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal.status import STALE_AFTER_SECONDS

DEFAULT_PREFIXES = ("0.0.0.0/0", "::/0")


def _is_host_route(prefix: str) -> str | None:
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return None
    if network.version == 4 and network.prefixlen == 32:
        return str(network.network_address)
    return None


# -- health --------------------------------------------------------------------


@dataclass(frozen=True)
class MeshHealth:
    """The dashboard's one line about the mesh, from the last snapshot."""

    collected: bool
    stale: bool = False
    babel_available: bool = False
    babel_error: str = ""
    links_up: int = 0
    links_total: int = 0
    neighbours: int = 0
    nodes_reachable: int = 0
    gateway_reachable: bool = False
    # This node announces the mesh's default route (a working gateway); its
    # babeld then ignores the others' defaults, so the routes do not say it.
    is_gateway: bool = False

    @property
    def level(self) -> str:
        """``good``, ``warn`` or ``bad``, for the line's colour."""
        if not self.collected or not self.babel_available or not self.links_up:
            return "bad"
        if not self.neighbours or self.stale:
            return "warn"
        return "good"

    @property
    def parts(self) -> list[str]:
        """The line as short phrases, each a whole translatable sentence part."""
        if not self.collected:
            return [_("The mesh status has not been collected yet.")]
        if not self.babel_available:
            return [_("Mesh down: the routing daemon (babeld) is not running.")]
        parts = []
        if self.links_up:
            parts.append(
                ngettext(
                    "%(count)d mesh link up",
                    "%(count)d mesh links up",
                    self.links_up,
                )
                % {"count": self.links_up}
            )
        else:
            parts.append(_("no mesh link is up"))
        parts.append(
            ngettext("%(count)d neighbour", "%(count)d neighbours", self.neighbours)
            % {"count": self.neighbours}
        )
        parts.append(
            ngettext(
                "%(count)d node reachable",
                "%(count)d nodes reachable",
                self.nodes_reachable,
            )
            % {"count": self.nodes_reachable}
        )
        if self.is_gateway:
            parts.append(_("this node is the mesh's gateway to the Internet"))
        elif self.gateway_reachable:
            parts.append(_("a gateway to the Internet is reachable"))
        else:
            parts.append(_("no gateway to the Internet"))
        return parts


def _snapshot_age(collected_at: datetime | None) -> float | None:
    if collected_at is None:
        return None
    return max(0.0, (timezone.now() - collected_at).total_seconds())


def mesh_health(
    data: dict[str, Any] | None,
    collected_at: datetime | None,
    *,
    is_gateway: bool = False,
) -> MeshHealth:
    """Health from a snapshot's data (None when nothing was collected);
    ``is_gateway``: this node announces the default route now."""
    if data is None:
        return MeshHealth(collected=False)
    age = _snapshot_age(collected_at)
    stale = age is not None and age > STALE_AFTER_SECONDS
    babel = data.get("babel") or {}
    if not babel.get("available"):
        return MeshHealth(
            collected=True, stale=stale, babel_error=str(babel.get("error") or "")
        )
    interfaces = [i for i in babel.get("interfaces") or [] if isinstance(i, dict)]
    routes = [r for r in babel.get("routes") or [] if isinstance(r, dict)]
    return MeshHealth(
        collected=True,
        stale=stale,
        babel_available=True,
        links_up=sum(1 for i in interfaces if i.get("up")),
        links_total=len(interfaces),
        neighbours=len(babel.get("neighbours") or []),
        nodes_reachable=len({r.get("router_id") for r in routes if r.get("router_id")}),
        gateway_reachable=any(r.get("prefix") in DEFAULT_PREFIXES for r in routes),
        is_gateway=is_gateway,
    )


def mesh_health_context(snapshot: Any = None) -> dict[str, Any]:
    """Context for ``meshnet/status/health_line.html``.

    ``snapshot`` is a :class:`~portal.models.NodeStatus` (the dashboard
    already has one); None reads the latest.
    """
    from meshnet.models import MeshSettings
    from portal.models import NodeStatus

    if snapshot is None:
        snapshot = NodeStatus.latest()
    if snapshot is None:
        return {"mesh_health": mesh_health(None, None)}
    is_gateway = MeshSettings.load().announce_default_route
    return {
        "mesh_health": mesh_health(
            snapshot.data or {}, snapshot.collected_at, is_gateway=is_gateway
        )
    }


# -- names ---------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryNames:
    """Names of directory nodes by mesh address and by client subnet."""

    by_address: dict[str, str] = field(default_factory=dict)
    by_subnet: dict[str, str] = field(default_factory=dict)
    gateways: frozenset[str] = frozenset()

    @classmethod
    def load(cls) -> DirectoryNames:
        """One query over the live directory entries."""
        from .models import DirectoryEntry

        rows = DirectoryEntry.objects.filter(expires__gt=timezone.now()).values_list(
            "address", "name", "client_subnet", "gateway"
        )
        by_address, by_subnet, gateways = {}, {}, set()
        for address, name, subnet, gateway in rows:
            by_address[address] = name
            if subnet:
                by_subnet[subnet] = name
            if gateway:
                gateways.add(address)
        return cls(by_address, by_subnet, frozenset(gateways))

    def for_prefix(self, prefix: str) -> str:
        host = _is_host_route(prefix)
        if host is not None:
            return self.by_address.get(host, "")
        return self.by_subnet.get(prefix, "")


# -- neighbours and routes -----------------------------------------------------


@dataclass(frozen=True)
class RouteRow:
    prefix: str
    via: str
    interface: str
    metric: int
    router_id: str
    name: str
    is_default: bool


@dataclass(frozen=True)
class NeighbourRow:
    address: str
    interface: str
    cost: int
    rxcost: int
    txcost: int
    heard: int | None
    router_id: str
    name: str


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def route_rows(babel: dict[str, Any], names: DirectoryNames) -> list[RouteRow]:
    """The installed routes, sorted: defaults first, then by prefix."""
    rows = []
    for route in babel.get("routes") or []:
        if not isinstance(route, dict):
            continue
        prefix = str(route.get("prefix") or "")
        rows.append(
            RouteRow(
                prefix=prefix,
                via=str(route.get("via") or ""),
                interface=str(route.get("interface") or ""),
                metric=_int(route.get("metric")),
                router_id=str(route.get("router_id") or ""),
                name=names.for_prefix(prefix),
                is_default=prefix in DEFAULT_PREFIXES,
            )
        )

    def key(row: RouteRow) -> tuple[int, int, Any]:
        try:
            network = ipaddress.ip_network(row.prefix, strict=False)
            return (0 if row.is_default else 1, network.version, network)
        except ValueError:
            return (2, 0, row.prefix)

    return sorted(rows, key=lambda row: key(row)[:2] + (str(key(row)[2]),))


def _neighbour_router_ids(babel: dict[str, Any]) -> dict[str, str]:
    """Neighbour link address -> its router id (from the routes it originates)."""
    found: dict[str, str] = {}
    for route in babel.get("routes") or []:
        if isinstance(route, dict) and route.get("refmetric") == 0:
            via = str(route.get("via") or "")
            if via and route.get("router_id"):
                found.setdefault(via, str(route["router_id"]))
    return found


def _router_names(babel: dict[str, Any], names: DirectoryNames) -> dict[str, str]:
    """Router id -> a name (directory name of one of its /32s, else the /32)."""
    result: dict[str, str] = {}
    for route in babel.get("routes") or []:
        if not isinstance(route, dict):
            continue
        host = _is_host_route(str(route.get("prefix") or ""))
        router = str(route.get("router_id") or "")
        if host and router:
            name = names.by_address.get(host)
            if name or router not in result:
                result[router] = name or host
    return result


def neighbour_rows(babel: dict[str, Any], names: DirectoryNames) -> list[NeighbourRow]:
    ids = _neighbour_router_ids(babel)
    router_names = _router_names(babel, names)
    rows = []
    for neighbour in babel.get("neighbours") or []:
        if not isinstance(neighbour, dict):
            continue
        reach = neighbour.get("reach")
        address = str(neighbour.get("address") or "")
        router = ids.get(address, "")
        rows.append(
            NeighbourRow(
                address=address,
                interface=str(neighbour.get("interface") or ""),
                cost=_int(neighbour.get("cost")),
                rxcost=_int(neighbour.get("rxcost")),
                txcost=_int(neighbour.get("txcost")),
                heard=bin(reach & 0xFFFF).count("1")
                if isinstance(reach, int)
                else None,
                router_id=router,
                name=router_names.get(router, ""),
            )
        )
    return sorted(rows, key=lambda row: (row.cost, row.address))


# -- topology ------------------------------------------------------------------

SVG_SIZE = 640
CENTRE = SVG_SIZE / 2
INNER_RADIUS = 150
OUTER_RADIUS = 270
# Beyond this many nodes the picture would be unreadable; the page says so.
MAX_DRAWN_NODES = 120


@dataclass
class TopologyNode:
    key: str
    label: str
    kind: str  # "self" | "neighbour" | "remote"
    gateway: bool = False
    x: float = CENTRE
    y: float = CENTRE

    @property
    def label_y(self) -> float:
        return self.y + (34 if self.kind == "self" else 24)


@dataclass
class TopologyEdge:
    a: TopologyNode
    b: TopologyNode
    cost: int
    direct: bool

    @property
    def mid_x(self) -> float:
        return (self.a.x + self.b.x) / 2

    @property
    def mid_y(self) -> float:
        return (self.a.y + self.b.y) / 2


@dataclass
class Topology:
    nodes: list[TopologyNode]
    edges: list[TopologyEdge]
    size: int = SVG_SIZE
    cut: int = 0  # nodes left out beyond MAX_DRAWN_NODES


def build_topology(
    babel: dict[str, Any], names: DirectoryNames, *, own_name: str
) -> Topology:
    """Place this node, its neighbours and the nodes behind them."""
    me = TopologyNode(key="self", label=own_name, kind="self")
    me.gateway = any(
        isinstance(x, dict) and x.get("prefix") in DEFAULT_PREFIXES
        for x in babel.get("xroutes") or []
    )
    neighbour_ids = _neighbour_router_ids(babel)
    router_names = _router_names(babel, names)
    gateways = {
        str(r.get("router_id"))
        for r in babel.get("routes") or []
        if isinstance(r, dict) and r.get("prefix") in DEFAULT_PREFIXES
    }
    neighbours: dict[str, TopologyNode] = {}
    neighbour_cost: dict[str, int] = {}
    for row in neighbour_rows(babel, names):
        key = row.router_id or row.address
        if key in neighbours:
            continue
        neighbours[key] = TopologyNode(
            key=key,
            label=row.name or row.address,
            kind="neighbour",
            gateway=key in gateways,
        )
        neighbour_cost[key] = row.cost
    # Remote routers: grouped by the neighbour their routes leave through.
    behind: dict[str, dict[str, int]] = {}
    for route in babel.get("routes") or []:
        if not isinstance(route, dict):
            continue
        router = str(route.get("router_id") or "")
        if not router or router in neighbours:
            continue
        via = str(route.get("via") or "")
        first_hop = neighbour_ids.get(via, via)
        metric = _int(route.get("metric"))
        group = behind.setdefault(first_hop, {})
        if router not in group or metric < group[router]:
            group[router] = metric
    # Routes through a neighbour we do not hear any more: draw that hop too.
    for first_hop in behind:
        if first_hop not in neighbours:
            neighbours[first_hop] = TopologyNode(
                key=first_hop, label=first_hop, kind="neighbour"
            )
            neighbour_cost[first_hop] = 0
    drawn = 1 + len(neighbours)
    cut = 0
    nodes = [me]
    edges: list[TopologyEdge] = []
    ordered = sorted(neighbours.values(), key=lambda n: (n.label, n.key))
    sector = 2 * math.pi / max(1, len(ordered))
    for index, neighbour in enumerate(ordered):
        angle = -math.pi / 2 + index * sector
        neighbour.x = CENTRE + INNER_RADIUS * math.cos(angle)
        neighbour.y = CENTRE + INNER_RADIUS * math.sin(angle)
        nodes.append(neighbour)
        edges.append(TopologyEdge(me, neighbour, neighbour_cost[neighbour.key], True))
        remotes = sorted(
            behind.get(neighbour.key, {}).items(),
            key=lambda item: (router_names.get(item[0], item[0]), item[0]),
        )
        room = max(0, MAX_DRAWN_NODES - drawn)
        cut += max(0, len(remotes) - room)
        remotes = remotes[:room]
        drawn += len(remotes)
        for slot, (router, metric) in enumerate(remotes):
            spread = sector * 0.8
            offset = (
                0.0
                if len(remotes) == 1
                else -spread / 2 + spread * slot / (len(remotes) - 1)
            )
            remote = TopologyNode(
                key=router,
                label=router_names.get(router, router),
                kind="remote",
                gateway=router in gateways,
                x=CENTRE + OUTER_RADIUS * math.cos(angle + offset),
                y=CENTRE + OUTER_RADIUS * math.sin(angle + offset),
            )
            nodes.append(remote)
            edges.append(TopologyEdge(neighbour, remote, metric, False))
    return Topology(nodes=nodes, edges=edges, cut=cut)
