"""Where the node's dnsmasq sends names that are not the mesh's own.

dnsmasq answers ``NAME.mesh`` itself and forwards every other name to its
upstream servers (:mod:`meshnet.dnsmasq_config`, ``upstream_servers``).
This module chooses them:

- a gateway whose uplink works, in *direct* mode, uses its
  :data:`DnsMode` choice: the resolvers its uplink's DHCP lease named
  (``uplink``; when the lease named none, the public fallback list),
  the operator's own servers (``custom``), or the public fallback list
  (``public``, :data:`PUBLIC_RESOLVERS`);
- a gateway in *Tor* mode forwards to Tor's DNSPort on the node
  (``IP#PORT``), so no name leaves the node outside Tor;
- every other node (no sharing, or an uplink that failed its check)
  resolves Internet names through the mesh: it forwards to the gateways
  the mesh directory knows, at their client-side address (``x.x.x.1``),
  where their dnsmasq listens; dnsmasq tries them in turn, so when one
  gateway goes, the next answers.

Pure functions: the callers read the lease, the settings and the directory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

MAX_UPSTREAMS = 8
# Public resolvers used when nothing better is known: Quad9 and Cloudflare,
# two operators, two addresses each.
PUBLIC_RESOLVERS = ("9.9.9.9", "149.112.112.112", "1.1.1.1", "1.0.0.1")


class DnsMode:
    UPLINK = "uplink"
    CUSTOM = "custom"
    PUBLIC = "public"


def _unique_ips(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        try:
            address = str(ipaddress.ip_address(str(value).strip()))
        except ValueError:
            continue
        if address not in seen:
            seen.append(address)
    return seen


def direct_upstreams(
    mode: str, *, lease_servers: Iterable[str] = (), custom: Iterable[str] = ()
) -> tuple[str, ...]:
    """A working direct gateway's resolvers for ``mode`` (never empty)."""
    if mode == DnsMode.CUSTOM:
        chosen = _unique_ips(custom)
    elif mode == DnsMode.UPLINK:
        chosen = _unique_ips(lease_servers)
    else:
        chosen = []
    return tuple((chosen or list(PUBLIC_RESOLVERS))[:MAX_UPSTREAMS])


def mesh_upstreams(
    gateway_addresses: Iterable[str], *, own: Iterable[str] = ()
) -> tuple[str, ...]:
    """The other gateways of the mesh, as dnsmasq upstreams (maybe none)."""
    mine = set(_unique_ips(own))
    return tuple(
        [a for a in _unique_ips(gateway_addresses) if a not in mine][:MAX_UPSTREAMS]
    )


def tor_upstreams(listen_address: str, dns_port: int) -> tuple[str, ...]:
    """Tor's DNSPort on this node, the only upstream in Tor mode."""
    address = ipaddress.IPv4Address(listen_address)
    if not 1 <= int(dns_port) <= 65535:
        raise ValueError("dns_port out of range")
    return (f"{address}#{int(dns_port)}",)


def choose_upstreams(
    *,
    sharing: bool,
    online: bool,
    tor: bool,
    mode: str,
    lease_servers: Iterable[str] = (),
    custom: Iterable[str] = (),
    mesh_gateways: Iterable[str] = (),
    own_addresses: Iterable[str] = (),
    tor_listen: str | None = None,
    tor_dns_port: int = 9053,
) -> tuple[str, ...]:
    """The upstream list for this node's dnsmasq (see the module text)."""
    if sharing and tor and tor_listen:
        return tor_upstreams(tor_listen, tor_dns_port)
    if sharing and online:
        return direct_upstreams(mode, lease_servers=lease_servers, custom=custom)
    return mesh_upstreams(mesh_gateways, own=own_addresses)
