"""Login and logout: Django's views with the portal's templates.

Throttling is django-axes (settings ``AXES_*``): after five wrong passwords
from one address the login answers with ``portal/locked_out.html``.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views


class LoginView(auth_views.LoginView):
    """The operator's login page."""

    template_name = "portal/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Log out (POST only, so a link on another page cannot log you out)."""
