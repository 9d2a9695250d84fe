"""dnsmasq.conf rendered from a :class:`~meshnet.state.MeshState`.

dnsmasq serves the node's clients:

- DHCP on the client interfaces only: the node keeps ``.1`` of its client
  subnet and leases the rest (``.2`` up to the last address before the
  broadcast), with the node as router and DNS server, for
  ``state.dhcp_lease_seconds``; ``dhcp-authoritative`` because nobody else
  serves that subnet, so a client returning with an old lease gets a quick
  answer instead of a timeout;
- DNS for the mesh: ``NAME.mesh`` (the domain is configurable) answered
  from ``/etc/byzantium/mesh-hosts`` (``addn-hosts``, written by the
  directory and re-read on SIGHUP); names of the mesh domain are never
  forwarded (``local=``);
- no upstream DNS (``no-resolv``): a mesh cut off from the Internet has
  none. The gateway app sets ``state.upstream_servers`` (read by
  ``MeshState.from_db`` from :func:`gateway.selectors.dns_upstream_servers`):
  its uplink's resolvers on a working gateway, Tor's DNSPort (``IP#PORT``)
  in Tor mode, the mesh's gateways on every other node; a gateway that
  announces its route (``state.dns_for_mesh``) also listens on its mesh
  links, with no DHCP there, so the other nodes' dnsmasq can forward to it;
- DHCP option 114 (RFC 8910, the captive portal API URI) when
  ``state.captive_portal_api`` is set by the captive app, that is when its
  portal is on; then also a second ``addn-hosts``, the captive app's probe
  hosts file (:data:`CAPTIVE_PROBE_HOSTS`): on a node without uplink it
  answers the operating systems' connectivity-probe hosts with the node
  itself (see :mod:`captive.probes`), and it is re-read on SIGHUP;
- while the portal is on and the mesh is offline
  (``state.offline_dns_answer``), every name outside the mesh domain
  resolves to the node's offline address, so a phone that opens any site
  lands on the node instead of a DNS error.

Every rendered file is checked with ``dnsmasq --test`` before it is used.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _

from captive.probes import HOSTS_FILE as CAPTIVE_PROBE_HOSTS
from portal.host import validate
from portal.host.errors import InvalidValue
from portal.host.files import FileStore

from .babel_config import client_network
from .state import MeshState

# Node paths (FileStore paths) shared by every part of the portal.
CONFIG = "/etc/byzantium/dnsmasq.conf"
PID_FILE = "/run/byzantium/dnsmasq.pid"
LEASE_FILE = "/var/lib/byzantium/dnsmasq.leases"
LOG_FILE = "/var/log/byzantium/dnsmasq.log"
MESH_HOSTS = "/etc/byzantium/mesh-hosts"

MIN_LEASE_SECONDS = 120
MAX_LEASE_SECONDS = 31 * 86400
MAX_UPSTREAMS = 8

_DOMAIN = re.compile(
    r"^(?=.{1,63}\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\Z"
)
# What an RFC 8908 API URI may hold here: printable ASCII without the
# characters that mean something to dnsmasq's parser (quote, comma, hash,
# backslash) or to a shell-minded reader (space, backquote, braces, $).
_API_URI = re.compile(r"^https?://[A-Za-z0-9._~:/?&=%+@!'()*;\[\]-]{1,240}\Z")


@dataclass(frozen=True)
class DhcpTuning:
    """Settings that differ between a real node and the lab.

    dnsmasq pings an address before offering it and waits up to 3 s for an
    answer; a lab subnet holds no host dnsmasq does not know, so the lab
    skips that (``no_ping``) to hand out leases at once.
    """

    no_ping: bool = False


def dnsmasq_wanted(state: MeshState) -> bool:
    """dnsmasq runs when there is a client subnet and an interface to serve."""
    return bool(state.client_subnet) and bool(state.client_interfaces)


def mesh_domain(value: str) -> str:
    """The mesh DNS domain, like ``mesh`` or ``city.mesh`` (lower-case)."""
    if not isinstance(value, str) or not _DOMAIN.match(value):
        raise InvalidValue(
            _(
                "%(value)s is not a DNS domain (lower-case letters, digits and "
                "'-', labels joined by dots, at most 63 characters)."
            )
            % {"value": repr(value)[:40]}
        )
    return value


def captive_portal_api(value: str) -> str:
    """An RFC 8908 API URI safe to place in DHCP option 114."""
    if not isinstance(value, str) or not _API_URI.match(value):
        raise InvalidValue(
            _(
                "%(value)s is not an acceptable captive portal address (an "
                "http or https URL of plain ASCII, without quotes, commas, "
                "spaces or '#')."
            )
            % {"value": repr(value)[:40]}
        )
    return value


def upstream_server(value: str) -> str:
    """An upstream resolver: an IP address, or ``IPV4#PORT`` (Tor's DNSPort
    on the node listens on a port of its own)."""
    text = value if isinstance(value, str) else ""
    address, _sep, port = text.partition("#")
    if _sep:
        if not port.isdigit() or len(port) > 5:
            raise InvalidValue(
                _("%(value)s is not a DNS server (an IP address, or IPv4#PORT).")
                % {"value": repr(value)[:40]}
            )
        return f"{validate.ipv4_address(address)}#{validate.port_number(int(port))}"
    return validate.ip_address(address)


def lease_seconds(value: int) -> int:
    return validate.whole_number(
        value, minimum=MIN_LEASE_SECONDS, maximum=MAX_LEASE_SECONDS
    )


def gateway_address(state: MeshState) -> ipaddress.IPv4Interface:
    """The node's own address on its client subnet (``.1`` with the prefix)."""
    network = client_network(state)
    if network is None:
        raise InvalidValue(_("The node has no client subnet yet."))
    return ipaddress.IPv4Interface(f"{network.network_address + 1}/{network.prefixlen}")


def render(
    state: MeshState,
    files: FileStore,
    tuning: DhcpTuning | None = None,
    *,
    upstream_servers: Sequence[str] = (),
) -> str:
    """The text of dnsmasq.conf for ``state``; paths are ``files``' real paths.

    The upstreams are ``state.upstream_servers`` (set by the gateway app
    through :meth:`MeshState.from_db`) followed by ``upstream_servers``
    (IP addresses or ``IPV4#PORT``); without any dnsmasq answers only mesh
    names.
    """
    tuning = tuning or DhcpTuning()
    network = client_network(state)
    if network is None or not state.client_interfaces:
        raise InvalidValue(_("dnsmasq needs a client subnet and a client interface."))
    router = network.network_address + 1
    first = network.network_address + 2
    last = network.broadcast_address - 1
    domain = mesh_domain(state.mesh_domain)
    lease = lease_seconds(state.dhcp_lease_seconds)
    if len(upstream_servers) > MAX_UPSTREAMS:
        raise InvalidValue(
            _("At most %(count)s upstream DNS servers.") % {"count": MAX_UPSTREAMS}
        )
    upstreams = [
        upstream_server(server)
        for server in dict.fromkeys([*state.upstream_servers, *upstream_servers])
    ]
    lines: list[str] = [
        "# dnsmasq configuration of node "
        f"{re.sub(r'[^A-Za-z0-9._-]', '?', state.node_name)[:63] or '?'}, "
        "rendered by the portal; do not edit.",
    ]
    lines += [
        f"interface={validate.interface_name(i.name)}" for i in state.client_interfaces
    ]
    if state.dns_for_mesh and upstreams:
        # A gateway resolves Internet names for the other nodes: their
        # queries arrive on the mesh links; no DHCP is ever served there.
        mesh_links = [i.name for i in state.mesh_interfaces]
        if state.protocol == "batman-adv" and mesh_links:
            mesh_links = ["bat0"]
        for name in mesh_links:
            name = validate.interface_name(name)
            lines += [f"interface={name}", f"no-dhcp-interface={name}"]
    lines += [
        # Bind each served interface's addresses, also of interfaces that
        # appear later (an access point brought up after dnsmasq).
        "bind-dynamic",
        "except-interface=lo",
        "no-resolv",
        "no-hosts",
        f"domain={domain}",
        f"local=/{domain}/",
        f"addn-hosts={_real(files, MESH_HOSTS)}",
    ]
    if state.captive_portal_api:
        lines.append(f"addn-hosts={_real(files, CAPTIVE_PROBE_HOSTS)}")
    if state.offline_dns_answer and not upstreams:
        # Every other name, while the mesh is offline (captive app); the
        # mesh domain above is more specific and keeps its own answers.
        lines.append(f"address=/#/{validate.ipv4_address(state.offline_dns_answer)}")
    lines += [f"server={server}" for server in upstreams]
    lines += [
        f"dhcp-range={first},{last},{network.netmask},{lease}",
        f"dhcp-option=option:router,{router}",
        f"dhcp-option=option:dns-server,{router}",
    ]
    if state.captive_portal_api:
        lines.append(
            f'dhcp-option=114,"{captive_portal_api(state.captive_portal_api)}"'
        )
    lines += [
        "dhcp-authoritative",
        f"dhcp-leasefile={_real(files, LEASE_FILE)}",
        f"pid-file={_real(files, PID_FILE)}",
        f"log-facility={_real(files, LOG_FILE)}",
        "log-dhcp",
    ]
    if tuning.no_ping:
        lines.append("no-ping")
    return "\n".join(lines) + "\n"


def _real(files: FileStore, node_path: str) -> str:
    return validate.absolute_path(str(files.path(node_path)))
