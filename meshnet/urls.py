"""URLs of the meshnet app (under /mesh/), gathered from each view module."""

from django.urls import path
from django.views.generic import RedirectView

from .views import changes, interfaces, status

app_name = "meshnet"
urlpatterns = [
    # /mesh/ itself, typed by hand, opens the mesh's first page.
    path("", RedirectView.as_view(pattern_name="meshnet:status"), name="index"),
    *interfaces.urlpatterns,
    *status.urlpatterns,
    *changes.urlpatterns,
]

from .views import addresses  # noqa: E402

urlpatterns += addresses.urlpatterns
