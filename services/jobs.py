"""RQ entry points of the services app: thin, ids only, one service each."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from portal.jobqueue.registry import registered_job

from . import services

HEALTH_CHECK_EVERY = 30


@registered_job("services.activate", title=_("Switch a service on"))
def activate(*, service_id: str, restart: bool = False) -> dict[str, Any]:
    return services.activate_service(service_id=service_id, restart=bool(restart))


@registered_job("services.deactivate", title=_("Switch a service off"))
def deactivate(*, service_id: str) -> dict[str, Any]:
    return services.deactivate_service(service_id=service_id)


@registered_job("services.reconcile", title=_("Bring services to their stored state"))
def reconcile() -> dict[str, Any]:
    return services.reconcile_all()


@registered_job(
    "services.health_check",
    every=HEALTH_CHECK_EVERY,
    routine=True,
    title=_("Check the services"),
)
def health_check() -> dict[str, Any]:
    return services.run_health_checks()


@registered_job("services.install_packages", title=_("Install a service's packages"))
def install_packages(*, service_id: str) -> dict[str, Any]:
    return services.install_packages(service_id=service_id)
