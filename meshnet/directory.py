"""The mesh directory: find the other nodes, fetch their documents, name them.

The periodic job ``meshnet.sync_directory`` (:mod:`meshnet.jobs_directory`)
calls :func:`sync_directory` in the worker. One sync:

1. **discovers** nodes from the routing table: every IPv4 ``/32`` another
   node announces (babeld's installed routes, read from its read-only local
   socket; the kernel's ``proto babel`` host routes when babeld cannot be
   asked);
2. **fetches** each node's ``/api/v1/node`` with ``curl`` run by the host
   layer *inside the managed node's network namespace* (in the lab the
   worker itself lives in the machine's namespace), with short timeouts and
   a size cap (:mod:`portal.host.builders.curl`);
3. **checks** each document (:func:`meshnet.node_document.parse_document`);
   an invalid, oversized or hostile one is ignored and the reason goes to
   the job log, so a broken node never reaches a page or the hosts file;
   a document whose ``mesh_address`` is not the address it was fetched
   from is refused too (a node cannot claim another's name and address);
4. **keeps** a :class:`~meshnet.models.DirectoryEntry` per node with an
   expiry ``period x expire_after_periods`` after it was last seen; entries
   past it are deleted;
5. **writes** ``/etc/byzantium/mesh-hosts`` (``NAME.DOMAIN`` and
   ``SERVICE.NAME.DOMAIN`` for dnsmasq's ``addn-hosts``) and, when it
   changed, sends dnsmasq SIGHUP (it re-reads addn-hosts files on HUP); and
   ``/run/byzantium/node.json``, this node's own document.

Names: a node's name is already a DNS label (the document check insists);
:func:`dns_label` still sanitises whatever it gets, and when two nodes share
a label the one with the lowest address keeps it and each other gets
``LABEL-A-B-C-D`` (its address), so every node of the mesh that sees the same
set of nodes writes the same names.
"""

from __future__ import annotations

import ipaddress
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from portal.host.babel import BabelDump, read_dump
from portal.host.builders import curl, inspect
from portal.host.errors import HostError
from portal.host.node import Host
from portal.host.readers import parse_ip_route

from .node_document import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    NodeDocument,
    ServiceOffer,
    parse_document,
)

HOSTS_FILE = "/etc/byzantium/mesh-hosts"
NODE_DOCUMENT_FILE = "/run/byzantium/node.json"
DNSMASQ_PID_FILE = "/run/byzantium/dnsmasq.pid"
DOCUMENT_PATH = "/api/v1/node"

# The job's defaults: every 30 s, entries kept 4 periods after last seen
# (a node that misses three syncs in a row is still listed).
SYNC_PERIOD_SECONDS = 30
EXPIRE_AFTER_PERIODS = 4
# Fetch limits: a node on a lossy radio link answers in well under a second;
# a stuck one costs at most FETCH_MAX_TIME.
FETCH_CONNECT_TIMEOUT = 2.0
FETCH_MAX_TIME = 4.0
# A mesh bigger than this is beyond what one sync should fetch.
MAX_NODES_PER_SYNC = 256

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Candidate:
    """A node address found in the routing table."""

    address: str
    router_id: str = ""
    metric: int | None = None


@dataclass(frozen=True)
class FetchOutcome:
    """What one fetch brought: a checked document, or why there is none."""

    address: str
    document: NodeDocument | None
    error: str = ""
    size: int = 0


@dataclass
class SyncResult:
    """A summary of one sync (the job returns it, the bench reads it)."""

    source: str = ""
    candidates: int = 0
    seen: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    expired: list[str] = field(default_factory=list)
    hosts_changed: bool = False
    dnsmasq_reloaded: bool = False
    bytes_fetched: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "candidates": self.candidates,
            "seen": self.seen,
            "refused": self.refused,
            "unreachable": self.unreachable,
            "expired": self.expired,
            "hosts_changed": self.hosts_changed,
            "dnsmasq_reloaded": self.dnsmasq_reloaded,
            "bytes_fetched": self.bytes_fetched,
            "seconds": round(self.seconds, 3),
        }


# -- discovery ----------------------------------------------------------------


def _host_address(prefix: str) -> str | None:
    """``10.1.2.3/32`` -> ``10.1.2.3``; anything that is not an IPv4 /32 -> None."""
    try:
        network = ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return None
    if network.version != 4 or network.prefixlen != 32:
        return None
    address = network.network_address
    if address.is_loopback or address.is_multicast or address.is_unspecified:
        return None
    return str(address)


def candidates_from_dump(
    dump: BabelDump, *, own: Iterable[str] = ()
) -> list[Candidate]:
    """Every /32 another node announces, from babeld's installed routes."""
    skip = set(own)
    found: dict[str, Candidate] = {}
    for route in dump.installed_routes:
        address = _host_address(route.prefix)
        if address is None or address in skip:
            continue
        if route.source_prefix not in ("", "0.0.0.0/0"):
            continue  # a source-specific route is not a node's identity
        found.setdefault(
            address,
            Candidate(address=address, router_id=route.router_id, metric=route.metric),
        )
    return sorted(found.values(), key=lambda c: ipaddress.IPv4Address(c.address))


def candidates_from_kernel(host: Host, *, own: Iterable[str] = ()) -> list[Candidate]:
    """Every /32 babeld installed in the kernel (when its socket cannot be read)."""
    skip = set(own)
    result = host.runner.run(inspect.route_show(family=4))
    found = set()
    for route in parse_ip_route(result.stdout, family="inet"):
        if route.protocol != "babel":
            continue
        address = _host_address(
            route.destination if "/" in route.destination else route.destination + "/32"
        )
        if address and address not in skip:
            found.add(address)
    return [Candidate(address=a) for a in sorted(found, key=ipaddress.IPv4Address)]


def discover(
    host: Host, *, babel_socket: Path | None, own: Iterable[str] = ()
) -> tuple[list[Candidate], str]:
    """The candidates and where they came from (``babeld`` or ``kernel``)."""
    own = list(own)
    if babel_socket is not None:
        try:
            return candidates_from_dump(read_dump(babel_socket), own=own), "babeld"
        except (OSError, HostError, ValueError):
            pass
    return candidates_from_kernel(host, own=own), "kernel"


# -- fetching -----------------------------------------------------------------


def fetch_document(
    host: Host,
    address: str,
    *,
    port: int = 80,
    connect_timeout: float = FETCH_CONNECT_TIMEOUT,
    max_time: float = FETCH_MAX_TIME,
) -> FetchOutcome:
    """Fetch and check one node's document from inside the node's network."""
    command = curl.fetch_http(
        address,
        DOCUMENT_PATH,
        port=port,
        max_bytes=MAX_DOCUMENT_BYTES,
        connect_timeout=connect_timeout,
        max_time=max_time,
    )
    try:
        result = host.runner.run(command)
    except HostError as error:
        return FetchOutcome(address, None, f"could not run curl: {error}")
    body = result.stdout.encode("utf-8", errors="replace")
    if result.truncated or len(body) > MAX_DOCUMENT_BYTES or result.returncode == 63:
        return FetchOutcome(
            address,
            None,
            f"refused: the document is larger than {MAX_DOCUMENT_BYTES} bytes",
            len(body),
        )
    if not result.ok:
        detail = result.stderr.strip().splitlines()
        reason = "timed out" if result.timed_out else f"curl exit {result.returncode}"
        return FetchOutcome(
            address, None, f"unreachable: {detail[-1] if detail else reason}", len(body)
        )
    try:
        document = parse_document(body)
    except DocumentError as error:
        return FetchOutcome(address, None, f"refused: {error}", len(body))
    if document.mesh_address is not None and document.mesh_address != address:
        return FetchOutcome(
            address,
            None,
            f"refused: the document claims the address {document.mesh_address}",
            len(body),
        )
    return FetchOutcome(address, document, "", len(body))


# -- names and the hosts file ---------------------------------------------------


def dns_label(name: str, *, fallback: str = "node") -> str:
    """``name`` as a DNS label: ASCII a-z, digits and hyphens, 1 to 63."""
    ascii_name = (
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    )
    label = _NOT_LABEL.sub("-", ascii_name).strip("-")[:63].strip("-")
    return label or fallback


def _address_suffix(address: str) -> str:
    return address.replace(".", "-").replace(":", "-")


@dataclass(frozen=True)
class NamedNode:
    """A node as the hosts file needs it."""

    name: str
    address: str
    services: tuple[ServiceOffer, ...] = ()


def unique_labels(nodes: Iterable[NamedNode]) -> list[tuple[str, NamedNode]]:
    """Each node with its label; on a clash the lowest address keeps it."""
    by_label: dict[str, list[NamedNode]] = {}
    for node in nodes:
        fallback = "node-" + _address_suffix(node.address)
        by_label.setdefault(dns_label(node.name, fallback=fallback), []).append(node)
    labelled: list[tuple[str, NamedNode]] = []
    for label, group in by_label.items():
        group.sort(key=lambda n: ipaddress.ip_address(n.address))
        labelled.append((label, group[0]))
        for other in group[1:]:
            suffix = "-" + _address_suffix(other.address)
            labelled.append((label[: 63 - len(suffix)].rstrip("-") + suffix, other))
    taken: set[str] = set()
    result = []
    for label, node in sorted(
        labelled, key=lambda item: (item[0], ipaddress.ip_address(item[1].address))
    ):
        if label in taken:  # a suffixed label met a real one; skip, never guess
            continue
        taken.add(label)
        result.append((label, node))
    return result


def render_hosts(nodes: Iterable[NamedNode], *, domain: str) -> str:
    """The addn-hosts file: ``ADDRESS NAME.DOMAIN`` and service names."""
    domain = dns_label(domain, fallback="mesh")
    lines = [
        "# Mesh names, written by the Byzantium portal's directory job "
        "(meshnet.sync_directory); do not edit.",
    ]
    for label, node in unique_labels(nodes):
        lines.append(f"{node.address} {label}.{domain}")
        for service in node.services:
            lines.append(f"{node.address} {dns_label(service.id)}.{label}.{domain}")
    return "\n".join(lines) + "\n"


def reload_dnsmasq(host: Host) -> bool:
    """SIGHUP the node's dnsmasq (it re-reads addn-hosts); False if none runs.

    One implementation for the whole app: the routing part's, which only
    signals a pid whose process really runs our dnsmasq configuration.
    """
    from .apply import reload_mesh_hosts

    return reload_mesh_hosts(host)


# -- the sync -----------------------------------------------------------------


@dataclass(frozen=True)
class OwnNode:
    """What this node says about itself, for the hosts file and node.json."""

    document: NodeDocument
    domain: str


def _store(outcome: FetchOutcome, *, now: datetime, keep_for: timedelta) -> None:
    from .models import DirectoryEntry

    document = outcome.document
    assert document is not None
    DirectoryEntry.objects.update_or_create(
        address=outcome.address,
        defaults={
            "name": document.name,
            "client_subnet": document.client_subnet,
            "gateway": document.gateway,
            "services": [s.__dict__ for s in document.services],
            "version": document.version,
            "document": document.to_json(),
            "published_at": document.timestamp,
            "last_seen": now,
            "expires": now + keep_for,
        },
    )


def sync_directory(
    host: Host,
    *,
    own: OwnNode,
    babel_socket: Path | None,
    period: float = SYNC_PERIOD_SECONDS,
    expire_after_periods: int = EXPIRE_AFTER_PERIODS,
    port: int = 80,
    now: datetime | None = None,
    log: object = None,
) -> SyncResult:
    """One round: discover, fetch, check, keep, expire, write names, reload."""
    from .models import DirectoryEntry

    started = time.monotonic()
    note = log if callable(log) else (lambda _text: None)
    result = SyncResult()
    own_addresses = list(own.document.addresses)
    candidates, result.source = discover(
        host, babel_socket=babel_socket, own=own_addresses
    )
    candidates = candidates[:MAX_NODES_PER_SYNC]
    result.candidates = len(candidates)
    outcomes = [fetch_document(host, c.address, port=port) for c in candidates]
    now = now or timezone.now()
    keep_for = timedelta(seconds=period * expire_after_periods)
    with transaction.atomic():
        for outcome in outcomes:
            result.bytes_fetched += outcome.size
            if outcome.document is not None:
                _store(outcome, now=now, keep_for=keep_for)
                result.seen.append(outcome.address)
            elif outcome.error.startswith("refused"):
                result.refused[outcome.address] = outcome.error
                note(f"{outcome.address}: document ignored, {outcome.error}")
            else:
                result.unreachable[outcome.address] = outcome.error
                note(f"{outcome.address}: {outcome.error}")
        expired = DirectoryEntry.objects.filter(expires__lte=now)
        result.expired = sorted(expired.values_list("address", flat=True))
        expired.delete()
        entries = list(DirectoryEntry.objects.order_by("address"))
    nodes = [
        NamedNode(
            name=entry.name,
            address=entry.address,
            services=tuple(
                ServiceOffer(**s) for s in entry.services if isinstance(s, dict)
            ),
        )
        for entry in entries
    ]
    if own.document.mesh_address:
        nodes.append(
            NamedNode(
                name=own.document.name,
                address=own.document.mesh_address,
                services=own.document.services,
            )
        )
    hosts_text = render_hosts(nodes, domain=own.domain)
    result.hosts_changed = host.files.write(HOSTS_FILE, hosts_text, mode=0o644)
    if result.hosts_changed:
        result.dnsmasq_reloaded = reload_dnsmasq(host)
    host.files.write(
        NODE_DOCUMENT_FILE, own.document.to_bytes().decode() + "\n", mode=0o644
    )
    result.seconds = time.monotonic() - started
    return result
