"""Dependencies between services, enforced both ways.

Switching a service on switches on what it depends on first (the page lists
them before the operator confirms); switching off one that others need
stops those others first. The catalogue refuses cycles at load
(:func:`services.catalogue.dependency_cycle`), so these walks end.
"""

from __future__ import annotations

from collections.abc import Iterable

from .catalogue import Catalogue


def activation_order(catalogue: Catalogue, service_id: str) -> list[str]:
    """``service_id`` and everything it needs, dependencies first."""
    order: list[str] = []

    def visit(current: str) -> None:
        for dependency in catalogue.get(current).depends:
            visit(dependency)
        if current not in order:
            order.append(current)

    visit(service_id)
    return order


def dependents(catalogue: Catalogue, service_id: str) -> list[str]:
    """Every service that needs ``service_id`` directly or not, those
    furthest away first (the order to stop them in)."""
    found: list[str] = []

    def visit(current: str) -> None:
        for entry in catalogue:
            if current in entry.depends and entry.id not in found:
                visit(entry.id)
                found.append(entry.id)

    visit(service_id)
    # visit appends after recursing, so deeper dependents come first.
    return found


def to_pull_in(
    catalogue: Catalogue, service_id: str, enabled: Iterable[str]
) -> list[str]:
    """Dependencies that switching ``service_id`` on would also switch on."""
    on = set(enabled)
    return [
        other
        for other in activation_order(catalogue, service_id)[:-1]
        if other not in on
    ]


def to_cascade(
    catalogue: Catalogue, service_id: str, enabled: Iterable[str]
) -> list[str]:
    """Switched-on services that switching ``service_id`` off would stop."""
    on = set(enabled)
    return [other for other in dependents(catalogue, service_id) if other in on]


def deactivation_order(
    catalogue: Catalogue, service_id: str, enabled: Iterable[str]
) -> list[str]:
    """The switched-on dependents, then ``service_id`` itself."""
    return [*to_cascade(catalogue, service_id, enabled), service_id]
