"""Reads of the services app for the pages (database and catalogue only)."""

from __future__ import annotations

from dataclasses import dataclass

from . import catalogue as catalogue_module
from . import dependencies
from .catalogue import CatalogueEntry
from .components import install_hint
from .models import ObservedState, ServiceState


@dataclass(frozen=True)
class ServiceRow:
    """One service as the panel shows it."""

    entry: CatalogueEntry
    state: ServiceState

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def observed(self) -> str:
        return self.state.observed

    @property
    def observed_label(self) -> str:
        return ObservedState(self.state.observed).label

    @property
    def install_hint(self) -> str:
        return install_hint(list(self.state.missing_packages or []))

    @property
    def shown_secrets(self) -> list[tuple[str, str]]:
        if not self.state.secrets_unseen:
            return []
        return [
            (str(secret.label_title), self.state.secrets.get(secret.key, ""))
            for secret in self.entry.secrets
            if secret.show and self.state.secrets.get(secret.key)
        ]


def node_has_uplink() -> bool:
    """Whether the node has an Internet uplink now (the gateway reports it).

    The gateway part tells the captive app through
    ``captive.services.uplink_state_set``; without that report (or without
    the captive app) the node counts as offline, which is the safe answer:
    an install job without an uplink can only fail.
    """
    from django.apps import apps

    if not apps.is_installed("captive"):
        return False
    from captive.models import CaptiveSettings

    return bool(CaptiveSettings.load().uplink_online)


def _state(service_id: str, rows: dict[str, ServiceState]) -> ServiceState:
    return rows.get(service_id) or ServiceState(service_id=service_id)


def service_rows() -> list[ServiceRow]:
    """Every catalogued service with its stored state (unsaved if none)."""
    rows = {row.service_id: row for row in ServiceState.objects.all()}
    return [
        ServiceRow(entry=entry, state=_state(entry.id, rows))
        for entry in catalogue_module.catalogue()
    ]


def service_row(entry: CatalogueEntry) -> ServiceRow:
    row = ServiceState.objects.filter(service_id=entry.id).first()
    return ServiceRow(entry=entry, state=row or ServiceState(service_id=entry.id))


def enabled_ids() -> set[str]:
    return set(
        ServiceState.objects.filter(enabled=True).values_list("service_id", flat=True)
    )


def pulled_in(entry: CatalogueEntry) -> list[CatalogueEntry]:
    """Services switching ``entry`` on also switches on."""
    cat = catalogue_module.catalogue()
    return [
        cat.get(other)
        for other in dependencies.to_pull_in(cat, entry.id, enabled_ids())
    ]


def cascaded(entry: CatalogueEntry) -> list[CatalogueEntry]:
    """Switched-on services switching ``entry`` off also stops."""
    cat = catalogue_module.catalogue()
    return [
        cat.get(other)
        for other in dependencies.to_cascade(cat, entry.id, enabled_ids())
    ]
