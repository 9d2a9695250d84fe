from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MeshnetConfig(AppConfig):
    name = "meshnet"
    verbose_name = _("Mesh network")
