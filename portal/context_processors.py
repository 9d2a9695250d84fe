"""Template context every page gets: the node's name and the queue's health.

Both are lazy: the public pages (hit by every phone on the mesh) never ask
Redis anything unless the template shows the banner, which only operator
pages do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class QueueState:
    """What the banner needs to know about the job queue."""

    redis_ok: bool
    worker_count: int
    queued: int
    message: Any

    @property
    def can_apply(self) -> bool:
        """True when a change the operator saves will be applied now."""
        return self.redis_ok and self.worker_count > 0


def queue_state() -> QueueState:
    """The queue's health; never raises (a page must render with Redis down)."""
    try:
        from portal.jobqueue.health import queue_health

        health = queue_health()
        return QueueState(
            redis_ok=bool(health.redis_ok),
            worker_count=int(health.worker_count or 0),
            queued=int(health.queued or 0),
            # Kept lazy: translated when the page renders, in its language.
            message=health.message,
        )
    except Exception as error:  # noqa: BLE001 - any failure means "down"
        return QueueState(
            redis_ok=False,
            worker_count=0,
            queued=0,
            message=str(_("The job queue cannot be reached: %(error)s"))
            % {"error": error},
        )


def _configured_name() -> str:
    from portal.models import NodeSettings

    return NodeSettings.peek().node_name


def _node_name() -> str:
    return _configured_name() or str(_("Byzantium node"))


def node(request: HttpRequest) -> dict[str, Any]:
    return {
        "node_name": SimpleLazyObject(_node_name),
        # Whether the operator has named the node yet (before setup: no).
        "node_named": SimpleLazyObject(lambda: bool(_configured_name())),
        "queue_health": SimpleLazyObject(queue_state),
    }
