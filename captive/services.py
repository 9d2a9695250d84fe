"""Writes of the captive app: save the desired state, queue the job.

Views and other apps call these; each validates nothing itself (the forms
did), changes the rows in one transaction and queues the job that makes the
kernel follow, on commit. Jobs re-read everything by id.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.host import validate
from portal.models import Job

from .models import (
    CaptiveSettings,
    ClientSession,
    EndReason,
    MacRule,
    PortalInterface,
    SessionState,
)
from .queue import enqueue_captive_job
from .selectors import invalidate_pages


def portal_settings_update(
    *,
    session_timeout: int,
    idle_timeout: int,
    message: str,
    restore_after_restart: bool,
    interfaces: dict[str, bool],
    user: Any = None,
) -> Job:
    """Save the portal's settings and interfaces; apply them to the node."""
    with transaction.atomic():
        row = CaptiveSettings.load()
        row.session_timeout = session_timeout
        row.idle_timeout = idle_timeout
        row.message = message
        row.restore_after_restart = restore_after_restart
        row.full_clean()
        row.save()
        for name, enabled in interfaces.items():
            PortalInterface.objects.update_or_create(
                name=validate.interface_name(name), defaults={"enabled": enabled}
            )
        job = enqueue_captive_job(kind="captive.apply_portal", user=user)
        transaction.on_commit(invalidate_pages)
    invalidate_pages()
    return job


def uplink_state_set(*, online: bool) -> Job | None:
    """Switch between online and offline probe answers (the gateway calls
    this when its uplink comes or goes); queues a job only on a change."""
    with transaction.atomic():
        row = CaptiveSettings.load()
        if row.uplink_online == online:
            return None
        row.uplink_online = online
        row.save(update_fields=["uplink_online", "updated"])
        job = enqueue_captive_job(kind="captive.apply_portal")
        transaction.on_commit(invalidate_pages)
    return job


def client_tap(*, ip: str) -> tuple[ClientSession, Job | None]:
    """A held phone tapped Continue: record it and let it through.

    The web process knows only the phone's IP (nginx's X-Real-IP); the job
    reads its MAC from the kernel's neighbour table, the truth of who holds
    that address now. A second tap while the first is pending queues
    nothing new.
    """
    validate.ipv4_address(ip)
    settings_row = CaptiveSettings.load()
    with transaction.atomic():
        pending = ClientSession.objects.filter(
            ip=ip, state=SessionState.PENDING, expires_at__gt=timezone.now()
        ).first()
        if pending is not None:
            return pending, None
        session = ClientSession.objects.create(
            ip=ip,
            mac="",
            expires_at=ClientSession.ends_after(settings_row.session_timeout),
        )
        job = enqueue_captive_job(
            kind="captive.authorise_client", arguments={"session_id": session.pk}
        )
    return session, job


def client_kick(*, session_id: int, user: Any = None) -> Job:
    """Send one phone back to the welcome page (its live flows stop)."""
    with transaction.atomic():
        session = ClientSession.objects.select_for_update().get(pk=session_id)
        return enqueue_captive_job(
            kind="captive.deauthorise_client",
            arguments={"session_id": session.pk, "reason": EndReason.KICKED.value},
            user=user,
        )


def mac_rule_set(*, mac: str, kind: str, note: str = "", user: Any = None) -> Job:
    """Block a MAC or always let it through (replacing an opposite rule)."""
    mac = validate.mac_address(mac)
    with transaction.atomic():
        MacRule.objects.update_or_create(mac=mac, defaults={"kind": kind, "note": note})
        return enqueue_captive_job(kind="captive.update_mac_rules", user=user)


def mac_rule_remove(*, rule_id: int, user: Any = None) -> Job:
    with transaction.atomic():
        MacRule.objects.filter(pk=rule_id).delete()
        return enqueue_captive_job(kind="captive.update_mac_rules", user=user)
