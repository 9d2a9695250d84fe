"""The root path: the public home on plain HTTP, the dashboard on HTTPS."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal.middleware import https_url, request_hostname

from .dashboard import dashboard


def home(request: HttpRequest) -> HttpResponse:
    """``/``: who this node is (HTTP) or the operator's dashboard (HTTPS).

    One path, two sides, because phones on the mesh type the bare address
    and operators follow the HTTPS link printed by ``make run``.
    """
    if request.is_secure():
        return dashboard(request)
    return public_home(request)


def public_home(request: HttpRequest) -> HttpResponse:
    """What this node is and where its operator panel is (no login)."""
    admin_url = None
    if request_hostname(request) is not None:
        admin_url = https_url(request)
        if admin_url is not None:
            admin_url = admin_url[: len(admin_url) - len(request.get_full_path())] + "/"
    return render(request, "portal/public_home.html", {"admin_url": admin_url})
