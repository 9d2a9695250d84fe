"""Writes of the gateway app: save the desired state, queue the job.

Views and other apps call these; forms validated the values. Each service
changes the row in one transaction and queues the job that makes the node
follow, on commit (``enqueue_job``). The uplink check's verdict is stored
by :func:`uplink_observed`, which also keeps the mesh's announcement and
the captive portal in step with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.jobqueue.services import enqueue_job
from portal.models import Job

from .health import UplinkHealth
from .models import GatewaySettings

APPLY_KIND = "gateway.apply"
CHECK_KIND = "gateway.check_uplink"
SCAN_KIND = "gateway.scan_uplinks"


def _sync_announcement(row: GatewaySettings) -> None:
    """meshnet's flag follows sharing and the verdict (the node document and
    babeld read it there)."""
    from meshnet.models import MeshSettings

    mesh = MeshSettings.load()
    wanted = bool(row.sharing and row.uplink_interface and row.uplink_online)
    if mesh.announce_default_route != wanted:
        mesh.announce_default_route = wanted
        mesh.save(update_fields=["announce_default_route", "updated"])


@transaction.atomic
def gateway_settings_update(
    *,
    uplink_interface: str,
    addressing: str,
    static_address: str,
    static_router: str | None,
    sharing: bool,
    dns_mode: str,
    dns_servers: list[str],
    check_targets: list[str],
    check_interval_seconds: int,
    fail_threshold: int,
    pass_threshold: int,
    tor_enabled: bool,
    onion_services: list[str],
    user: Any = None,
) -> Job:
    """Store the operator's gateway settings and queue ``gateway.apply``."""
    row = GatewaySettings.load()
    if row.uplink_interface != uplink_interface:
        # A new uplink has not passed a check yet.
        row.uplink_online = False
        row.health = UplinkHealth().to_dict()
        row.lease_dns_servers = []
    row.uplink_interface = uplink_interface
    row.addressing = addressing
    row.static_address = static_address if addressing == "static" else ""
    row.static_router = static_router if addressing == "static" else None
    row.sharing = sharing
    row.dns_mode = dns_mode
    row.dns_servers = list(dns_servers)
    row.check_targets = list(check_targets)
    row.check_interval_seconds = check_interval_seconds
    row.fail_threshold = fail_threshold
    row.pass_threshold = pass_threshold
    row.tor_enabled = tor_enabled
    row.onion_services = list(onion_services)
    row.save()
    _sync_announcement(row)
    return enqueue_job(kind=APPLY_KIND, user=user)


@transaction.atomic
def sharing_set(*, sharing: bool, user: Any = None) -> Job:
    """Turn sharing on or off alone (the dashboard's switch)."""
    row = GatewaySettings.load()
    row.sharing = sharing
    row.save(update_fields=["sharing", "updated"])
    _sync_announcement(row)
    return enqueue_job(kind=APPLY_KIND, user=user)


@transaction.atomic
def apply_request(*, user: Any = None) -> Job:
    """Queue ``gateway.apply`` alone (the node's state moved, not the settings)."""
    return enqueue_job(kind=APPLY_KIND, user=user)


def tor_progress_store(*, percent: int | None) -> None:
    """Keep how far tor has bootstrapped for the pages (the check reads it)."""
    GatewaySettings.objects.filter(pk=GatewaySettings.load().pk).exclude(
        tor_progress=percent
    ).update(tor_progress=percent, updated=timezone.now())


@transaction.atomic
def start_request() -> Job | None:
    """At the node's start: set the uplink up again (its DHCP lease, the NAT
    table, Tor), since none of it survives a reboot or a new lab, and the
    uplink check cannot pass on an interface without an address. Nothing
    when no uplink is chosen."""
    if not GatewaySettings.load().uplink_interface:
        return None
    return enqueue_job(kind=APPLY_KIND)


@transaction.atomic
def uplink_scan_request(*, user: Any = None) -> Job:
    """Queue a fresh scan of the interfaces that could be an uplink."""
    return enqueue_job(kind=SCAN_KIND, user=user)


@transaction.atomic
def candidates_store(*, candidates: list[dict[str, Any]]) -> None:
    """Keep the last scan's candidates for the pages."""
    row = GatewaySettings.load()
    row.candidates = candidates
    row.scanned_at = timezone.now()
    row.save(update_fields=["candidates", "scanned_at", "updated"])


@transaction.atomic
def uplink_observed(
    *,
    health: UplinkHealth,
    changed: bool,
    lease_dns_servers: list[str],
    now: datetime | None = None,
) -> bool:
    """Store one check's outcome; on a change of verdict, move the mesh's
    announcement, tell the captive portal and queue ``gateway.apply``.

    Returns True when the verdict changed.
    """
    row = GatewaySettings.load()
    now = now or timezone.now()
    row.health = health.to_dict()
    row.checked_at = now
    dns_changed = list(lease_dns_servers) != list(row.lease_dns_servers or [])
    row.lease_dns_servers = list(lease_dns_servers)
    if changed:
        row.uplink_online = health.online
        row.changed_at = now
    row.save()
    if changed:
        _sync_announcement(row)
        from captive.services import uplink_state_set

        uplink_state_set(online=health.online)
    if changed or (dns_changed and row.sharing):
        enqueue_job(kind=APPLY_KIND)
    return changed
