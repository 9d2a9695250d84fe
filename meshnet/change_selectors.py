"""Reads of "apply with rollback": what a change page shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from portal.models import NodeStatus

from .changes import (
    FieldChange,
    JoinResult,
    describe_changes,
    https_url,
    join_result,
    kind_label,
    reach_addresses,
)
from .models import ChangeState, PendingChange

# After a change went live, the result page reloads itself this long while
# it waits for babeld to hear a neighbour.
JOIN_WATCH_SECONDS = 300


def recent_changes(limit: int = 20) -> QuerySet[PendingChange]:
    return PendingChange.objects.select_related("user").order_by("-created")[:limit]


def confirm_path(change: PendingChange) -> str:
    return reverse("meshnet:change_confirm", args=[change.pk, change.token])


@dataclass(frozen=True)
class ChangeView:
    """Everything the change page shows about one change."""

    change: PendingChange
    kind: str
    lines: list[FieldChange]
    seconds_left: int
    confirm_urls: list[str]
    join: JoinResult
    refresh_seconds: int | None

    @property
    def is_open(self) -> bool:
        return self.change.state in (ChangeState.APPLYING, ChangeState.WAITING)


def change_view(change: PendingChange) -> ChangeView:
    now = timezone.now()
    seconds_left = max(0, int((change.deadline - now).total_seconds()))
    path = confirm_path(change)
    port = settings.PORTAL.https_port
    urls = [
        https_url(address, port, path)
        for address in reach_addresses(change.previous, change.proposed)
    ]
    snapshot = NodeStatus.latest()
    join = join_result(
        snapshot.data if snapshot else None,
        snapshot.collected_at if snapshot else None,
        change.applied,
    )
    refresh: int | None = None
    if change.state in (ChangeState.APPLYING, ChangeState.WAITING):
        refresh = 5 if seconds_left > 10 or change.state == "applying" else 2
    elif (
        change.state == ChangeState.CONFIRMED
        and not join.joined
        and change.applied is not None
        and (now - change.applied).total_seconds() < JOIN_WATCH_SECONDS
    ):
        refresh = 10
    return ChangeView(
        change=change,
        kind=kind_label(change.kind),
        lines=describe_changes(change.previous, change.proposed),
        seconds_left=seconds_left,
        confirm_urls=urls,
        join=join,
        refresh_seconds=refresh,
    )


def has_mesh_interfaces(state: dict[str, Any]) -> bool:
    return any(
        item.get("role") == "mesh" and item.get("enabled", True)
        for item in state.get("interfaces") or ()
    )
