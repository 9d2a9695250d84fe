"""The node's public API (under /api/v1/), served on the plain-HTTP side."""

from .views import api

app_name = "meshapi"
urlpatterns = [*api.urlpatterns]
