"""Public URLs of the captive app (plain HTTP, no login): ``/captive/``.

The operator's pages live in :mod:`captive.manage_urls` (``/captive-portal/``,
HTTPS and login), outside the public ``/captive/`` prefix. The OS probe
paths at the root are answered by :class:`captive.middleware.CaptivePortalMiddleware`.
"""

from django.urls import path

from . import views

app_name = "captive"
urlpatterns = [
    path("", views.welcome, name="welcome"),
    path("venue/", views.venue, name="venue"),
    path("continue/", views.continue_, name="continue"),
    path("api/", views.api, name="api"),
]
