"""The services pages: the list, one service, and switching on and off.

Views hold no logic: they read through :mod:`services.selectors`, write
through :mod:`services.services`, and send the operator to the job page of
a queued job (it refreshes until the job ends, without JavaScript too).
Only catalogue ids are accepted; anything else is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from portal.jobqueue.errors import JobInputError

from . import selectors, services
from .catalogue import CatalogueEntry
from .forms import ServiceSettingsForm
from .values import SettingRefused


def _entry(service_id: str) -> CatalogueEntry:
    try:
        return services.entry_for(service_id)
    except services.UnknownService:
        raise Http404(_("No such service.")) from None


def _to_job(job: object) -> HttpResponse:
    return redirect("jobs:detail", job.pk)  # type: ignore[attr-defined]


@login_required
def service_list(request: HttpRequest) -> HttpResponse:
    """Every service with its state in plain words."""
    return render(request, "services/list.html", {"rows": selectors.service_rows()})


@login_required
@require_http_methods(["GET", "POST"])
def service_detail(request: HttpRequest, service_id: str) -> HttpResponse:
    """One service: state, health, how clients use it, its settings."""
    entry = _entry(service_id)
    row = selectors.service_row(entry)
    form = ServiceSettingsForm(
        request.POST or None, entry=entry, initial=_initial(entry, row)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.update_settings(
                service_id=entry.id,
                values=form.submitted_values(row.state.settings or {}),
                user=request.user,
            )
        except SettingRefused as refused:
            form.add_error(refused.key or None, refused.message)
        else:
            messages.success(request, _("Settings saved."))
            return redirect("services:detail", entry.id)
    return render(
        request,
        "services/detail.html",
        {
            "row": row,
            "entry": entry,
            "form": form,
            "uplink": selectors.node_has_uplink(),
            "access": selectors.client_access(entry, row.state),
        },
    )


def _initial(entry: CatalogueEntry, row: selectors.ServiceRow) -> dict:
    stored = row.state.settings or {}
    return {
        setting.key: stored.get(setting.key, setting.default)
        for setting in entry.settings
        if setting.kind != "password"
    }


@login_required
@require_http_methods(["GET", "POST"])
def switch_on(request: HttpRequest, service_id: str) -> HttpResponse:
    """Confirm (listing what is pulled in), then queue the activation."""
    entry = _entry(service_id)
    if request.method == "POST":
        try:
            job = services.request_activation(service_id=entry.id, user=request.user)
        except JobInputError as error:
            messages.error(request, str(error))
            return redirect("services:detail", entry.id)
        return _to_job(job)
    return render(
        request,
        "services/confirm.html",
        {"entry": entry, "switching": "on", "others": selectors.pulled_in(entry)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def switch_off(request: HttpRequest, service_id: str) -> HttpResponse:
    """Confirm (listing the services that need it), then queue the stop."""
    entry = _entry(service_id)
    if request.method == "POST":
        try:
            job = services.request_deactivation(service_id=entry.id, user=request.user)
        except JobInputError as error:
            messages.error(request, str(error))
            return redirect("services:detail", entry.id)
        return _to_job(job)
    return render(
        request,
        "services/confirm.html",
        {"entry": entry, "switching": "off", "others": selectors.cascaded(entry)},
    )


@login_required
@require_POST
def secrets_seen(request: HttpRequest, service_id: str) -> HttpResponse:
    """The operator noted the generated passwords: stop showing them."""
    entry = _entry(service_id)
    services.mark_secrets_seen(service_id=entry.id)
    return redirect("services:detail", entry.id)


@login_required
@require_POST
def install(request: HttpRequest, service_id: str) -> HttpResponse:
    """Queue the installation of the service's missing Debian packages."""
    entry = _entry(service_id)
    try:
        job = services.request_package_install(service_id=entry.id, user=request.user)
    except services.NoUplink as refused:
        messages.error(request, str(refused))
        return redirect("services:detail", entry.id)
    return _to_job(job)
