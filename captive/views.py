"""Pages of the captive portal that phones see (plain HTTP, no login).

The welcome page, the venue page and the RFC 8908 API are hit by every
phone nearby: they are served from cached bytes (see
:mod:`captive.selectors`) with no template render and no query in the
common case. Whether a phone is held is read from the port its request
arrived on (see :mod:`captive.probes`), not from the database.

Continue is a POST that works without JavaScript and without cookies (many
phones' portal sheets block them): instead of Django's CSRF cookie, the form
carries a token signed for the phone's own address, valid for an hour. A
page on another site cannot read it, and it only ever lets through the phone
that shows it.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core import signing
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from portal.host.errors import InvalidValue

from . import services
from .middleware import no_store
from .selectors import (
    TOKEN_PLACEHOLDER,
    arrived_held,
    client_ip,
    live_session_for_ip,
    portal_facts,
    public_page,
)

TOKEN_SALT = "captive.continue"  # noqa: S105 - a salt, not a secret
TOKEN_MAX_AGE = 3600
API_CONTENT_TYPE = "application/captive+json"


def page_language(request: HttpRequest) -> str:
    """``?lang=`` when it names a language of the node, else the browser's
    (Accept-Language, through LocaleMiddleware)."""
    known = {code for code, _name in settings.LANGUAGES}
    asked = request.GET.get("lang", "")
    if asked in known:
        return asked
    current = getattr(request, "LANGUAGE_CODE", "") or settings.LANGUAGE_CODE
    return current if current in known else settings.LANGUAGE_CODE


def client_token(ip: str) -> str:
    return signing.TimestampSigner(salt=TOKEN_SALT).sign(ip)


def token_matches(token: str, ip: str) -> bool:
    try:
        value = signing.TimestampSigner(salt=TOKEN_SALT).unsign(
            token, max_age=TOKEN_MAX_AGE
        )
    except signing.BadSignature:
        return False
    return value == ip


def _html(body: str, language: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Content-Language"] = language
    response["Cache-Control"] = "no-store"
    response["Vary"] = "Accept-Language"
    return response


@require_GET
def welcome(request: HttpRequest) -> HttpResponse:
    """The welcome page for a held phone; the venue page for the others."""
    language = page_language(request)
    if not arrived_held(request):
        return _html(public_page("venue", language), language)
    page = public_page("splash", language).replace(
        TOKEN_PLACEHOLDER, client_token(client_ip(request))
    )
    return _html(page, language)


@require_GET
def venue(request: HttpRequest) -> HttpResponse:
    """What the mesh offers, at a stable address (RFC 8908 venue-info-url)."""
    language = page_language(request)
    return _html(public_page("venue", language), language)


@csrf_exempt  # the signed per-phone token replaces the cookie (see above)
@require_POST
def continue_(request: HttpRequest) -> HttpResponse:
    """The one button: let this phone through, then show the venue page."""
    ip = client_ip(request)
    language = page_language(request)
    if not token_matches(request.POST.get("token", ""), ip):
        return no_store(
            HttpResponseBadRequest(
                _("This page is too old. Go back and tap Continue again."),
                content_type="text/plain; charset=utf-8",
            )
        )
    try:
        services.client_tap(ip=ip)
    except InvalidValue:
        return HttpResponseBadRequest(
            _("Only phones on this node's own network can be let through."),
            content_type="text/plain; charset=utf-8",
        )
    target = f"{portal_facts().venue_info_url}?lang={language}&welcome=1"
    return no_store(HttpResponseRedirect(target))


@require_GET
def api(request: HttpRequest) -> HttpResponse:
    """RFC 8908 captive portal API: held or not, and for how long.

    ``captive`` is true for a held phone (read from the port, see above);
    a phone let through also gets ``seconds-remaining`` of its session (one
    query). Sessions cannot be extended from the phone.
    """
    facts = portal_facts()
    held = arrived_held(request)
    data: dict[str, object] = {
        "captive": held,
        "user-portal-url": facts.user_portal_url,
        "venue-info-url": facts.venue_info_url,
    }
    if not held:
        session = live_session_for_ip(client_ip(request))
        if session is not None:
            data["seconds-remaining"] = session.seconds_remaining()
            data["can-extend-session"] = False
    response = HttpResponse(json.dumps(data), content_type=API_CONTENT_TYPE)
    response["Cache-Control"] = "private, no-store"
    return response
