"""URLs of the services app (mounted at /services/)."""

from django.urls import path

from . import views

app_name = "services"
urlpatterns = [
    path("", views.service_list, name="list"),
    path("<slug:service_id>/", views.service_detail, name="detail"),
    path("<slug:service_id>/on/", views.switch_on, name="switch_on"),
    path("<slug:service_id>/off/", views.switch_off, name="switch_off"),
    path("<slug:service_id>/noted/", views.secrets_seen, name="secrets_seen"),
    path("<slug:service_id>/install/", views.install, name="install"),
]
