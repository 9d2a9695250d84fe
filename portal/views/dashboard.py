"""The operator's dashboard: the node at a glance, from the last snapshot.

The page reads what the ``portal.sample_status`` job stored; it never asks
the system itself (the web process runs no commands). It says how old the
snapshot is, and why it may be stale or missing (no worker, no Redis).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.context_processors import QueueState, queue_state
from portal.models import NodeStatus
from portal.status import STALE_AFTER_SECONDS

SAMPLE_KIND = "portal.sample_status"
RECENT_JOBS = 8


def _interface_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Interfaces to show: loopback left out, addresses as ``addr/prefix``."""
    rows = []
    for iface in data.get("interfaces") or []:
        if iface.get("kind") == "loopback" or iface.get("name") == "lo":
            continue
        addresses = [
            f"{a.get('address')}/{a.get('prefixlen')}"
            for a in iface.get("addresses") or []
            if a.get("address")
        ]
        rows.append({**iface, "address_list": addresses})
    return rows


def _neighbour_rows(babel: dict[str, Any]) -> list[dict[str, Any]]:
    """babeld neighbours with ``heard``: how many of the last 16 hellos came."""
    rows = []
    for neighbour in babel.get("neighbours") or []:
        reach = neighbour.get("reach")
        heard = bin(reach & 0xFFFF).count("1") if isinstance(reach, int) else None
        rows.append({**neighbour, "heard": heard})
    return rows


def _snapshot_context(
    snapshot: NodeStatus | None, health: QueueState
) -> dict[str, Any]:
    if snapshot is None:
        return {"snapshot": None}
    data = snapshot.data or {}
    age = (timezone.now() - snapshot.collected_at).total_seconds()
    return {
        "snapshot": snapshot,
        "collected_at": snapshot.collected_at,
        "age_seconds": max(0.0, age),
        "stale": age > STALE_AFTER_SECONDS,
        "uptime_seconds": data.get("uptime_seconds"),
        "interfaces": _interface_rows(data),
        "interfaces_error": data.get("interfaces_error") or "",
        "babel": data.get("babel") or {},
        "neighbours": _neighbour_rows(data.get("babel") or {}),
        "host_mode": data.get("host_mode"),
    }


def _recent_jobs() -> list[Any]:
    from portal.jobqueue.selectors import recent_jobs

    return list(recent_jobs(RECENT_JOBS))


def _internet() -> dict[str, Any]:
    """How this node's mesh reaches the Internet (the gateway app's words)."""
    from gateway.selectors import internet_summary

    return internet_summary()


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Node name, uptime, interfaces, babel neighbours, queue, recent jobs."""
    health = queue_state()
    context: dict[str, Any] = {
        "health": health,
        "stale_after": STALE_AFTER_SECONDS,
        "recent_jobs": _recent_jobs(),
        "internet": _internet(),
    }
    context.update(_snapshot_context(NodeStatus.latest(), health))
    return render(request, "portal/dashboard.html", context)


@login_required
@require_POST
def refresh_status(request: HttpRequest) -> HttpResponse:
    """Ask the worker for a fresh snapshot now ("Refresh now")."""
    from portal.jobqueue.services import enqueue_job

    health = queue_state()
    try:
        enqueue_job(kind=SAMPLE_KIND, user=request.user)
    except Exception:  # noqa: BLE001 - the queue is down; the page says why
        messages.error(
            request,
            _("The refresh could not be queued: the job queue is not reachable."),
        )
        return redirect("portal:dashboard")
    if health.can_apply:
        messages.success(
            request,
            _(
                "Refresh requested. Reload this page in a few seconds to see "
                "new figures."
            ),
        )
    else:
        messages.warning(
            request,
            _(
                "Refresh requested, but no worker is running: the figures will "
                "update when the worker is back."
            ),
        )
    return redirect("portal:dashboard")
