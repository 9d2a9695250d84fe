"""Which interfaces could be this node's uplink, read from the kernel.

An uplink is the node's own way to the Internet: an Ethernet cable to a
home router, a phone's USB tethering, a satellite terminal. The operator
picks one on the gateway page; this module only says which interfaces are
worth offering and why, from what ``ip -j`` and the DHCP lease files say:

- *carrier*: the link is up and has a carrier (``LOWER_UP``);
- *DHCP lease*: a lease file of the portal's uplink DHCP client names it;
- *default route*: the kernel already routes the Internet through it;
- *switched off*: a wired interface nobody has switched on (``ip link`` shows
  it down). Its carrier cannot be known until it is up, and a fresh Debian
  machine leaves an unconfigured Ethernet port down, so a cable to a home
  router would otherwise go unseen; choosing it switches it on. Scanning
  never switches anything on itself: a scan changes nothing.

Interfaces the mesh already uses (mesh links, the client bridge and its
ports, ``lo``, ``bat0``) are never candidates: sharing the mesh with itself
would loop. Everything here is plain data and pure functions; the caller
runs the commands (:func:`read_candidates` takes a host).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from portal.host.builders import inspect
from portal.host.errors import HostError
from portal.host.readers import InterfaceInfo, Route, parse_ip_addr, parse_ip_route

# Kinds of interface offered even while switched off (wired ports; the lab's
# uplink is a veth).
_WIRED_KINDS = frozenset({"ethernet", "veth"})
# Kinds of interface that can never be an uplink here.
_NOT_UPLINK_KINDS = frozenset({"loopback", "bridge"})
_NOT_UPLINK_NAMES = frozenset({"lo", "bat0"})


@dataclass(frozen=True)
class UplinkCandidate:
    """One interface that could carry the node's Internet traffic."""

    name: str
    kind: str
    carrier: bool
    addresses: tuple[str, ...] = ()
    default_route: bool = False
    gateway: str | None = None
    lease: bool = False
    switched_off: bool = False

    @property
    def score(self) -> int:
        """How likely this is the uplink: a default route beats a lease beats
        a bare carrier (for ordering the list, never for choosing)."""
        return 4 * self.default_route + 2 * self.lease + self.carrier


@dataclass(frozen=True)
class DhcpLease:
    """What one lease of the uplink's DHCP client says (the newest one)."""

    interface: str
    address: str | None = None
    routers: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()
    subnet_mask: str | None = None
    extras: dict[str, str] = field(default_factory=dict)


def candidates(
    interfaces: Sequence[InterfaceInfo],
    routes: Sequence[Route],
    *,
    leased: Iterable[str] = (),
    mesh_interfaces: Iterable[str] = (),
) -> list[UplinkCandidate]:
    """Interfaces that could be an uplink, best first.

    ``mesh_interfaces``: names the mesh uses (mesh links, client interfaces
    and bridge ports), never offered. ``leased``: interfaces holding a DHCP
    lease. An interface is offered when it has a carrier, a lease or a
    default route, or when it is a wired port that is switched off (its
    carrier unknown); one that is up without a carrier (no cable) is not.
    """
    excluded = set(mesh_interfaces) | _NOT_UPLINK_NAMES
    leased_names = set(leased)
    defaults = {
        route.device: route.gateway
        for route in routes
        if route.is_default and route.family == "inet" and route.device
    }
    found = []
    for info in interfaces:
        if info.name in excluded or info.kind in _NOT_UPLINK_KINDS:
            continue
        if "MASTER" in info.flags or "SLAVE" in info.flags:
            continue
        carrier = info.is_up and "LOWER_UP" in info.flags
        has_default = info.name in defaults
        lease = info.name in leased_names
        switched_off = not info.is_up and info.kind in _WIRED_KINDS
        if not (carrier or has_default or lease or switched_off):
            continue
        found.append(
            UplinkCandidate(
                name=info.name,
                kind=info.kind,
                carrier=carrier,
                addresses=tuple(
                    a.with_prefix
                    for a in info.addresses_of("inet")
                    if a.scope == "global"
                ),
                default_route=has_default,
                gateway=defaults.get(info.name),
                lease=lease,
                switched_off=switched_off and not (has_default or lease),
            )
        )
    return sorted(found, key=lambda c: (-c.score, c.name))


_LEASE_BLOCK = re.compile(r"lease\s*\{(?P<body>.*?)\}", re.S)
_LEASE_INTERFACE = re.compile(r'^\s*interface\s+"(?P<name>[^"]{1,15})"\s*;', re.M)
_LEASE_ADDRESS = re.compile(r"^\s*fixed-address\s+(?P<ip>[0-9.]{7,15})\s*;", re.M)
_LEASE_OPTION = re.compile(
    r"^\s*option\s+(?P<name>[a-z0-9-]{1,40})\s+(?P<value>[^;\n]{0,400});", re.M
)


def _ipv4_list(text: str) -> tuple[str, ...]:
    values = []
    for word in text.split(","):
        word = word.strip()
        try:
            address = ipaddress.IPv4Address(word)
        except ValueError:
            continue
        if not (address.is_unspecified or address.is_multicast):
            values.append(str(address))
    return tuple(values)


def parse_dhclient_leases(text: str) -> DhcpLease | None:
    """The newest lease of an ISC dhclient lease file (the last block).

    The file is written by dhclient from what a DHCP server sent: a router
    on the uplink is not trusted, so only addresses that parse are kept and
    everything else is dropped.
    """
    blocks = list(_LEASE_BLOCK.finditer(text or ""))
    if not blocks:
        return None
    body = blocks[-1].group("body")
    interface = _LEASE_INTERFACE.search(body)
    if interface is None:
        return None
    address = _LEASE_ADDRESS.search(body)
    options = {
        m.group("name"): m.group("value").strip() for m in _LEASE_OPTION.finditer(body)
    }
    fixed = _ipv4_list(address.group("ip")) if address else ()
    return DhcpLease(
        interface=interface.group("name"),
        address=fixed[0] if fixed else None,
        routers=_ipv4_list(options.get("routers", "")),
        dns_servers=_ipv4_list(options.get("domain-name-servers", "")),
        subnet_mask=(_ipv4_list(options.get("subnet-mask", "")) or (None,))[0],
    )


def read_candidates(
    host, *, mesh_interfaces: Iterable[str] = (), leased: Iterable[str] = ()
) -> list[UplinkCandidate]:  # noqa: ANN001 - a portal.host.node.Host
    """Run ``ip -j addr`` and ``ip -j route`` on ``host`` and list candidates.

    Raises :class:`~portal.host.errors.HostError` when the kernel's answer
    cannot be read (dry-run mode answers nothing).
    """
    addr = host.runner.run(inspect.addr_show()).stdout
    route = host.runner.run(inspect.route_show(family=4)).stdout
    if not addr.strip():
        raise HostError("no interface data (dry-run mode?)")
    return candidates(
        parse_ip_addr(addr),
        parse_ip_route(route or "[]", family="inet"),
        leased=leased,
        mesh_interfaces=[*mesh_interfaces, *bridge_ports(addr)],
    )


def bridge_ports(addr_json: str) -> list[str]:
    """Interfaces enslaved to a bridge or bond (``"master"`` in ``ip -j``):
    the client bridge's ports are never an uplink."""
    try:
        entries = json.loads(addr_json or "[]")
    except ValueError:
        return []
    return [
        str(e.get("ifname"))
        for e in entries
        if isinstance(e, dict) and e.get("master") and e.get("ifname")
    ]
