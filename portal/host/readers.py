"""Parsers for machine output of ``ip -j`` into small frozen dataclasses.

- :func:`parse_ip_addr` reads ``ip -j -s -d addr show`` (it also reads ``ip
  -j link show``: interfaces then simply have no addresses and, without
  ``-s``, zero counters).
- :func:`parse_ip_route` reads ``ip -j route show`` and ``ip -j -6 route``.

Decisions:

- Output that is not JSON (or not a JSON list) raises
  :class:`~portal.host.errors.HostError`: a caller must not mistake "could
  not read" for "no interfaces". Missing keys inside an entry are tolerated
  (older or newer iproute2, virtual devices without a MAC or counters) and
  take neutral defaults; an entry without a name is skipped.
- A route's next hop is ``gateway``, or ``via.host`` for an IPv4 route through
  an IPv6 next hop (RFC 9229, which babeld uses when a link has no IPv4).
- The kind of an interface comes from ``link_type`` and
  ``linkinfo.info_kind`` (needs ``-d``). Wireless cannot be seen in ``ip``'s
  JSON at all: a wireless card is plain ``ether``. The caller passes the set
  of wireless interface names, read from ``/sys/class/net/*/wireless`` (a
  folder that exists only for wireless devices) or from ``iw dev``; it is a
  parameter so the parser stays pure and testable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import HostError

# linkinfo.info_kind -> our kind. Any other info_kind is "virtual".
_KIND_BY_INFO_KIND = {
    "bridge": "bridge",
    "veth": "veth",
    "vlan": "vlan",
    "batadv": "batman",
    "wireguard": "wireguard",
    "tun": "tunnel",
    "gre": "tunnel",
    "ipip": "tunnel",
    "sit": "tunnel",
    "dummy": "dummy",
    "bond": "bond",
}
KINDS = (
    "loopback",
    "ethernet",
    "wireless",
    "bridge",
    "veth",
    "vlan",
    "batman",
    "wireguard",
    "tunnel",
    "dummy",
    "bond",
    "virtual",
    "other",
)


@dataclass(frozen=True)
class InterfaceAddress:
    """One address on an interface."""

    family: str  # "inet" or "inet6"
    address: str
    prefixlen: int
    scope: str  # "global", "link", "host" ...

    @property
    def with_prefix(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True)
class InterfaceInfo:
    """One network interface as ``ip`` sees it."""

    name: str
    index: int
    kind: str
    mac: str | None
    operstate: str
    mtu: int
    flags: tuple[str, ...]
    addresses: tuple[InterfaceAddress, ...]
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0

    @property
    def is_up(self) -> bool:
        return "UP" in self.flags

    def addresses_of(self, family: str) -> tuple[InterfaceAddress, ...]:
        return tuple(a for a in self.addresses if a.family == family)


@dataclass(frozen=True)
class Route:
    """One route. ``destination`` is as ip prints it ("default", "10.0.0.2")."""

    destination: str
    family: str  # "inet" or "inet6"
    gateway: str | None
    device: str | None
    protocol: str | None
    scope: str | None
    metric: int | None
    table: str | None
    preferred_source: str | None
    type: str  # "unicast", "unreachable", "local" ...
    flags: tuple[str, ...]

    @property
    def is_default(self) -> bool:
        return self.destination == "default"


def _load_list(text: str, what: str) -> list[Any]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as error:
        raise HostError(f"{what} output is not JSON: {error}") from None
    if not isinstance(data, list):
        raise HostError(f"{what} output is not a JSON list")
    return data


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _kind(entry: Mapping[str, Any], name: str, wireless: frozenset[str]) -> str:
    if name in wireless:
        return "wireless"
    link_type = entry.get("link_type")
    info_kind = _mapping(entry.get("linkinfo")).get("info_kind")
    if link_type == "loopback":
        return "loopback"
    if isinstance(info_kind, str):
        return _KIND_BY_INFO_KIND.get(info_kind, "virtual")
    if link_type == "ether":
        return "ethernet"
    if link_type == "none" or link_type is None:
        return "virtual"
    return "other"


def _address(entry: Mapping[str, Any]) -> InterfaceAddress | None:
    family = _str(entry.get("family"))
    local = _str(entry.get("local"))
    if family not in ("inet", "inet6") or local is None:
        return None
    return InterfaceAddress(
        family=family,
        address=local,
        prefixlen=_int(entry.get("prefixlen")),
        scope=_str(entry.get("scope")) or "global",
    )


def wireless_interfaces(sys_class_net: Path = Path("/sys/class/net")) -> frozenset[str]:
    """Names of wireless interfaces: those with a ``wireless`` folder in sysfs.

    /sys shows the network namespace of the process that mounted it, so for
    a lab node (a namespace) this reads the machine's own view; lab nodes
    have no radios anyway, and the empty set is then the right answer.
    """
    try:
        return frozenset(
            entry.name
            for entry in sys_class_net.iterdir()
            if (entry / "wireless").exists()
        )
    except OSError:
        return frozenset()


def parse_ip_addr(text: str, *, wireless: Iterable[str] = ()) -> list[InterfaceInfo]:
    """Interfaces from ``ip -j -s -d addr show``; ``wireless``: names of radios."""
    radios = frozenset(wireless)
    interfaces = []
    for entry in _load_list(text, "ip addr"):
        entry = _mapping(entry)
        name = _str(entry.get("ifname"))
        if not name:
            continue
        addresses = tuple(
            address
            for item in entry.get("addr_info") or ()
            if (address := _address(_mapping(item))) is not None
        )
        stats = _mapping(entry.get("stats64") or entry.get("stats"))
        rx, tx = _mapping(stats.get("rx")), _mapping(stats.get("tx"))
        flags = entry.get("flags")
        interfaces.append(
            InterfaceInfo(
                name=name,
                index=_int(entry.get("ifindex")),
                kind=_kind(entry, name, radios),
                mac=_str(entry.get("address")),
                operstate=_str(entry.get("operstate")) or "UNKNOWN",
                mtu=_int(entry.get("mtu")),
                flags=tuple(f for f in flags if isinstance(f, str))
                if isinstance(flags, list)
                else (),
                addresses=addresses,
                rx_bytes=_int(rx.get("bytes")),
                tx_bytes=_int(tx.get("bytes")),
                rx_packets=_int(rx.get("packets")),
                tx_packets=_int(tx.get("packets")),
            )
        )
    return interfaces


def _family_of(entry: Mapping[str, Any], default: str) -> str:
    for key in ("dst", "gateway", "prefsrc"):
        value = _str(entry.get(key))
        if value and value != "default":
            return "inet6" if ":" in value else "inet"
    return default


def parse_ip_route(text: str, *, family: str | None = None) -> list[Route]:
    """Routes from ``ip -j route show`` (``family`` "inet6" for ``-6``).

    ``family`` is only the fallback for routes that name no address at all
    (``default dev wg0``); otherwise it is read from the addresses.
    """
    routes = []
    for entry in _load_list(text, "ip route"):
        entry = _mapping(entry)
        destination = _str(entry.get("dst"))
        if not destination:
            continue
        flags = entry.get("flags")
        metric = entry.get("metric")
        table = entry.get("table")
        routes.append(
            Route(
                destination=destination,
                family=_family_of(entry, family or "inet"),
                gateway=_str(entry.get("gateway"))
                or _str(_mapping(entry.get("via")).get("host")),
                device=_str(entry.get("dev")),
                protocol=_str(entry.get("protocol")),
                scope=_str(entry.get("scope")),
                metric=_int(metric) if metric is not None else None,
                table=str(table) if isinstance(table, str | int) else None,
                preferred_source=_str(entry.get("prefsrc")),
                type=_str(entry.get("type")) or "unicast",
                flags=tuple(f for f in flags if isinstance(f, str))
                if isinstance(flags, list)
                else (),
            )
        )
    return routes
