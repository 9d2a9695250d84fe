from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CaptiveConfig(AppConfig):
    name = "captive"
    verbose_name = _("Captive portal")
