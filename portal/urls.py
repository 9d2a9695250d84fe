"""Root URLs. Which of them answer on the plain-HTTP side is decided by
:class:`portal.middleware.PublicSideMiddleware` (public pages only)."""

from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("jobs/", include("portal.jobqueue.urls")),
    path("mesh/", include("meshnet.urls")),
    path("api/v1/", include("meshnet.api_urls")),
    path("services/", include("services.urls")),
    path("gateway/", include("gateway.urls")),
    path("captive/", include("captive.urls")),
    path("captive-portal/", include("captive.manage_urls")),
    path("", include("portal.app_urls")),
]
