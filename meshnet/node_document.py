"""This node's public document (``GET /api/v1/node``) and the check of others'.

Every node publishes one small JSON document saying who it is and what it
offers; the directory job of every other node fetches it (see
:mod:`meshnet.directory`). Two directions, two very different levels of
trust:

- :func:`build_node_document` describes *this* node from its own database
  (node name, mesh address, client subnet, whether it is a gateway, the
  services other apps register, the software version, when it was built).
- :func:`validate_document` checks a document that came from *another*
  machine. It is untrusted input: it must be small (:data:`MAX_DOCUMENT_BYTES`),
  valid UTF-8 JSON of exactly the expected shape and types, with a name that
  is a DNS label (so it cannot carry HTML or script and can become
  ``NAME.mesh``), addresses that parse, and bounded lists. Anything else is
  refused as a whole with a :class:`DocumentError` saying why; nothing of a
  refused document is stored or shown.

The document, version 1::

    {
      "schema": "byzantium-node/1",
      "name": "library-2",
      "mesh_address": "10.41.7.1",
      "addresses": ["10.41.7.1", "10.41.8.1"],
      "client_subnet": "10.41.8.0/24",
      "gateway": false,
      "services": [
        {"id": "chat", "name": "Chat", "protocol": "http",
         "port": 8065, "url": "http://10.41.7.1:8065/",
         "purpose": "Talk with everyone on the mesh"}
      ],
      "version": "0.1.0",
      "timestamp": "2024-05-01T12:00:00+00:00"
    }

Services come from providers other apps register with
:func:`register_service_provider` (the services app, when it exists,
registers one that lists its switched-on services); until then the list is
empty. Unknown keys in a received document are dropped, so a newer node
with more fields is still understood.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

SCHEMA = "byzantium-node/1"
# A document of a node with many services is ~2 KiB; 32 KiB leaves room and
# still keeps a hostile node from filling memory, a job log or the database.
MAX_DOCUMENT_BYTES = 32 * 1024
MAX_ADDRESSES = 16
MAX_SERVICES = 64
MAX_SERVICE_NAME = 64
MAX_SERVICE_PURPOSE = 200
MAX_URL = 256
MAX_VERSION = 32
MAX_TIMESTAMP = 40

# A DNS label: what node names are on this side (portal.forms) and what a
# received name must be, so it can become NAME.mesh and holds no markup.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_SERVICE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?\Z")
_PROTOCOL = re.compile(r"^[a-z][a-z0-9+.-]{0,15}\Z")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~_-]{0,31}\Z")
# Free text shown to people: no control characters and none of the
# characters that mean something in HTML, even though pages escape anyway.
_FORBIDDEN_TEXT = re.compile(r"[\x00-\x1f\x7f<>&\"`\\]")
_URL = re.compile(
    r"^https?://[A-Za-z0-9.:\[\]_-]+(?::[0-9]{1,5})?(?:/[^\s<>\"'`\\]*)?\Z"
)


class DocumentError(ValueError):
    """A received node document was refused; the message says why."""


@dataclass(frozen=True)
class ServiceOffer:
    """One service a node offers, and how a client reaches it."""

    id: str
    name: str
    protocol: str = "http"
    port: int | None = None
    url: str = ""
    # What it is for, in the words of the node that offers it (shown on the
    # captive portal's welcome page); plain text, no markup.
    purpose: str = ""


@dataclass(frozen=True)
class NodeDocument:
    """A node's public document, checked (or built) and typed."""

    name: str
    mesh_address: str | None
    addresses: tuple[str, ...]
    client_subnet: str
    gateway: bool
    services: tuple[ServiceOffer, ...] = field(default_factory=tuple)
    version: str = ""
    timestamp: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The document as published (JSON types only)."""
        return {
            "schema": SCHEMA,
            "name": self.name,
            "mesh_address": self.mesh_address,
            "addresses": list(self.addresses),
            "client_subnet": self.client_subnet,
            "gateway": self.gateway,
            "services": [asdict(service) for service in self.services],
            "version": self.version,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


# -- services hook ------------------------------------------------------------

ServiceProvider = Callable[[], Iterable[ServiceOffer]]
_service_providers: list[ServiceProvider] = []


def register_service_provider(provider: ServiceProvider) -> ServiceProvider:
    """Add a function that lists services this node offers (a decorator too).

    The services app registers one in its ``AppConfig.ready`` that returns a
    :class:`ServiceOffer` per switched-on service; the node document and the
    ``SERVICE.NAME.mesh`` names pick them up. A provider reads the database
    only (the document is built by the web process, which runs no command)
    and must be cheap. After a change to what it returns, call
    :func:`meshnet.node_document.invalidate_cached_document`.
    """
    if provider not in _service_providers:
        _service_providers.append(provider)
    return provider


def unregister_service_provider(provider: ServiceProvider) -> None:
    if provider in _service_providers:
        _service_providers.remove(provider)


def local_services() -> tuple[ServiceOffer, ...]:
    """Every registered provider's services, checked, first id wins."""
    seen: set[str] = set()
    offers: list[ServiceOffer] = []
    for provider in list(_service_providers):
        for offer in provider():
            checked = _check_service(asdict(offer))
            if checked.id not in seen:
                seen.add(checked.id)
                offers.append(checked)
    return tuple(offers[:MAX_SERVICES])


# -- building this node's document --------------------------------------------


@cache
def software_version() -> str:
    """The portal's version from pyproject.toml (read once)."""
    from portal.config import REPO_DIR

    try:
        with open(REPO_DIR / "pyproject.toml", "rb") as handle:
            version = str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"
    return version if _VERSION.match(version) else "unknown"


def client_gateway_address(client_subnet: str) -> str | None:
    """The node's own address on its client subnet (the first host)."""
    try:
        network = ipaddress.IPv4Network(client_subnet)
    except ValueError:
        return None
    return str(network.network_address + 1) if network.num_addresses > 2 else None


def build_node_document(
    *,
    name: str,
    mesh_address: str | None,
    client_subnet: str,
    gateway: bool,
    services: Iterable[ServiceOffer] = (),
    timestamp: datetime | None = None,
    version: str | None = None,
) -> NodeDocument:
    """A document for the given facts (the lab builds other nodes' with it)."""
    addresses = [a for a in (mesh_address, client_gateway_address(client_subnet)) if a]
    return NodeDocument(
        name=name,
        mesh_address=mesh_address or None,
        addresses=tuple(addresses),
        client_subnet=client_subnet,
        gateway=gateway,
        services=tuple(services),
        version=software_version() if version is None else version,
        timestamp=timestamp or timezone.now(),
    )


def this_node_document() -> NodeDocument:
    """This node's document, read from the database (two queries)."""
    from portal.models import NodeSettings

    from .models import MeshSettings

    mesh = MeshSettings.objects.filter(pk=1).first() or MeshSettings()
    node = NodeSettings.peek()
    return build_node_document(
        name=node.node_name or "node",
        mesh_address=mesh.mesh_address,
        client_subnet=mesh.client_subnet,
        gateway=mesh.announce_default_route,
        services=local_services(),
    )


# -- the cached copy the API serves -------------------------------------------

CACHE_KEY = "meshnet:node-document:v1"
# Changes made by this process invalidate the copy at once (signal receivers
# in meshnet.views.api); changes made by another process (the worker choosing
# addresses) show after at most this long.
CACHE_SECONDS = 30


def cached_document_bytes() -> bytes:
    """The published JSON, built at most once per CACHE_SECONDS per process."""
    from django.core.cache import cache as django_cache

    body = django_cache.get(CACHE_KEY)
    if body is None:
        body = this_node_document().to_bytes()
        django_cache.set(CACHE_KEY, body, CACHE_SECONDS)
    return body


def invalidate_cached_document(**_kwargs: Any) -> None:
    """Forget the cached document (a signal receiver, hence ``**kwargs``)."""
    from django.core.cache import cache as django_cache

    django_cache.delete(CACHE_KEY)


# -- checking another node's document -----------------------------------------


def _refuse(message: str) -> DocumentError:
    return DocumentError(message)


def _text(value: Any, what: str, maximum: int) -> str:
    if not isinstance(value, str):
        raise _refuse(_("%(what)s is not text.") % {"what": what})
    if len(value) > maximum:
        raise _refuse(
            _("%(what)s is longer than %(maximum)d characters.")
            % {"what": what, "maximum": maximum}
        )
    if _FORBIDDEN_TEXT.search(value):
        raise _refuse(
            _("%(what)s contains control or markup characters.") % {"what": what}
        )
    return value


def _ipv4(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > 15:
        raise _refuse(_("%(what)s is not an IPv4 address.") % {"what": what})
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise _refuse(_("%(what)s is not an IPv4 address.") % {"what": what}) from None


def _check_service(raw: Any) -> ServiceOffer:
    if not isinstance(raw, dict):
        raise _refuse(_("A service is not an object."))
    service_id = raw.get("id")
    if not isinstance(service_id, str) or not _SERVICE_ID.match(service_id):
        raise _refuse(_("A service id is not a short DNS label."))
    name = _text(raw.get("name", ""), _("A service name"), MAX_SERVICE_NAME)
    protocol = raw.get("protocol", "http")
    if not isinstance(protocol, str) or not _PROTOCOL.match(protocol):
        raise _refuse(_("A service protocol is not a plain word."))
    port = raw.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
    ):
        raise _refuse(_("A service port is not a port number."))
    url = raw.get("url", "")
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise _refuse(_("A service address is not a short text."))
    if url and not _URL.match(url):
        raise _refuse(_("A service address is not a plain http(s) URL."))
    purpose = _text(raw.get("purpose", ""), _("A service purpose"), MAX_SERVICE_PURPOSE)
    return ServiceOffer(
        id=service_id,
        name=name,
        protocol=protocol,
        port=port,
        url=url,
        purpose=purpose,
    )


def _reject_constant(name: str) -> Any:
    raise _refuse(_("The document holds a number JSON does not allow."))


def parse_document(body: bytes) -> NodeDocument:
    """Decode, size-check and validate a document received from another node."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise _refuse(
            _("The document is larger than %(maximum)d bytes.")
            % {"maximum": MAX_DOCUMENT_BYTES}
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(_("The document is not UTF-8 text.")) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _refuse(_("The document is not valid JSON.")) from None
    return validate_document(data)


def validate_document(data: Any) -> NodeDocument:
    """Check the shape and types of a decoded document; see the module text."""
    if not isinstance(data, dict):
        raise _refuse(_("The document is not a JSON object."))
    if data.get("schema") != SCHEMA:
        raise _refuse(_("The document is not a Byzantium node document."))
    name = data.get("name")
    if not isinstance(name, str) or not _LABEL.match(name):
        raise _refuse(
            _("The node name is not a DNS label (a-z, digits, hyphens, 1 to 63).")
        )
    mesh_address = data.get("mesh_address")
    mesh_address = (
        None if mesh_address is None else _ipv4(mesh_address, _("The mesh address"))
    )
    addresses = data.get("addresses", [])
    if not isinstance(addresses, list) or len(addresses) > MAX_ADDRESSES:
        raise _refuse(
            _("The addresses are not a list of at most %(maximum)d.")
            % {"maximum": MAX_ADDRESSES}
        )
    checked_addresses = tuple(_ipv4(a, _("An address")) for a in addresses)
    client_subnet = data.get("client_subnet", "")
    if not isinstance(client_subnet, str) or len(client_subnet) > 18:
        raise _refuse(_("The client subnet is not a network prefix."))
    if client_subnet:
        try:
            client_subnet = str(ipaddress.IPv4Network(client_subnet))
        except ValueError:
            raise _refuse(_("The client subnet is not a network prefix.")) from None
    gateway = data.get("gateway", False)
    if not isinstance(gateway, bool):
        raise _refuse(_("The gateway flag is not true or false."))
    services = data.get("services", [])
    if not isinstance(services, list) or len(services) > MAX_SERVICES:
        raise _refuse(
            _("The services are not a list of at most %(maximum)d.")
            % {"maximum": MAX_SERVICES}
        )
    checked_services = tuple(_check_service(service) for service in services)
    if len({service.id for service in checked_services}) != len(checked_services):
        raise _refuse(_("Two services have the same id."))
    version = data.get("version", "")
    if not isinstance(version, str) or (version and not _VERSION.match(version)):
        raise _refuse(_("The software version is not a short plain text."))
    timestamp = data.get("timestamp")
    published: datetime | None = None
    if timestamp is not None:
        if not isinstance(timestamp, str) or len(timestamp) > MAX_TIMESTAMP:
            raise _refuse(_("The timestamp is not a date and time."))
        try:
            published = datetime.fromisoformat(timestamp)
        except ValueError:
            raise _refuse(_("The timestamp is not a date and time.")) from None
        if published.tzinfo is None:
            raise _refuse(_("The timestamp has no time zone."))
    return NodeDocument(
        name=name,
        mesh_address=mesh_address,
        addresses=checked_addresses,
        client_subnet=client_subnet,
        gateway=gateway,
        services=checked_services,
        version=version,
        timestamp=published,
    )
