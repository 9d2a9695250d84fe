"""Operator URLs of the captive app (``/captive-portal/``: HTTPS, login)."""

from django.urls import path

from . import operator_views

app_name = "captive_manage"
urlpatterns = [
    path("", operator_views.manage, name="manage"),
    path("settings/", operator_views.settings_save, name="settings"),
    path("clients/<int:session_id>/kick/", operator_views.kick, name="kick"),
    path("macs/", operator_views.mac_rule_add, name="mac_add"),
    path(
        "macs/<int:rule_id>/remove/", operator_views.mac_rule_remove, name="mac_remove"
    ),
]
