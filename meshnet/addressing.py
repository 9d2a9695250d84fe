"""The node's own addresses: pick a candidate, check it is free, explain why.

A node of a community mesh has no central authority to hand it addresses,
so it picks them itself: a mesh address (a /32, its identity in the mesh,
on the loopback) and a client subnet (a /24 it serves to phones and laptops
by DHCP; the node takes ``.1``). This module holds the plain functions that
do it; the jobs in :mod:`meshnet.jobs_addresses` call them with the
:class:`~portal.host.node.Host` of the managed node, and the lab tests call
them with any lab node's host.

Candidates
    Drawn pseudo-randomly from 10.0.0.0/8 by hashing a *seed* and the
    attempt number (:func:`candidate_for`). The seed is stable per node
    (:func:`node_seed`: the lowest MAC of its wired or wireless cards, else
    ``/etc/machine-id``, else the node name), so the same node asks for the
    same first candidate after a restart, and two nodes almost never ask for
    the same one. The choice is stored anyway (``MeshSettings``), so a
    restart never picks anew. Blocks that other networks commonly use are
    skipped (:data:`AVOIDED_BLOCKS`), and so are ``.0`` and ``.255`` for the
    mesh address: they read as a network or broadcast address to many
    devices.

Checks (in this order; the first that fails decides, and is named)
    1. *Mesh routes*: every prefix in babeld's table (routes learnt from
       neighbours, and prefixes this node redistributes other than its own
       current ones). A candidate that overlaps any of them is taken: someone
       already announces it. Prefixes shorter than /8 (a default route from
       a gateway, a VPN's 0/1 + 128/1) are ways out, not address claims, and
       are ignored.
    2. *Kernel routes*: the node's own main routing table and the addresses
       on its interfaces (an uplink's 10.0.0.0/24, a container bridge), again
       ignoring the default route and this node's own current addresses.
    3. *Duplicate-address probes*: an RFC 5227 ARP probe (``arping -0``) for
       the mesh address and the client gateway (``.1``) on every mesh link
       that is up. Linux answers a probe for any address it holds on any
       interface, so a neighbour that uses the address (on its loopback or on
       the link) is found even before babeld announces it.

A candidate that fails is replaced by the next attempt's candidate, up to
``max_attempts``; the :class:`AddressChoice` keeps every candidate with the
reason it was refused, so the operator reads which check failed for which
addresses. If babeld does not run (a first node starting the mesh) check 1
has nothing to read and is reported as such, not as an error.

Manual addresses (:func:`parse_manual_addresses`) may lie in any RFC 1918
private range (10/8, 172.16/12, 192.168/16), so a node can join an existing
community mesh that uses another plan; public, loopback, link-local,
multicast and shared (100.64/10) addresses are refused. The client subnet
is a /24 to /28 (the node takes the first host, DHCP hands out the rest);
the mesh address is a single address outside it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from portal.host import babel
from portal.host.builders import arping, inspect
from portal.host.errors import CommandFailed, HostError
from portal.host.node import Host
from portal.host.readers import InterfaceInfo, Route, parse_ip_addr, parse_ip_route

IPv4Address = ipaddress.IPv4Address
IPv4Network = ipaddress.IPv4Network

# Where automatic candidates are drawn from.
MESH_RANGE = IPv4Network("10.0.0.0/8")

# Blocks of 10/8 a node never picks for itself: other networks a node may
# meet on an uplink or beside the mesh use them, and a clash there would cut
# the node off its own uplink. Each with the reason, for the docs and tests.
AVOIDED_BLOCKS: tuple[tuple[IPv4Network, str], ...] = (
    (IPv4Network("10.0.0.0/16"), "home routers, cloud defaults"),
    (IPv4Network("10.1.0.0/16"), "home routers"),
    (IPv4Network("10.8.0.0/16"), "OpenVPN's default"),
    (IPv4Network("10.10.0.0/16"), "home routers, VPNs"),
    (IPv4Network("10.42.0.0/16"), "NetworkManager's shared connections, k3s"),
    (IPv4Network("10.96.0.0/12"), "Kubernetes services"),
    (IPv4Network("10.213.0.0/16"), "the portal's own lab"),
    (IPv4Network("10.244.0.0/16"), "Kubernetes pods"),
    (IPv4Network("10.255.0.0/16"), "top of 10/8, holds its broadcast address"),
)

# Manual addresses may lie in these (RFC 1918).
PRIVATE_RANGES: tuple[IPv4Network, ...] = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
)

CLIENT_PREFIXLEN = 24
MIN_CLIENT_PREFIXLEN = 24
MAX_CLIENT_PREFIXLEN = 28
DEFAULT_ATTEMPTS = 8
MAX_ATTEMPTS = 64
# RFC 5227 sends three probes; arping stops at the first answer.
DEFAULT_PROBE_COUNT = 3
DEFAULT_PROBE_WAIT = 3
# Prefixes shorter than this are routes out of the mesh, not address claims.
SHORTEST_CLAIM = 8
# Longest text accepted in a manual address field (a /32 with its prefix).
MAX_INPUT_LENGTH = 18

SEED_CONTEXT = "byzantium-addresses-v1"

CHECK_MESH_ROUTES = "mesh-routes"
CHECK_KERNEL = "kernel-routes"
CHECK_ARPING = "arping"


class AddressCheckError(HostError):
    """The checks themselves could not run (babeld stuck, a probe failed)."""


class AddressInputError(ValueError):
    """A manual address was refused; ``field`` names the one at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class AddressCandidate:
    """A mesh address and a client subnet, considered together."""

    mesh_address: IPv4Address
    client_subnet: IPv4Network
    attempt: int = 0

    @property
    def mesh_prefix(self) -> IPv4Network:
        return IPv4Network(f"{self.mesh_address}/32")

    @property
    def client_gateway(self) -> IPv4Address:
        """The node's own address on its client subnet (the first host)."""
        return self.client_subnet.network_address + 1

    def __str__(self) -> str:
        return f"{self.mesh_address}/32 + {self.client_subnet}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mesh_address": str(self.mesh_address),
            "client_subnet": str(self.client_subnet),
            "attempt": self.attempt,
        }


@dataclass(frozen=True)
class KnownPrefix:
    """A prefix someone already uses, and where the node learnt it."""

    prefix: IPv4Network
    check: str  # CHECK_MESH_ROUTES or CHECK_KERNEL
    detail: str  # plain words: who announces it, on which interface


@dataclass(frozen=True)
class Clash:
    """One reason a candidate is taken."""

    check: str
    ours: str  # the part of the candidate that clashed, e.g. "10.7.1.0/24"
    theirs: str  # what it clashed with: a prefix, or an address on a link
    detail: str = ""

    def explain(self) -> str:
        """The clash in plain words, in the current language."""
        values = {"ours": self.ours, "theirs": self.theirs, "detail": self.detail}
        if self.check == CHECK_MESH_ROUTES:
            return (
                _(
                    "%(ours)s overlaps %(theirs)s, which the mesh already "
                    "routes (%(detail)s)."
                )
                % values
            )
        if self.check == CHECK_KERNEL:
            return (
                _(
                    "%(ours)s overlaps %(theirs)s, which this node already "
                    "uses (%(detail)s)."
                )
                % values
            )
        return (
            _("%(ours)s is already in use: a device answered on %(detail)s.") % values
        )


@dataclass(frozen=True)
class CandidateCheck:
    """A candidate and what the checks found (nothing means it is free)."""

    candidate: AddressCandidate
    clashes: tuple[Clash, ...] = ()
    probed_links: tuple[str, ...] = ()

    @property
    def free(self) -> bool:
        return not self.clashes

    @property
    def failed_check(self) -> str | None:
        return self.clashes[0].check if self.clashes else None

    def explain(self) -> str:
        values = {
            "number": self.candidate.attempt + 1,
            "candidate": str(self.candidate),
        }
        if self.free:
            if self.probed_links:
                return _(
                    "Candidate %(number)s, %(candidate)s: free (no route in the "
                    "mesh or on this node, nobody answered on %(links)s)."
                ) % {**values, "links": ", ".join(self.probed_links)}
            return (
                _(
                    "Candidate %(number)s, %(candidate)s: free (no route in the "
                    "mesh or on this node; no mesh link to probe)."
                )
                % values
            )
        reasons = " ".join(clash.explain() for clash in self.clashes)
        return _("Candidate %(number)s, %(candidate)s: taken. %(reasons)s") % {
            **values,
            "reasons": reasons,
        }


@dataclass(frozen=True)
class AddressChoice:
    """The outcome of choosing: the addresses taken (or none) and why."""

    chosen: AddressCandidate | None
    checks: tuple[CandidateCheck, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.chosen is not None

    def explain(self) -> list[str]:
        lines = list(self.notes)
        lines.extend(check.explain() for check in self.checks)
        if self.chosen is None:
            lines.append(
                _(
                    "Every one of the %(count)s candidates is taken; no address "
                    "was chosen. Set the addresses by hand, or try again once the "
                    "mesh has settled."
                )
                % {"count": len(self.checks)}
            )
        return lines


@dataclass(frozen=True)
class MeshKnowledge:
    """What the node knows of the addresses in use around it."""

    prefixes: tuple[KnownPrefix, ...] = ()
    links: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


# -- candidates ---------------------------------------------------------------


def _numbers(seed: str, attempt: int) -> Iterable[int]:
    """An endless, reproducible stream of 32-bit numbers for one attempt."""
    counter = 0
    while True:
        digest = hashlib.sha256(
            f"{SEED_CONTEXT}|{seed}|{attempt}|{counter}".encode()
        ).digest()
        for offset in range(0, len(digest), 4):
            yield int.from_bytes(digest[offset : offset + 4], "big")
        counter += 1


def is_avoided(network: IPv4Network) -> bool:
    """True when ``network`` touches a block the node never picks."""
    return any(network.overlaps(block) for block, _reason in AVOIDED_BLOCKS)


def candidate_for(seed: str, attempt: int) -> AddressCandidate:
    """The candidate of ``attempt`` (0, 1, ...) for a node with ``seed``.

    The same seed and attempt always give the same candidate; another
    attempt gives an unrelated one. The client /24 comes first, then a mesh
    address outside it, never ending in .0 or .255.
    """
    numbers = iter(_numbers(seed, attempt))
    base = int(MESH_RANGE.network_address)
    while True:
        index = next(numbers) % 2**16
        subnet = IPv4Network((base + (index << 8), CLIENT_PREFIXLEN))
        if not is_avoided(subnet):
            break
    while True:
        address = IPv4Address(base + next(numbers) % 2**24)
        last = int(address) & 0xFF
        prefix = IPv4Network(f"{address}/32")
        if last in (0, 255) or address in subnet or is_avoided(prefix):
            continue
        return AddressCandidate(
            mesh_address=address, client_subnet=subnet, attempt=attempt
        )


CandidateSource = Callable[[int], AddressCandidate]


def seeded_candidates(seed: str) -> CandidateSource:
    """A candidate source for :func:`choose_addresses` from a node's seed."""

    def source(attempt: int) -> AddressCandidate:
        return candidate_for(seed, attempt)

    return source


_MACHINE_ID = re.compile(r"[0-9a-f]{32}")


def node_seed(
    interfaces: Iterable[InterfaceInfo], machine_id: str | None, fallback: str
) -> str:
    """Something stable that tells this node from others, for the candidates.

    The lowest MAC of the wired and wireless cards comes first: it survives a
    reboot even on a live USB stick, where ``/etc/machine-id`` is new at each
    boot. Without such a card, the machine id; without one, ``fallback``
    (the node's name).
    """
    macs = sorted(
        info.mac.lower()
        for info in interfaces
        if info.kind in ("ethernet", "wireless")
        and info.mac
        and info.mac != "00:00:00:00:00:00"
    )
    if macs:
        return f"mac:{macs[0]}"
    cleaned = (machine_id or "").strip().lower()
    if _MACHINE_ID.fullmatch(cleaned):
        return f"machine-id:{cleaned}"
    return f"name:{fallback}"


def read_node_seed(host: Host, fallback: str) -> str:
    """:func:`node_seed` for the node ``host`` manages."""
    result = host.runner.run(inspect.link_show())
    try:
        interfaces = parse_ip_addr(result.stdout)
    except HostError:
        interfaces = []
    return node_seed(interfaces, host.files.read_text("/etc/machine-id"), fallback)


# -- what the node already knows ------------------------------------------------


def _ipv4_prefix(text: str) -> IPv4Network | None:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return network if isinstance(network, IPv4Network) else None


def own_prefixes(own: AddressCandidate | None) -> frozenset[IPv4Network]:
    """The prefixes of the node's current addresses (not clashes with itself)."""
    if own is None:
        return frozenset()
    return frozenset({own.mesh_prefix, own.client_subnet})


def prefixes_from_babel(
    dump: babel.BabelDump, *, own: AddressCandidate | None = None
) -> list[KnownPrefix]:
    """Prefixes babeld knows: learnt routes, and our other redistributed ones.

    A route learnt from a neighbour always counts, even for our own current
    prefix: another node announcing it is exactly the clash we look for.
    """
    mine = own_prefixes(own)
    known = []
    for route in dump.routes:
        prefix = _ipv4_prefix(route.prefix)
        if prefix is None or prefix.prefixlen < SHORTEST_CLAIM:
            continue
        if route.router_id and route.router_id == dump.my_id:
            continue
        detail = _(
            "announced by router %(router)s, heard via %(via)s on %(interface)s"
        ) % {
            "router": route.router_id or "?",
            "via": route.via or "?",
            "interface": route.interface or "?",
        }
        known.append(KnownPrefix(prefix, CHECK_MESH_ROUTES, detail))
    for xroute in dump.xroutes:
        prefix = _ipv4_prefix(xroute.prefix)
        if prefix is None or prefix.prefixlen < SHORTEST_CLAIM or prefix in mine:
            continue
        known.append(
            KnownPrefix(prefix, CHECK_MESH_ROUTES, _("announced by this node"))
        )
    return known


def prefixes_from_kernel(
    routes: Iterable[Route],
    interfaces: Iterable[InterfaceInfo],
    *,
    own: AddressCandidate | None = None,
) -> list[KnownPrefix]:
    """Prefixes of the node's routing table and interface addresses.

    Routes babeld installed (``proto babel``) count even for our own prefix;
    other routes to our own current prefixes (the client bridge's connected
    route) and our own addresses are ignored.
    """
    mine = own_prefixes(own)
    own_addresses = {own.mesh_address, own.client_gateway} if own is not None else set()
    known = []
    for route in routes:
        if route.is_default or route.family != "inet":
            continue
        prefix = _ipv4_prefix(route.destination)
        if prefix is None or prefix.prefixlen < SHORTEST_CLAIM:
            continue
        if prefix in mine and route.protocol != "babel":
            continue
        where = route.device or route.gateway or "?"
        detail = _("route on %(where)s") % {"where": where}
        if route.protocol == "babel":
            detail = _("route installed by babeld on %(where)s") % {"where": where}
        known.append(KnownPrefix(prefix, CHECK_KERNEL, detail))
    for info in interfaces:
        for address in info.addresses_of("inet"):
            try:
                held = ipaddress.IPv4Interface(address.with_prefix)
            except ValueError:
                continue
            if held.ip in own_addresses or held.ip.is_loopback:
                continue
            known.append(
                KnownPrefix(
                    held.network,
                    CHECK_KERNEL,
                    _("address %(address)s on %(interface)s")
                    % {"address": address.with_prefix, "interface": info.name},
                )
            )
    return known


def mesh_links(
    configured: Iterable[str],
    dump: babel.BabelDump | None,
    interfaces: Iterable[InterfaceInfo],
) -> tuple[str, ...]:
    """Mesh links to probe: configured or used by babeld, present and up."""
    wanted = set(configured)
    if dump is not None:
        wanted.update(item.name for item in dump.interfaces if item.up)
    up = {info.name for info in interfaces if info.is_up and info.kind != "loopback"}
    return tuple(sorted(wanted & up))


def read_knowledge(
    host: Host,
    *,
    babel_socket: Path | None,
    configured_links: Iterable[str] = (),
    own: AddressCandidate | None = None,
) -> MeshKnowledge:
    """Read babeld's table and the kernel's routes and addresses of ``host``.

    babeld not running is a fact to report (a first node has no mesh yet),
    not an error; a babeld that does not answer is an error, because
    choosing blind could take a subnet the mesh already uses.
    """
    notes = []
    dump: babel.BabelDump | None = None
    if babel_socket is None:
        notes.append(_("The mesh's routes were not read: no babeld socket is set."))
    else:
        try:
            dump = babel.read_dump(babel_socket)
        except babel.BabelNotRunning:
            notes.append(
                _(
                    "babeld is not running, so the mesh's routes could not be "
                    "read; only this node's routes and the probes were checked."
                )
            )
        except HostError as error:
            raise AddressCheckError(
                _("Could not read the mesh's routes from babeld: %(error)s")
                % {"error": error}
            ) from None
    try:
        routes = parse_ip_route(host.runner.run(inspect.route_show(family=4)).stdout)
        interfaces = parse_ip_addr(host.runner.run(inspect.addr_show()).stdout)
    except HostError as error:
        raise AddressCheckError(
            _("Could not read this node's routes and addresses: %(error)s")
            % {"error": error}
        ) from None
    prefixes = prefixes_from_kernel(routes, interfaces, own=own)
    if dump is not None:
        prefixes = prefixes_from_babel(dump, own=own) + prefixes
    return MeshKnowledge(
        prefixes=tuple(prefixes),
        links=mesh_links(configured_links, dump, interfaces),
        notes=tuple(notes),
    )


# -- checks -----------------------------------------------------------------------


def route_clashes(
    candidate: AddressCandidate, known: Iterable[KnownPrefix]
) -> list[Clash]:
    """Known prefixes that overlap the candidate, mesh routes first."""
    order = {CHECK_MESH_ROUTES: 0, CHECK_KERNEL: 1}
    clashes = []
    seen = set()
    for item in sorted(known, key=lambda k: order.get(k.check, 2)):
        for ours in (candidate.mesh_prefix, candidate.client_subnet):
            key = (item.check, ours, item.prefix)
            if ours.overlaps(item.prefix) and key not in seen:
                seen.add(key)
                shown = str(ours.network_address) if ours.prefixlen == 32 else str(ours)
                clashes.append(Clash(item.check, shown, str(item.prefix), item.detail))
    return clashes


_ANSWER_MAC = re.compile(r"from ([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})")


def probe_clashes(
    host: Host,
    candidate: AddressCandidate,
    links: Sequence[str],
    *,
    count: int = DEFAULT_PROBE_COUNT,
    wait_seconds: int = DEFAULT_PROBE_WAIT,
) -> list[Clash]:
    """ARP-probe the mesh address and the client gateway on every link.

    Stops at the first answer: one is enough to refuse the candidate.
    """
    for link in links:
        for address in (candidate.mesh_address, candidate.client_gateway):
            command = arping.duplicate_address_probe(
                link, str(address), count=count, wait_seconds=wait_seconds
            )
            result = host.runner.run(command)
            try:
                in_use = arping.address_in_use(result)
            except CommandFailed as error:
                raise AddressCheckError(
                    _("Could not probe %(address)s on %(link)s: %(error)s")
                    % {"address": address, "link": link, "error": error}
                ) from None
            if in_use:
                match = _ANSWER_MAC.search(result.stdout)
                where = link
                if match:
                    where = _("%(link)s, from %(mac)s") % {
                        "link": link,
                        "mac": match.group(1).lower(),
                    }
                return [Clash(CHECK_ARPING, str(address), str(address), where)]
    return []


def check_candidate(
    host: Host,
    candidate: AddressCandidate,
    knowledge: MeshKnowledge,
    *,
    probe_count: int = DEFAULT_PROBE_COUNT,
    probe_wait: int = DEFAULT_PROBE_WAIT,
) -> CandidateCheck:
    """Every check for one candidate; probes only run if the routes are clear."""
    clashes = route_clashes(candidate, knowledge.prefixes)
    if clashes:
        return CandidateCheck(candidate, tuple(clashes))
    clashes = probe_clashes(
        host, candidate, knowledge.links, count=probe_count, wait_seconds=probe_wait
    )
    return CandidateCheck(candidate, tuple(clashes), probed_links=knowledge.links)


def choose_addresses(
    host: Host,
    *,
    candidates: CandidateSource,
    babel_socket: Path | None,
    configured_links: Iterable[str] = (),
    own: AddressCandidate | None = None,
    max_attempts: int = DEFAULT_ATTEMPTS,
    probe_count: int = DEFAULT_PROBE_COUNT,
    probe_wait: int = DEFAULT_PROBE_WAIT,
) -> AddressChoice:
    """Try candidates until one passes every check, at most ``max_attempts``.

    ``candidates`` maps an attempt number to a candidate
    (:func:`seeded_candidates` in production; tests force the same one on
    two nodes). The routes are read once; each candidate is checked against
    them, then probed on the mesh links.
    """
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        raise ValueError(f"max_attempts must be 1..{MAX_ATTEMPTS}")
    knowledge = read_knowledge(
        host, babel_socket=babel_socket, configured_links=configured_links, own=own
    )
    checks = []
    for attempt in range(max_attempts):
        check = check_candidate(
            host,
            candidates(attempt),
            knowledge,
            probe_count=probe_count,
            probe_wait=probe_wait,
        )
        checks.append(check)
        if check.free:
            return AddressChoice(check.candidate, tuple(checks), knowledge.notes)
    return AddressChoice(None, tuple(checks), knowledge.notes)


def check_addresses(
    host: Host,
    candidate: AddressCandidate,
    *,
    babel_socket: Path | None,
    configured_links: Iterable[str] = (),
    own: AddressCandidate | None = None,
    probe_count: int = DEFAULT_PROBE_COUNT,
    probe_wait: int = DEFAULT_PROBE_WAIT,
) -> AddressChoice:
    """The same checks for addresses the operator typed (one candidate)."""
    knowledge = read_knowledge(
        host, babel_socket=babel_socket, configured_links=configured_links, own=own
    )
    check = check_candidate(
        host, candidate, knowledge, probe_count=probe_count, probe_wait=probe_wait
    )
    return AddressChoice(candidate if check.free else None, (check,), knowledge.notes)


# -- manual input -----------------------------------------------------------------

_ADDRESS_TEXT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}(/[0-9]{1,2})?")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _check_text(field_name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise AddressInputError(field_name, _("Enter an address."))
    if len(value) > MAX_INPUT_LENGTH:
        raise AddressInputError(
            field_name,
            _("%(value)s is too long for an IPv4 address (at most %(max)s characters).")
            % {"value": _shown(value), "max": MAX_INPUT_LENGTH},
        )
    if ":" in value:
        raise AddressInputError(
            field_name,
            _(
                "%(value)s is an IPv6 address. The mesh address and the client "
                "subnet are IPv4; babeld uses IPv6 link-local addresses by itself."
            )
            % {"value": _shown(value)},
        )
    if not _ADDRESS_TEXT.fullmatch(value):
        raise AddressInputError(
            field_name,
            _(
                "%(value)s is not an IPv4 address: use four numbers from 0 to 255 "
                "separated by dots, like 10.42.7.1, with nothing else around them."
            )
            % {"value": _shown(value)},
        )
    return value


def _check_private(field_name: str, network: IPv4Network, shown: str) -> None:
    if not any(network.subnet_of(block) for block in PRIVATE_RANGES):
        raise AddressInputError(
            field_name,
            _(
                "%(value)s is not a private address. Use one inside 10.0.0.0/8, "
                "172.16.0.0/12 or 192.168.0.0/16, so the mesh never takes an "
                "address that belongs to the Internet."
            )
            % {"value": shown},
        )


def parse_manual_addresses(
    mesh_address: str, client_subnet: str
) -> tuple[IPv4Address, IPv4Network]:
    """Validate addresses typed by the operator; raise :class:`AddressInputError`.

    The mesh address may carry ``/32``; the client subnet must be a network
    (host bits zero) of /24 to /28 and must not contain the mesh address.
    """
    text = _check_text("mesh_address", mesh_address)
    if "/" in text:
        text, _slash, length = text.partition("/")
        if length != "32":
            raise AddressInputError(
                "mesh_address",
                _(
                    "The mesh address is a single address: leave out the prefix "
                    "or write /32."
                ),
            )
    try:
        mesh = IPv4Address(text)
    except ValueError:
        raise AddressInputError(
            "mesh_address",
            _(
                "%(value)s is not an IPv4 address (each number 0 to 255, "
                "no leading zeros)."
            )
            % {"value": _shown(mesh_address)},
        ) from None
    _check_private("mesh_address", IPv4Network(f"{mesh}/32"), str(mesh))
    if int(mesh) & 0xFF in (0, 255):
        raise AddressInputError(
            "mesh_address",
            _(
                "%(value)s ends in .0 or .255, which many devices take for a "
                "network or broadcast address. Choose another."
            )
            % {"value": str(mesh)},
        )

    text = _check_text("client_subnet", client_subnet)
    if "/" not in text:
        raise AddressInputError(
            "client_subnet",
            _("Write the client subnet with its prefix length, like 10.42.7.0/24."),
        )
    try:
        loose = IPv4Network(text, strict=False)
    except ValueError:
        raise AddressInputError(
            "client_subnet",
            _("%(value)s is not a network prefix (like 10.42.7.0/24).")
            % {"value": _shown(client_subnet)},
        ) from None
    if not MIN_CLIENT_PREFIXLEN <= loose.prefixlen <= MAX_CLIENT_PREFIXLEN:
        raise AddressInputError(
            "client_subnet",
            _(
                "A client subnet is a /%(min)s (254 clients) to a /%(max)s "
                "(14 clients), not a /%(length)s."
            )
            % {
                "min": MIN_CLIENT_PREFIXLEN,
                "max": MAX_CLIENT_PREFIXLEN,
                "length": loose.prefixlen,
            },
        )
    if str(loose) != text:
        raise AddressInputError(
            "client_subnet",
            _("%(value)s is an address inside a subnet; did you mean %(network)s?")
            % {"value": text, "network": str(loose)},
        )
    _check_private("client_subnet", loose, str(loose))
    if mesh in loose:
        raise AddressInputError(
            "client_subnet",
            _(
                "The mesh address %(mesh)s lies inside the client subnet "
                "%(subnet)s; they must not overlap."
            )
            % {"mesh": str(mesh), "subnet": str(loose)},
        )
    return mesh, loose


def stored_candidate(
    mesh_address: str | None, client_subnet: str | None
) -> AddressCandidate | None:
    """The node's current addresses as a candidate, or None if it has none."""
    if not mesh_address or not client_subnet:
        return None
    try:
        return AddressCandidate(IPv4Address(mesh_address), IPv4Network(client_subnet))
    except ValueError:
        return None
