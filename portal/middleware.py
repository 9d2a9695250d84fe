"""Which pages answer where, and what happens before the node is set up.

The node listens twice (nginx in front, see docs): plain HTTP for everyone
on the mesh (captive portal, announcement page, node API) and HTTPS for the
operator. :class:`PublicSideMiddleware` keeps the two apart: over plain HTTP
only the public paths answer, and any other path is redirected to the same
path on the HTTPS side, so an admin password or session cookie never
travels in clear text.

:class:`SetupRequiredMiddleware` sends every operator page to the first-run
wizard until setup is done.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.urls import reverse
from django.utils.translation import gettext as _

# Paths served on the plain-HTTP side. "/" is matched exactly (the public
# home); the others are prefixes. Apps add their own through the
# PUBLIC_PATH_PREFIXES setting.
BUILTIN_PUBLIC_PREFIXES: tuple[str, ...] = (
    "/static/",
    "/i18n/",
    "/api/",
    "/captive/",
    "/.well-known/",
)

# Paths that stay reachable before setup is done (besides the public ones).
SETUP_OPEN_PREFIXES: tuple[str, ...] = ("/setup/", "/static/", "/i18n/")

# A DNS name (labels of letters, digits, hyphens) or an IPv4 address.
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def public_prefixes() -> tuple[str, ...]:
    extra: Iterable[str] = getattr(settings, "PUBLIC_PATH_PREFIXES", ())
    return BUILTIN_PUBLIC_PREFIXES + tuple(extra)


def is_public_path(path: str) -> bool:
    """Whether ``path`` may be served over plain HTTP."""
    return path == "/" or path.startswith(public_prefixes())


def request_hostname(request: HttpRequest) -> str | None:
    """The host the client asked for, without its port; None when absurd.

    Hosts are taken from the ``Host`` header (every host is allowed, as a
    captive portal must answer for any name), so the value is checked here
    before it goes into a ``Location`` header: a DNS name, an IPv4 address or
    a bracketed IPv6 address, nothing else.
    """
    raw = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME") or ""
    if len(raw) > 260:
        return None
    if raw.startswith("["):
        end = raw.find("]")
        if end == -1:
            return None
        literal = raw[1:end]
        rest = raw[end + 1 :]
        if rest and not re.fullmatch(r":\d{1,5}", rest):
            return None
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return None
        return f"[{literal}]"
    host, _sep, port = raw.partition(":")
    if port and not port.isdigit():
        return None
    if not _HOSTNAME.match(host):
        return None
    return host.rstrip(".").lower()


def https_url(request: HttpRequest) -> str | None:
    """The HTTPS address of the page ``request`` asked for, or None."""
    host = request_hostname(request)
    if host is None:
        return None
    port = settings.PORTAL.https_port
    netloc = host if port == 443 else f"{host}:{port}"
    return f"https://{netloc}{request.get_full_path()}"


class PublicSideMiddleware:
    """On plain HTTP, serve public pages only and send the rest to HTTPS."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.is_secure() or is_public_path(request.path_info):
            return self.get_response(request)
        target = https_url(request)
        if target is None:
            return HttpResponseBadRequest(
                _("Bad Host header."), content_type="text/plain; charset=utf-8"
            )
        return HttpResponseRedirect(target)


class SetupRequiredMiddleware:
    """Until the first-run wizard is done, every operator page leads to it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_operator_path(request):
            from portal.models import NodeSettings

            if not NodeSettings.peek().setup_done:
                return HttpResponseRedirect(reverse("portal:setup"))
        return self.get_response(request)


def is_operator_path(request: HttpRequest) -> bool:
    """Whether the request is for an operator page (as opposed to a public
    page or the wizard itself). ``/`` is the dashboard on HTTPS and the
    public home on HTTP."""
    path = request.path_info
    if path.startswith(SETUP_OPEN_PREFIXES):
        return False
    if path == "/":
        return request.is_secure()
    return not is_public_path(path)


def client_address(request: HttpRequest) -> str:
    """The client's IP address, for throttling (setup secret and login).

    Behind nginx (production and dev settings trust its headers, see
    ``SECURE_PROXY_SSL_HEADER``) gunicorn listens on a socket only nginx can
    reach, so nginx's ``X-Real-IP`` is the client; without it every client
    would share nginx's address and one guesser would lock everyone out.
    Elsewhere (tests, runserver) the socket's peer address is used.
    """
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_REAL_IP", "").strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR") or "unknown"
