"""Pages of "apply with rollback" (under /mesh/changes/).

- ``changes/`` (login): recent changes and the default time to confirm.
- ``changes/<id>/`` (login): one change: what changed, the countdown, the
  confirm button, and the result ("joined the mesh" or "rolled back").
- ``changes/<id>/confirm/<token>/`` (no login): the same page for whoever
  holds the token, which is what the operator opens on the node's new
  address, where the old session cookie is not sent. The token is the
  credential: secret (192 random bits), compared in constant time, good for
  one confirmation, and wrong tokens are throttled per client address.
- ``changes/<id>/confirm/`` (POST, no login): confirm or undo with the
  token from the form.

The confirmation POST is not CSRF-exempt, and need not be: the operator
opens the confirm page on the address it will post to, so Django's CSRF
cookie and the Origin check are those of that address. A page of another
site cannot post a valid form, and even if it could, it would not know the
token. Every page works without JavaScript: the deadline is shown as a time
and the page reloads itself (meta refresh) while the change is open.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.middleware import client_address

from .. import change_services as services
from ..change_forms import ConfirmForm, RollbackSecondsForm
from ..change_selectors import change_view, confirm_path, recent_changes
from ..changes import kind_label
from ..models import MeshSettings, PendingChange

MAX_ID = 2**63 - 1


def _page(
    request: HttpRequest,
    change: PendingChange,
    *,
    via_token: bool,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    view = change_view(change)
    context: dict[str, Any] = {
        "view": view,
        "change": change,
        "via_token": via_token,
        "confirm_action": _confirm_post_path(change),
        "confirm_path": confirm_path(change),
        "error": error,
    }
    return render(request, "meshnet/changes/detail.html", context, status=status)


def _confirm_post_path(change: PendingChange) -> str:
    from django.urls import reverse

    return reverse("meshnet:change_confirm_post", args=[change.pk])


def _refused(request: HttpRequest, refusal: services.ConfirmRefused) -> HttpResponse:
    status = 429 if refusal.reason == "throttled" else 404
    return render(
        request,
        "meshnet/changes/refused.html",
        {"message": refusal.message, "reason": refusal.reason},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def change_list(request: HttpRequest) -> HttpResponse:
    """Recent changes, and the form for the default time to confirm."""
    settings_row = MeshSettings.load()
    if request.method == "POST":
        form = RollbackSecondsForm(request.POST)
        if form.is_valid():
            try:
                services.update_rollback_seconds(seconds=form.cleaned_data["seconds"])
            except services.ChangeError as error:
                form.add_error("seconds", str(error.message))
            else:
                messages.success(request, _("The time to confirm was saved."))
                return redirect("meshnet:change_list")
    else:
        form = RollbackSecondsForm(initial={"seconds": settings_row.rollback_seconds})
    return render(
        request,
        "meshnet/changes/list.html",
        {
            "changes": [(c, kind_label(c.kind)) for c in recent_changes()],
            "open_change": services.open_change(),
            "form": form,
        },
        status=400 if form.errors else 200,
    )


@never_cache
@login_required
def change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The operator's page of one change (on the address they came from)."""
    if not 0 < pk <= MAX_ID:
        return _refused(
            request,
            services.ConfirmRefused("unknown", _("There is no such change.")),
        )
    change = get_object_or_404(PendingChange, pk=pk)
    return _page(request, change, via_token=False)


@never_cache
@require_http_methods(["GET"])
def change_confirm(request: HttpRequest, pk: int, token: str) -> HttpResponse:
    """The change page for whoever holds its token (no session needed)."""
    try:
        change = services.find_change(
            change_id=pk, token=token, address=client_address(request)
        )
    except services.ConfirmRefused as refusal:
        return _refused(request, refusal)
    return _page(request, change, via_token=True)


@never_cache
@require_POST
def change_confirm_post(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm (or undo) with the token from the form; no session needed."""
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        return _refused(
            request,
            services.ConfirmRefused(
                "unknown",
                _("The confirmation form was incomplete. Open the link again."),
            ),
        )
    token = form.cleaned_data["token"]
    address = client_address(request)
    undo = form.cleaned_data["action"] == "rollback"
    act = services.roll_back_now if undo else services.confirm_change
    try:
        change = act(change_id=pk, token=token, address=address)
    except services.ConfirmRefused as refusal:
        if refusal.reason in ("unknown", "throttled"):
            return _refused(request, refusal)
        change = PendingChange.objects.get(pk=pk)
        return _page(
            request,
            change,
            via_token=True,
            error=str(refusal.message),
            status=409,
        )
    if undo:
        messages.info(request, _("The change is being undone."))
    else:
        messages.success(request, _("The change is confirmed and stays."))
    return HttpResponseRedirect(confirm_path(change))


urlpatterns: list[URLPattern] = [
    path("changes/", change_list, name="change_list"),
    path("changes/<int:pk>/", change_detail, name="change_detail"),
    path(
        "changes/<int:pk>/confirm/<str:token>/",
        change_confirm,
        name="change_confirm",
    ),
    path("changes/<int:pk>/confirm/", change_confirm_post, name="change_confirm_post"),
]
