from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServicesConfig(AppConfig):
    name = "services"
    verbose_name = _("Services")

    def ready(self) -> None:
        """Announce running services on the node document (and so on mesh
        DNS and the captive pages)."""
        from meshnet.node_document import register_service_provider

        from .announce import service_offers

        register_service_provider(service_offers)
