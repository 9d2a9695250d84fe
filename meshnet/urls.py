"""URLs of the meshnet app (under /mesh/), gathered from each view module."""

from .views import changes, interfaces, status

app_name = "meshnet"
urlpatterns = [*interfaces.urlpatterns, *status.urlpatterns, *changes.urlpatterns]

from .views import addresses  # noqa: E402

urlpatterns += addresses.urlpatterns
