"""URLs of the gateway app (under /gateway/)."""

from django.urls import path

from . import views

app_name = "gateway"
urlpatterns = [
    path("", views.settings_page, name="settings"),
    path("save/", views.settings_save, name="save"),
    path("scan/", views.scan, name="scan"),
]
