"""Reads of the services app for the pages (database and catalogue only)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from . import catalogue as catalogue_module
from . import dependencies
from .catalogue import CatalogueEntry
from .components import install_hint, installed_debian_packages, missing_packages
from .models import ObservedState, ServiceState


@dataclass(frozen=True)
class ServiceRow:
    """One service as the panel shows it.

    ``missing`` is read from dpkg's status file when the page is built (a
    file read, no command), so a service that is off already says
    "missing packages" before the operator tries to switch it on.
    """

    entry: CatalogueEntry
    state: ServiceState
    missing: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def observed(self) -> str:
        stored = self.state.observed
        if stored == ObservedState.OFF and self.missing:
            return ObservedState.MISSING
        if stored == ObservedState.MISSING and not self.missing:
            # Installed since (from a USB medium, say): off, or failing if
            # it should run, until the next start or check says more.
            return ObservedState.FAILING if self.state.enabled else ObservedState.OFF
        return stored

    @property
    def observed_label(self) -> str:
        return ObservedState(self.observed).label

    @property
    def missing_names(self) -> list[str]:
        return list(self.missing)

    @property
    def install_hint(self) -> str:
        return install_hint(self.missing_names)

    @property
    def checked_just_now(self) -> bool:
        """Less than a minute ago (``timesince`` would say "0 minutes")."""
        at = self.state.last_health_at
        return at is not None and (timezone.now() - at).total_seconds() < 60

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
    """Every catalogued service with its stored state (unsaved if none),
    in the order of their names in the operator's language."""
    rows = {row.service_id: row for row in ServiceState.objects.all()}
    installed = installed_debian_packages()
    found = [
        ServiceRow(
            entry=entry,
            state=_state(entry.id, rows),
            missing=tuple(missing_packages(entry, installed)),
        )
        for entry in catalogue_module.catalogue()
    ]
    return sorted(found, key=lambda row: str(row.entry.title).casefold())


def service_row(entry: CatalogueEntry) -> ServiceRow:
    row = ServiceState.objects.filter(service_id=entry.id).first()
    return ServiceRow(
        entry=entry,
        state=row or ServiceState(service_id=entry.id),
        missing=tuple(missing_packages(entry)),
    )


@dataclass(frozen=True)
class ClientAccess:
    """Where a person on the mesh reaches a service: by name and by address."""

    name: str
    address: str
    url_by_name: str = ""
    url_by_address: str = ""
    port: int | None = None
    ports: tuple[str, ...] = ()


def client_access(
    entry: CatalogueEntry, state: ServiceState | None = None
) -> ClientAccess:
    """``SERVICE.NODE.mesh`` (mesh DNS, while it is announced) and the node's
    client-side address, with the URL or the port an app needs; or the
    address the service published itself (an onion address) once known."""
    from .announce import _network, client_use

    ports = tuple(f"{port.proto} {port.port}" for port in entry.ports if port.listens)
    if entry.client.address_file:
        port = entry.port(entry.client.port).port if entry.client.port else None
        published = state.client_address if state is not None else ""
        return ClientAccess(name=published, address="", port=port, ports=ports)
    network = _network()
    name = f"{entry.id}.{network.node_name}.{network.domain}"
    address = (network.client_addresses or network.mesh_addresses or ("",))[0]
    if entry.client.kind == "url":
        return ClientAccess(
            name=name,
            address=address,
            url_by_name=client_use(entry, name).url,
            url_by_address=client_use(entry, address).url if address else "",
            ports=ports,
        )
    port = entry.port(entry.client.port).port if entry.client.port else None
    return ClientAccess(name=name, address=address, port=port, ports=ports)


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
