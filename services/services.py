"""Writes of the services app: requests from the panel and the job bodies.

Two halves:

- Requests (called by views, in the web process): :func:`request_activation`,
  :func:`request_deactivation`, :func:`update_settings`,
  :func:`request_package_install`. They check the id against the catalogue,
  store the desired state in one transaction and enqueue a job on commit.
- Job bodies (called by :mod:`services.jobs` in the privileged worker):
  :func:`activate_service`, :func:`deactivate_service`, :func:`reconcile_all`,
  :func:`run_health_checks`, :func:`install_packages`. They act on the
  system through the components and record what they saw.

Only catalogue ids ever reach a job; settings are re-checked when read.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.host.builders import apt
from portal.host.node import Host, current_host
from portal.jobqueue.errors import JobFailed, JobInputError
from portal.jobqueue.log import note
from portal.jobqueue.services import enqueue_job

from . import catalogue as catalogue_module
from . import components, dependencies
from .catalogue import CatalogueEntry
from .context import NodeNetwork, ServiceContext
from .health import check_health
from .models import ObservedState, ServiceState
from .supervisors import Supervisor, supervisor_for
from .values import (
    SettingRefused,
    clean_settings,
    effective_settings,
    ensure_secrets,
    quote,
)

# A service failing this many checks in a row is withdrawn from the
# announcements until a check passes again.
WITHDRAW_AFTER = 3
# A switched-on service whose daemon died is started again by the health
# check, once a round, for its first RESTART_ATTEMPTS failed rounds; after
# that it stays failing (and withdrawn) until the operator's "Start it
# again" or the next reconcile, so a daemon that dies at once every time
# does not restart forever.
RESTART_ATTEMPTS = 3


class UnknownService(ValueError):
    """An id that is not in the catalogue; nothing was done."""


def entry_for(service_id: Any) -> CatalogueEntry:
    """The catalogue entry of ``service_id`` or :class:`UnknownService`."""
    try:
        return catalogue_module.catalogue().get(service_id)
    except KeyError:
        raise UnknownService(
            _("%(value)s is not a service of the catalogue.")
            % {"value": repr(service_id)[:40]}
        ) from None


def state_for(service_id: str) -> ServiceState:
    entry_for(service_id)
    row, _created = ServiceState.objects.get_or_create(service_id=service_id)
    return row


def enabled_ids() -> set[str]:
    known = set(catalogue_module.catalogue().ids())
    return {
        row
        for row in ServiceState.objects.filter(enabled=True).values_list(
            "service_id", flat=True
        )
        if row in known
    }


# -- requests from the panel ----------------------------------------------------


@transaction.atomic
def request_activation(*, service_id: str, user: Any = None) -> Any:
    """Switch ``service_id`` and what it needs on; returns the queued Job."""
    entry_for(service_id)
    order = dependencies.activation_order(catalogue_module.catalogue(), service_id)
    for other in order:
        row = state_for(other)
        entry = entry_for(other)
        row.secrets, generated = ensure_secrets(entry, row.secrets)
        if generated and any(secret.show for secret in entry.secrets):
            row.secrets_unseen = True
        row.enabled = True
        if row.observed in (ObservedState.OFF, ObservedState.FAILING):
            row.observed = ObservedState.STARTING
        row.save()
    return enqueue_job(
        kind="services.activate", arguments={"service_id": service_id}, user=user
    )


@transaction.atomic
def request_deactivation(*, service_id: str, user: Any = None) -> Any:
    """Switch ``service_id`` off, and the switched-on services needing it."""
    entry_for(service_id)
    order = dependencies.deactivation_order(
        catalogue_module.catalogue(), service_id, enabled_ids()
    )
    for other in order:
        row = state_for(other)
        row.enabled = False
        if row.observed != ObservedState.OFF:
            row.observed = ObservedState.STOPPING
        row.save()
    return enqueue_job(
        kind="services.deactivate", arguments={"service_id": service_id}, user=user
    )


def check_quotable(entry: CatalogueEntry, values: dict[str, Any]) -> None:
    """Refuse values one of the entry's config formats cannot carry."""
    for config in entry.config_files:
        for key, value in values.items():
            try:
                quote(value, config.format)
            except SettingRefused as refused:
                label = str(entry.setting(key).label_title)
                raise SettingRefused(f"{label}: {refused.message}", key=key) from None


@transaction.atomic
def update_settings(
    *, service_id: str, values: dict[str, Any], user: Any = None
) -> ServiceState:
    """Store checked settings; a running service is re-applied by a job.

    A refused value raises :class:`SettingRefused` before anything is saved.
    """
    entry = entry_for(service_id)
    cleaned = clean_settings(entry, values)
    check_quotable(entry, {k: v for k, v in cleaned.items() if v is not None})
    row = state_for(service_id)
    row.settings = {k: v for k, v in cleaned.items() if v is not None}
    row.save()
    if row.enabled:
        enqueue_job(
            kind="services.activate",
            arguments={"service_id": service_id, "restart": True},
            user=user,
        )
    return row


@transaction.atomic
def mark_secrets_seen(*, service_id: str) -> None:
    row = state_for(service_id)
    row.secrets_unseen = False
    row.save(update_fields=["secrets_unseen", "updated_at"])


class NoUplink(JobInputError):
    """Packages were asked for while the node has no uplink; nothing queued."""


def request_package_install(*, service_id: str, user: Any = None) -> Any:
    """Queue the install job of a service's Debian packages.

    Only while the node has an uplink: without one apt-get cannot reach a
    mirror, so the operator gets the command to run from a local medium
    instead of a job that can only fail.
    """
    from .selectors import node_has_uplink

    entry = entry_for(service_id)
    if not node_has_uplink():
        raise NoUplink(
            _(
                "This node has no uplink, so it cannot download %(service)s's "
                "packages. Connect an uplink, or install them from a local "
                "medium with: %(hint)s"
            )
            % {
                "service": entry.title,
                "hint": components.install_hint(
                    components.missing_packages(entry) or list(entry.packages)
                ),
            }
        )
    return enqueue_job(
        kind="services.install_packages",
        arguments={"service_id": service_id},
        user=user,
    )


# -- the system side (job bodies) --------------------------------------------------


def node_network() -> NodeNetwork:
    """This node's addresses and interfaces from the mesh settings."""
    from meshnet.state import MeshState

    return NodeNetwork.from_mesh_state(MeshState.from_db())


def host_and_supervisor() -> tuple[Host, Supervisor]:
    host = current_host()
    return host, supervisor_for(host)


def build_context(
    entry: CatalogueEntry, row: ServiceState, host: Host
) -> ServiceContext:
    """The plain-data view of one service for the components."""
    try:
        settings_values = effective_settings(entry, row.settings or {})
    except SettingRefused as refused:
        raise JobFailed(refused.message) from None
    return ServiceContext(
        entry=entry,
        host=host,
        network=node_network(),
        settings={k: v for k, v in settings_values.items() if v is not None},
        secrets=dict(row.secrets or {}),
        on_uplink=row.on_uplink and entry.uplink_allowed,
    )


def _record(row: ServiceState, state: str, *, ok: bool | None, message: str) -> None:
    now = timezone.now()
    row.observed = state
    row.observed_at = now
    if ok is not None:
        row.last_health_at = now
        row.last_health_ok = ok
        row.last_health_message = message[:300]
        if ok:
            row.consecutive_failures = 0
            row.withdrawn = False
        else:
            row.consecutive_failures += 1
            if row.consecutive_failures >= WITHDRAW_AFTER:
                row.withdrawn = True
    row.save()
    components._invalidate_document()


def _switch_on_one(
    service_id: str, host: Host, supervisor: Supervisor, restart: bool
) -> None:
    entry = entry_for(service_id)
    row = state_for(service_id)
    row.secrets, _generated = ensure_secrets(entry, row.secrets)
    row.save(update_fields=["secrets", "updated_at"])
    context = build_context(entry, row, host)
    missing = components.missing_packages(entry)
    row.missing_packages = missing
    row.save(update_fields=["missing_packages", "updated_at"])
    try:
        if restart:
            components.DaemonComponent(supervisor).off(context)
        components.switch_on(context, supervisor)
    except components.ServiceProblem as problem:
        _record(row, problem.state, ok=False, message=problem.message)
        if problem.state == ObservedState.FAILING:
            components.AnnouncementComponent().off(context)
        raise JobFailed(
            _("%(service)s: %(message)s")
            % {"service": entry.title, "message": problem.message}
        ) from None
    if entry.client.address_file:
        row.client_address = components.read_client_address(
            context, wait=components.ADDRESS_WAIT_SECONDS
        )
    _record(row, ObservedState.RUNNING, ok=True, message=_("It answers."))


def activate_service(*, service_id: str, restart: bool = False) -> dict[str, Any]:
    """Switch a service on with its dependencies, each confirmed healthy."""
    entry_for(service_id)
    host, supervisor = host_and_supervisor()
    order = dependencies.activation_order(catalogue_module.catalogue(), service_id)
    for other in order:
        _switch_on_one(other, host, supervisor, restart and other == service_id)
    return {"switched_on": order}


def _switch_off_one(service_id: str, host: Host, supervisor: Supervisor) -> None:
    entry = entry_for(service_id)
    row = state_for(service_id)
    components.switch_off(build_context(entry, row, host), supervisor)
    _record(row, ObservedState.OFF, ok=None, message="")


def deactivate_service(*, service_id: str) -> dict[str, Any]:
    """Stop a service after the switched-on services that need it.

    The dependents were marked off (stopping) by the request; those are
    stopped first. A dependent that was never on is left alone.
    """
    entry_for(service_id)
    host, supervisor = host_and_supervisor()
    cat = catalogue_module.catalogue()
    running_or_marked = set()
    for other in dependencies.dependents(cat, service_id):
        row = state_for(other)
        if not row.enabled and row.observed != ObservedState.OFF:
            running_or_marked.add(other)
    order = dependencies.deactivation_order(cat, service_id, running_or_marked)
    for other in order:
        _switch_off_one(other, host, supervisor)
    return {"switched_off": order}


def reconcile_all() -> dict[str, Any]:
    """Bring every service to its stored state (at boot and on demand).

    Whether a service runs is read from the system; a service stored on
    that is not running (or not healthy) is switched on, one stored off
    that runs is switched off. One failing service does not stop the rest.
    """
    host, supervisor = host_and_supervisor()
    cat = catalogue_module.catalogue()
    enabled = enabled_ids()
    started: list[str] = []
    stopped: list[str] = []
    failed: dict[str, str] = {}
    for entry in cat:
        row = state_for(entry.id)
        context = build_context(entry, row, host)
        running = components.is_running(context, supervisor)
        if entry.id not in enabled and running:
            _switch_off_one(entry.id, host, supervisor)
            stopped.append(entry.id)
        elif entry.id not in enabled and row.observed != ObservedState.OFF:
            _record(row, ObservedState.OFF, ok=None, message="")
    for entry in cat:
        if entry.id not in enabled:
            continue
        for other in dependencies.activation_order(cat, entry.id):
            if other in started or other in failed:
                continue
            row = state_for(other)
            context = build_context(entry_for(other), row, host)
            if (
                components.is_running(context, supervisor)
                and check_health(context, supervisor).ok
            ):
                if row.observed != ObservedState.RUNNING:
                    _record(
                        row, ObservedState.RUNNING, ok=True, message=_("It answers.")
                    )
                continue
            try:
                _switch_on_one(other, host, supervisor, restart=False)
                started.append(other)
            except JobFailed as error:
                failed[other] = error.message
    return {"started": started, "stopped": stopped, "failed": failed}


def run_health_checks() -> dict[str, Any]:
    """Check every switched-on service once and record the result.

    A failing check marks the service failing; after :data:`WITHDRAW_AFTER`
    in a row it is withdrawn from the announcements, and the first passing
    check brings it back. A service whose daemon is gone is started again
    (see :data:`RESTART_ATTEMPTS`). Missing packages are re-read too.
    """
    host, supervisor = host_and_supervisor()
    results: dict[str, bool] = {}
    restarted: list[str] = []
    installed = components.installed_debian_packages()
    for service_id in sorted(enabled_ids()):
        entry = entry_for(service_id)
        row = state_for(service_id)
        row.missing_packages = components.missing_packages(entry, installed)
        context = build_context(entry, row, host)
        result = check_health(context, supervisor)
        was_withdrawn = row.withdrawn
        if result.ok:
            state = ObservedState.RUNNING
        elif row.missing_packages:
            state = ObservedState.MISSING
        else:
            state = ObservedState.FAILING
        _record(row, state, ok=result.ok, message=result.message)
        if (
            state == ObservedState.FAILING
            and row.consecutive_failures <= RESTART_ATTEMPTS
            and not components.is_running(context, supervisor)
            and _start_again(row, context, supervisor)
        ):
            restarted.append(service_id)
            result = check_health(context, supervisor)
            if result.ok:
                _record(row, ObservedState.RUNNING, ok=True, message=result.message)
        if row.withdrawn and not was_withdrawn:
            components.AnnouncementComponent().off(context)
        elif result.ok and was_withdrawn:
            components.AnnouncementComponent().on(context)
        results[service_id] = result.ok
    return {"checked": results, "restarted": restarted}


def _start_again(
    row: ServiceState, context: ServiceContext, supervisor: Supervisor
) -> bool:
    """Start a switched-on service whose daemon is gone; True once it runs.

    The failed check that found it is already counted; a failed start is
    not counted again (one round, one failure), only noted.
    """
    try:
        components.switch_on(context, supervisor)
    except components.ServiceProblem as problem:
        note(
            _("%(service)s did not start again: %(message)s")
            % {"service": context.entry.title, "message": problem.message}
        )
        return False
    note(
        _("%(service)s had stopped; started it again.")
        % {"service": context.entry.title}
    )
    return True


def install_packages(*, service_id: str) -> dict[str, Any]:
    """Install the service's missing Debian packages (needs the uplink)."""
    entry = entry_for(service_id)
    missing = [name for name in components.missing_packages(entry) if ":" not in name]
    if not missing:
        return {"installed": []}
    host = current_host()
    result = host.runner.run(apt.install(missing))
    if not result.ok:
        raise JobFailed(
            _(
                "apt-get could not install %(names)s (is the uplink connected?): "
                "%(output)s"
            )
            % {"names": ", ".join(missing), "output": result.stderr.strip()[-300:]}
        )
    row = state_for(service_id)
    row.missing_packages = components.missing_packages(entry)
    if row.observed == ObservedState.MISSING and not row.missing_packages:
        row.observed = ObservedState.OFF
    row.save()
    return {"installed": missing}
