"""The operator's pages of the captive portal (HTTPS, login).

Mounted at ``/captive-portal/``, outside the public ``/captive/`` prefix, so
PublicSideMiddleware sends them to HTTPS like every other operator page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.jobqueue.errors import JobInputError

from . import selectors, services
from .forms import INTERFACE_PREFIX, MacRuleForm, PortalSettingsForm
from .models import (
    CaptiveSettings,
    ClientSession,
    MacRule,
    MacRuleKind,
    PortalInterface,
)


def _settings_initial(interfaces: list[str]) -> dict[str, Any]:
    row = CaptiveSettings.load()
    enabled = dict(PortalInterface.objects.values_list("name", "enabled"))
    initial: dict[str, Any] = {
        "session_timeout": row.session_timeout,
        "idle_timeout": row.idle_timeout,
        "message": row.message,
        "restore_after_restart": row.restore_after_restart,
    }
    for name in interfaces:
        initial[INTERFACE_PREFIX + name] = enabled.get(name, False)
    return initial


def _page(request: HttpRequest, **forms: Any) -> HttpResponse:
    interfaces = selectors.client_interface_names()
    context = {
        "settings_form": forms.get("settings_form")
        or PortalSettingsForm(
            interfaces=interfaces, initial=_settings_initial(interfaces)
        ),
        "mac_form": forms.get("mac_form") or MacRuleForm(),
        "clients": selectors.connected_clients(),
        "ended": selectors.recent_ended(),
        "blocked": MacRule.objects.filter(kind=MacRuleKind.BLOCKED),
        "allowed": MacRule.objects.filter(kind=MacRuleKind.ALLOWED),
        "facts": selectors.portal_facts(),
        "portal_on": selectors.portal_enabled(),
    }
    status = 400 if any(f.errors for f in forms.values() if f is not None) else 200
    return render(request, "captive/manage.html", context, status=status)


@login_required
def manage(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def settings_save(request: HttpRequest) -> HttpResponse:
    form = PortalSettingsForm(
        request.POST, interfaces=selectors.client_interface_names()
    )
    if not form.is_valid():
        return _page(request, settings_form=form)
    try:
        job = services.portal_settings_update(
            session_timeout=form.cleaned_data["session_timeout"],
            idle_timeout=form.cleaned_data["idle_timeout"],
            message=form.cleaned_data["message"],
            restore_after_restart=form.cleaned_data["restore_after_restart"],
            interfaces=form.interfaces,
            user=request.user,
        )
    except JobInputError as error:
        messages.error(request, str(error))
        return redirect("captive_manage:manage")
    return redirect(job.get_absolute_url())


@login_required
@require_POST
def kick(request: HttpRequest, session_id: int) -> HttpResponse:
    session = get_object_or_404(ClientSession, pk=session_id)
    services.client_kick(session_id=session.pk, user=request.user)
    messages.success(
        request,
        _("%(mac)s is being sent back to the welcome page.") % {"mac": session.mac},
    )
    return redirect("captive_manage:manage")


@login_required
@require_POST
def mac_rule_add(request: HttpRequest) -> HttpResponse:
    form = MacRuleForm(request.POST)
    if not form.is_valid():
        return _page(request, mac_form=form)
    services.mac_rule_set(
        mac=form.cleaned_data["mac"],
        kind=form.cleaned_data["kind"],
        note=form.cleaned_data["note"],
        user=request.user,
    )
    messages.success(request, _("The rule is saved and being applied."))
    return redirect("captive_manage:manage")


@login_required
@require_POST
def mac_rule_remove(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_object_or_404(MacRule, pk=rule_id)
    services.mac_rule_remove(rule_id=rule.pk, user=request.user)
    messages.success(request, _("The rule is removed."))
    return redirect("captive_manage:manage")
