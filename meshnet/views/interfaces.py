"""The interfaces pages: every interface, and what each one is used for.

- ``meshnet:interfaces``: the list from the worker's latest snapshot (kind,
  MAC, driver, link state, addresses, traffic, and what each radio
  supports), with the role the operator gave each interface.
- ``meshnet:interface``: one interface; a form makes it a mesh link or a
  client interface, with the community defaults filled in. Applying goes
  through the rollback flow: the page redirects to the pending change,
  which the operator confirms or lets roll back.
- ``meshnet:interface_release`` (POST): take the role away again.

The pages read the snapshot and the database only; the worker does the
rest.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from .. import interface_selectors, interface_services, wireless
from ..forms_interfaces import InterfaceUseForm
from ..models import MeshInterface

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}\Z")


def _defaults() -> dict[str, Any]:
    return {
        "ibss_essid": wireless.DEFAULT_IBSS_ESSID,
        "ibss_channel": wireless.DEFAULT_IBSS_CHANNEL,
        "ibss_bssid": wireless.DEFAULT_IBSS_BSSID,
        "mesh_id": wireless.DEFAULT_MESH_ID,
        "mesh_channel": wireless.DEFAULT_MESH_CHANNEL,
        "ap_essid": wireless.DEFAULT_AP_ESSID,
        "ap_channel": wireless.DEFAULT_AP_CHANNEL,
    }


@login_required
def interface_list(request: HttpRequest) -> HttpResponse:
    """Every interface of the node with its facts and role."""
    overview = interface_selectors.interface_overview()
    return render(
        request,
        "meshnet/interfaces/list.html",
        {"overview": overview, "rows": overview.rows},
    )


def _initial(row: interface_selectors.InterfaceRow) -> dict[str, Any]:
    current = row.assignment
    if current is not None:
        key = interface_selectors.use_key(current.role, current.medium)
        return {
            "use": key if key in row.uses else "",
            "essid": current.essid,
            "mesh_id": current.mesh_id,
            "channel": current.channel,
            "bssid": current.bssid,
        }
    first = row.uses[0] if row.uses else ""
    return {"use": first}


@login_required
@require_http_methods(["GET", "POST"])
def interface_detail(request: HttpRequest, name: str) -> HttpResponse:
    """One interface: its facts and the form that gives it a role."""
    if not _NAME.match(name):
        raise Http404
    row = interface_selectors.interface_row(name)
    if row is None:
        raise Http404
    form = InterfaceUseForm(request.POST or None, row=row, initial=_initial(row))
    if request.method == "POST" and row.configurable and form.is_valid():
        arguments = form.service_arguments()
        role = arguments.pop("role")
        service = (
            interface_services.make_mesh_interface
            if role == "mesh"
            else interface_services.make_client_interface
        )
        try:
            change = service(**arguments, user=request.user)
        except interface_services.ChangeError as error:
            form.add_error(None, str(error.message))
        else:
            return redirect(change)
    return render(
        request,
        "meshnet/interfaces/detail.html",
        {"row": row, "form": form, "defaults": _defaults()},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def interface_release(request: HttpRequest, name: str) -> HttpResponse:
    """Take the mesh or client role away from an interface."""
    if not _NAME.match(name) or not MeshInterface.objects.filter(name=name).exists():
        raise Http404
    try:
        change = interface_services.release_interface(name=name, user=request.user)
    except interface_services.ChangeError as error:
        from django.contrib import messages

        messages.error(request, str(error.message))
        return redirect("meshnet:interface", name=name)
    return redirect(change)


urlpatterns = [
    path("interfaces/", interface_list, name="interfaces"),
    path("interfaces/<str:name>/", interface_detail, name="interface"),
    path(
        "interfaces/<str:name>/release/",
        interface_release,
        name="interface_release",
    ),
]
