"""Reads of the captive app, including the cached pages of the hot path.

Every phone nearby hits the welcome page, the probes and the redirects, so
those never render a template per request. :func:`public_page` returns the
page of one language as bytes, rendered once and kept in the cache; the
one per-client piece (the signed token of the Continue form) is put in by a
byte replacement. The cache is dropped at once when the operator changes
the message or the node's name (signal receivers in :mod:`captive.apps`);
changes made in another process (the worker updating the mesh directory)
show after at most :data:`PAGE_SECONDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import probes
from .models import CaptiveSettings, ClientSession, PortalInterface, SessionState

PAGE_SECONDS = 30
PAGE_KEY = "captive:page:v1:{kind}:{language}"
FACTS_KEY = "captive:facts:v1"
TOKEN_PLACEHOLDER = "@@CAPTIVE-CLIENT-TOKEN@@"  # noqa: S105 - a marker
PAGE_KINDS = ("splash", "venue")


def held_port() -> int:
    """The port the firewall redirects held clients' HTTP to."""
    return int(settings.CAPTIVE_HELD_PORT)


def arrived_held(request: HttpRequest) -> bool:
    """Whether the firewall sent this request here because it holds the
    client (see :mod:`captive.probes`): no database, cannot be spoofed."""
    port = request.META.get("HTTP_X_FORWARDED_PORT") or request.META.get("SERVER_PORT")
    return str(port) == str(held_port())


def client_ip(request: HttpRequest) -> str:
    """The client's address: nginx's X-Real-IP, else the socket's peer."""
    from portal.middleware import client_address

    return client_address(request)


@dataclass(frozen=True)
class PortalFacts:
    """What the public pages need that rarely changes (cached)."""

    node_name: str
    portal_host: str
    message: str
    online: bool
    session_timeout: int

    @property
    def user_portal_url(self) -> str:
        return f"http://{self.portal_host}/captive/"

    @property
    def venue_info_url(self) -> str:
        return f"http://{self.portal_host}/captive/venue/"

    @property
    def api_url(self) -> str:
        return f"http://{self.portal_host}/captive/api/"


def _portal_host() -> str:
    """The node's address on its client subnet (no DNS needed), or its
    name under the mesh domain when no subnet is chosen yet."""
    from meshnet.models import MeshSettings
    from meshnet.node_document import client_gateway_address

    mesh = MeshSettings.objects.filter(pk=1).first()
    if mesh is not None:
        address = client_gateway_address(mesh.client_subnet)
        if address:
            return address
    return settings.CAPTIVE_FALLBACK_HOST


def portal_facts() -> PortalFacts:
    """The cached :class:`PortalFacts` (a few queries once per period)."""
    facts = cache.get(FACTS_KEY)
    if facts is None:
        from portal.models import NodeSettings

        row = CaptiveSettings.load()
        facts = PortalFacts(
            node_name=NodeSettings.peek().node_name or "node",
            portal_host=_portal_host(),
            message=row.message,
            online=row.uplink_online,
            session_timeout=row.session_timeout,
        )
        cache.set(FACTS_KEY, facts, PAGE_SECONDS)
    return facts


def invalidate_pages(**_kwargs: Any) -> None:
    """Forget every cached page and the facts (a signal receiver too)."""
    keys = [FACTS_KEY]
    for kind in PAGE_KINDS:
        keys += [
            PAGE_KEY.format(kind=kind, language=code) for code, _n in settings.LANGUAGES
        ]
    cache.delete_many(keys)


@dataclass(frozen=True)
class ServiceEntry:
    """One service on the welcome page: what, where, and how to use it."""

    name: str
    node: str
    url: str
    protocol: str
    address: str
    port: int | None
    purpose: str = ""


def _entries(
    node: str, address: str, offers: list[dict[str, Any]]
) -> list[ServiceEntry]:
    result = []
    for offer in offers:
        if not isinstance(offer, dict) or not offer.get("name"):
            continue
        port = offer.get("port")
        result.append(
            ServiceEntry(
                name=str(offer.get("name", ""))[:64],
                node=node,
                url=str(offer.get("url") or "")[:256],
                protocol=str(offer.get("protocol") or "")[:16],
                address=address,
                port=port if isinstance(port, int) else None,
                purpose=str(offer.get("purpose") or "")[:200],
            )
        )
    return result


def mesh_services() -> tuple[list[ServiceEntry], list[ServiceEntry]]:
    """This node's services and those of the rest of the mesh.

    This node's come from the services hook of its node document; the
    others' from the mesh directory (untrusted: checked when stored, and
    escaped by the template). Both lists are empty until the services app
    registers services.
    """
    from dataclasses import asdict

    from meshnet.models import DirectoryEntry
    from meshnet.node_document import local_services

    facts = portal_facts()
    here = _entries(
        facts.node_name,
        facts.portal_host,
        [asdict(offer) for offer in local_services()],
    )
    elsewhere: list[ServiceEntry] = []
    for entry in DirectoryEntry.objects.filter(expires__gt=timezone.now()).only(
        "name", "address", "services"
    ):
        elsewhere += _entries(entry.name, entry.address, list(entry.services or []))
    return here, elsewhere


def _render_page(kind: str, language: str) -> str:
    facts = portal_facts()
    here, elsewhere = mesh_services()
    with translation.override(language):
        return render_to_string(
            f"captive/{kind}.html",
            {
                "facts": facts,
                "here": here,
                "elsewhere": elsewhere,
                "language": language,
                "languages": settings.LANGUAGES,
                "rtl": translation.get_language_bidi(),
                "token_placeholder": TOKEN_PLACEHOLDER,
                "page_title": _("Welcome to %(node)s") % {"node": facts.node_name},
            },
        )


def public_page(kind: str, language: str) -> str:
    """The welcome (``splash``) or venue page of ``language``, cached."""
    key = PAGE_KEY.format(kind=kind, language=language)
    page = cache.get(key)
    if page is None:
        page = _render_page(kind, language)
        cache.set(key, page, PAGE_SECONDS)
    return page


def live_session_for_ip(ip: str) -> ClientSession | None:
    """The live (pending or active) session of ``ip``, if any (one query)."""
    return (
        ClientSession.objects.filter(
            ip=ip,
            state__in=(SessionState.PENDING, SessionState.ACTIVE),
            expires_at__gt=timezone.now(),
        )
        .order_by("-since")
        .first()
    )


def connected_clients() -> list[ClientSession]:
    """Live sessions for the operator's table, newest first."""
    return list(
        ClientSession.objects.filter(
            state__in=(SessionState.PENDING, SessionState.ACTIVE)
        ).order_by("-since")
    )


def recent_ended(limit: int = 20) -> list[ClientSession]:
    return list(
        ClientSession.objects.filter(state=SessionState.ENDED).order_by("-ended_at")[
            :limit
        ]
    )


def enabled_interfaces() -> list[str]:
    return list(
        PortalInterface.objects.filter(enabled=True).values_list("name", flat=True)
    )


def portal_enabled() -> bool:
    return PortalInterface.objects.filter(enabled=True).exists()


def client_interface_names() -> list[str]:
    """Client interfaces the mesh app knows, plus any already configured."""
    from meshnet.models import MeshInterface

    names = set(
        MeshInterface.objects.filter(role="clients").values_list("name", flat=True)
    )
    names |= set(PortalInterface.objects.values_list("name", flat=True))
    return sorted(names)


def offline_dns_answer() -> str | None:
    """What the node's DNS answers for every name outside the mesh while
    the portal is on and the node knows no way to the Internet.

    Offline, no outside name resolves at all, so a phone that opens any
    site meets a DNS error instead of the portal (held) or the node's
    pages (let through). Answering the node's offline address
    (:data:`probes.OFFLINE_ADDRESS`, never a private one) sends every
    such request to the node; once the gateway reports the uplink, real
    DNS answers again.
    """
    if not portal_enabled() or CaptiveSettings.load().uplink_online:
        return None
    return probes.OFFLINE_ADDRESS


def captive_portal_api_uri() -> str | None:
    """The RFC 8908 API URI for DHCP option 114 when the portal is on.

    The portal is plain HTTP: a mesh node cannot hold a certificate that
    phones trust. Clients that insist on HTTPS for the API ignore option
    114 and fall back on the probes, which the portal answers too.
    """
    if not portal_enabled():
        return None
    return portal_facts().api_url
