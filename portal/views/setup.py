"""The first-run wizard: secret, then administrator, node name, language.

Step 1 proves the visitor can read the node's console (the one-time secret
printed by ``make run``); the session then carries a proof (the secret's
hash) to step 2, which is checked again when the account is created, so a
secret re-issued in between invalidates a half-done wizard. Once setup is
done both steps are closed and send the visitor to the login page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from portal import access
from portal.forms import SetupAdminForm, SetupSecretForm
from portal.middleware import client_address
from portal.models import NodeSettings

SESSION_PROOF = "portal_setup_proof"


def _closed(request: HttpRequest) -> HttpResponse:
    messages.info(request, _("This node is already set up. Log in to manage it."))
    return redirect("portal:login")


@never_cache
@require_http_methods(["GET", "POST"])
def setup_secret(request: HttpRequest) -> HttpResponse:
    """Step 1: the one-time setup secret."""
    if NodeSettings.peek().setup_done:
        return _closed(request)
    status = 200
    if request.method == "POST":
        form = SetupSecretForm(request.POST)
        if form.is_valid():
            secret = form.cleaned_data["secret"]
            result = access.check_setup_secret(
                secret=secret, address=client_address(request)
            )
            if result is access.SecretCheck.OK:
                request.session[SESSION_PROOF] = access.secret_proof(secret)
                return redirect("portal:setup_account")
            if result is access.SecretCheck.CLOSED:
                return _closed(request)
            if result is access.SecretCheck.THROTTLED:
                status = 429
                form.add_error(
                    None,
                    _(
                        "Too many wrong secrets from your address. Wait "
                        "%(minutes)d minutes, then try again."
                    )
                    % {"minutes": access.SETUP_ATTEMPT_WINDOW.seconds // 60},
                )
            else:
                form.add_error(
                    "secret",
                    _(
                        "That is not this node's setup secret. Copy it again "
                        "from the node's console."
                    ),
                )
    else:
        form = SetupSecretForm()
    return render(
        request, "portal/setup_secret.html", {"form": form, "step": 1}, status=status
    )


@never_cache
@require_http_methods(["GET", "POST"])
def setup_account(request: HttpRequest) -> HttpResponse:
    """Step 2: administrator account, node name and language."""
    if NodeSettings.peek().setup_done:
        return _closed(request)
    proof = request.session.get(SESSION_PROOF)
    if not access.proof_is_current(proof):
        request.session.pop(SESSION_PROOF, None)
        messages.warning(request, _("Enter the setup secret first."))
        return redirect("portal:setup")
    if request.method == "POST":
        form = SetupAdminForm(request.POST)
        if form.is_valid():
            try:
                user = access.complete_setup(
                    proof=proof,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                    node_name=form.cleaned_data["node_name"],
                    language=form.cleaned_data["language"],
                )
            except access.SetupError:
                messages.error(
                    request,
                    _(
                        "Setup could not be completed: the setup secret changed. "
                        "Start again."
                    ),
                )
                return redirect("portal:setup")
            request.session.pop(SESSION_PROOF, None)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            language = form.cleaned_data["language"]
            translation.activate(language)
            messages.success(
                request,
                _("This node is set up. Welcome, %(username)s.")
                % {"username": user.get_username()},
            )
            response = redirect("portal:dashboard")
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                samesite="Lax",
                secure=request.is_secure(),
                httponly=True,
            )
            return response
    else:
        language = translation.get_language() or "en"
        form = SetupAdminForm(initial={"language": language.split("-")[0]})
    return render(request, "portal/setup_account.html", {"form": form, "step": 2})
