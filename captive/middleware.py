"""Connectivity probes and held clients' HTTP, answered before anything else.

Placed before :class:`portal.middleware.PublicSideMiddleware`: a probe can
ask for any host and any path (``/generate_204``, ``/hotspot-detect.html``
...), and a held client's HTTP to any site lands here (the firewall
redirects it). Neither may meet the HTTPS redirect, a login page or a
template render:

- a probe from a held client (it arrived on the held port) gets a redirect
  to the welcome page, never the online answer;
- a probe from anyone else gets the exact online answer of
  :mod:`captive.probes` (an authorised client on an offline node; with an
  uplink its probes go to the real Internet and never come here);
- any other request of a held client outside the portal's own pages
  (``/captive/``, ``/static/``) is redirected to the welcome page.

Every answer here is built from constants and a cached URL: no query, no
template. Redirects carry ``Cache-Control: no-store`` (a phone must not
remember the portal as the answer to its probe) and ``Connection: close``
(so a phone's next request after the tap opens a new connection; nginx must
close the client side too, see the report in docs).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from portal.middleware import request_hostname

from . import probes
from .selectors import arrived_held, portal_facts

# What a held client may still load: the portal's own pages and assets.
HELD_OPEN_PREFIXES = ("/captive/", "/static/")


def no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    response["Connection"] = "close"
    return response


def portal_redirect() -> HttpResponse:
    """The redirect a held client gets for any foreign page or probe."""
    return no_store(HttpResponseRedirect(portal_facts().user_portal_url))


def online_reply(reply: probes.OnlineReply) -> HttpResponse:
    response = HttpResponse(
        reply.body, status=reply.status, content_type=reply.content_type
    )
    if reply.status == 204:
        del response["Content-Type"]
    for name, value in reply.headers:
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


class CaptivePortalMiddleware:
    """Answer probes and hold held clients (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        held = arrived_held(request)
        probe = probes.probe_for(request_hostname(request), path)
        if probe is not None:
            if held:
                return portal_redirect()
            if isinstance(probe, probes.OnlineReply):
                return online_reply(probe)
            return no_store(HttpResponseRedirect(portal_facts().venue_info_url))
        if held and not path.startswith(HELD_OPEN_PREFIXES):
            return portal_redirect()
        return self.get_response(request)
