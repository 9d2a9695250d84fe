"""The addresses page: what this node's addresses are, how they were chosen.

GET shows the stored mesh address and client subnet, how they came about
(chosen by the node or set by the operator, when they were last checked)
and the outcome of the last choose/check job. Two POST actions start a job
each and redirect to its page, which follows it live: "choose
automatically", and the manual form (checked on the page first, then for
clashes by the worker).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from portal.models import Job

from .. import address_services
from ..addressing import AddressInputError
from ..change_services import open_change
from ..forms_addresses import ManualAddressesForm
from ..models import MeshSettings

TEMPLATE = "meshnet/addresses/page.html"


def _page_context(form: ManualAddressesForm) -> dict[str, Any]:
    row = MeshSettings.load()
    last_job = (
        Job.objects.filter(
            kind__in=(address_services.CHOOSE_KIND, address_services.CHECK_KIND)
        )
        .order_by("-created")
        .first()
    )
    current = address_services.current_addresses()
    change = open_change()
    return {
        "mesh_settings": row,
        "open_change": change
        if change is not None and change.kind == "addresses"
        else None,
        "current": current,
        "client_gateway": current.client_gateway if current else None,
        "last_job": last_job,
        "form": form,
    }


@login_required
@require_http_methods(["GET", "HEAD"])
def addresses_page(request: HttpRequest) -> HttpResponse:
    return render(request, TEMPLATE, _page_context(ManualAddressesForm()))


@login_required
@require_POST
def choose_automatically(request: HttpRequest) -> HttpResponse:
    job = address_services.choose_addresses(user=request.user)
    messages.info(
        request,
        _("The node is choosing its addresses; this page follows the job."),
    )
    return redirect(job.get_absolute_url())


@login_required
@require_POST
def set_manually(request: HttpRequest) -> HttpResponse:
    form = ManualAddressesForm(request.POST)
    if form.is_valid():
        try:
            job = address_services.set_addresses_manually(
                mesh_address=form.cleaned_data["mesh_address"],
                client_subnet=form.cleaned_data["client_subnet"],
                user=request.user,
            )
        except AddressInputError as error:
            form.add_error(error.field, error.message)
        else:
            messages.info(
                request,
                _(
                    "The node is checking these addresses; they are kept only "
                    "if nobody else uses them."
                ),
            )
            return redirect(job.get_absolute_url())
    return render(request, TEMPLATE, _page_context(form), status=400)


urlpatterns = [
    path("addresses/", addresses_page, name="addresses"),
    path("addresses/choose/", choose_automatically, name="addresses_choose"),
    path("addresses/manual/", set_manually, name="addresses_manual"),
]
