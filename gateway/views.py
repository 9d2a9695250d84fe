"""The operator's gateway page: uplink candidates, settings, current state.

The web process runs no commands: the candidates and the uplink's state are
what the worker's jobs stored (``gateway.scan_uplinks``,
``gateway.check_uplink``). Saving queues ``gateway.apply`` and shows its job.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.jobqueue.errors import JobInputError

from . import selectors, services
from .forms import GatewaySettingsForm
from .health import UplinkHealth
from .models import GatewaySettings


def _mesh_interfaces() -> list[str]:
    from meshnet.models import MeshInterface

    return list(MeshInterface.objects.values_list("name", flat=True))


def _initial(row: GatewaySettings) -> dict[str, Any]:
    return {
        "uplink_interface": row.uplink_interface,
        "addressing": row.addressing,
        "static_address": row.static_address,
        "static_router": row.static_router or "",
        "sharing": row.sharing,
        "dns_mode": row.dns_mode,
        "dns_servers": " ".join(row.dns_servers or []),
        "check_targets": " ".join(row.check_targets or []),
        "check_interval_seconds": row.check_interval_seconds,
        "fail_threshold": row.fail_threshold,
        "pass_threshold": row.pass_threshold,
        "tor_enabled": row.tor_enabled,
        "onion_services": list(row.onion_services or []),
    }


def _form(data: Any = None, row: GatewaySettings | None = None) -> GatewaySettingsForm:
    return GatewaySettingsForm(
        data,
        initial=_initial(row) if row is not None else None,
        onion_choices=selectors.onion_service_choices(),
        mesh_interfaces=_mesh_interfaces(),
    )


def _page(
    request: HttpRequest, form: GatewaySettingsForm | None = None
) -> HttpResponse:
    row = selectors.gateway_settings()
    context = {
        "row": row,
        "form": form or _form(row=row),
        "internet": selectors.internet_summary(),
        "candidates": row.candidates or [],
        "health": UplinkHealth.from_dict(row.health),
        "upstreams": selectors.dns_upstream_servers(),
    }
    status = 400 if form is not None and form.errors else 200
    return render(request, "gateway/settings.html", context, status=status)


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def settings_save(request: HttpRequest) -> HttpResponse:
    form = _form(request.POST)
    if not form.is_valid():
        return _page(request, form)
    data = form.cleaned_data
    try:
        job = services.gateway_settings_update(
            uplink_interface=data["uplink_interface"],
            addressing=data["addressing"],
            static_address=data["static_address"],
            static_router=data["static_router"],
            sharing=data["sharing"],
            dns_mode=data["dns_mode"],
            dns_servers=data["dns_servers"],
            check_targets=data["check_targets"],
            check_interval_seconds=data["check_interval_seconds"],
            fail_threshold=data["fail_threshold"],
            pass_threshold=data["pass_threshold"],
            tor_enabled=data["tor_enabled"],
            onion_services=data["onion_services"],
            user=request.user,
        )
    except JobInputError as error:
        messages.error(request, str(error))
        return redirect("gateway:settings")
    return redirect(job.get_absolute_url())


@login_required
@require_POST
def scan(request: HttpRequest) -> HttpResponse:
    job = services.uplink_scan_request(user=request.user)
    return redirect(job.get_absolute_url())
