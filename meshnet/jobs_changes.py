"""Jobs of "apply with rollback" (see :mod:`meshnet.change_services`).

- ``meshnet.apply_change``: applies the models (which already hold the
  proposal) to the node, then starts the confirmation window; if the apply
  fails, the previous state is restored and applied at once.
- ``meshnet.expire_changes``: periodic (the worker's tick, every 5 s);
  rolls back every open change whose deadline has passed. The deadline is
  stored in the database, so a worker restart only delays the rollback
  until the worker is back.

Both apply through the routing part's job ``meshnet.apply_mesh``, called in
this job (same log, same worker, no second queue round trip): it applies
``MeshState.from_db()`` to ``current_host()`` (see :func:`apply_to_node`).
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.jobqueue import registry
from portal.jobqueue.errors import JobFailed
from portal.jobqueue.log import note
from portal.jobqueue.registry import registered_job

from . import change_services as services
from .models import ChangeState, PendingChange

logger = logging.getLogger(__name__)

APPLY_MESH_KIND = "meshnet.apply_mesh"
# Seconds between runs of the expiry job. The worker enqueues periodic kinds
# on its tick (portal.jobqueue.rq.TICK, 5 s); anything below that runs on
# every tick.
EXPIRE_EVERY = 3


def apply_to_node() -> Any:
    """Apply the state in the models to this node.

    Through the routing part's job ``meshnet.apply_mesh`` when it is
    registered (it knows what else goes into an apply: upstream DNS, the
    captive portal's option), else its plain function
    :func:`meshnet.apply.apply_mesh` on ``current_host()``.
    """
    registry.load()
    entry = registry.get(APPLY_MESH_KIND)
    if entry is not None:
        return entry.func()
    from portal.host.node import current_host

    from .apply import apply_mesh
    from .state import MeshState

    return apply_mesh(current_host(), MeshState.from_db()).to_dict()


def _error_text(error: BaseException) -> str:
    if isinstance(error, JobFailed):
        return error.message
    text = str(error)
    return text if text else type(error).__name__


def roll_back(change_id: int, *, failed: bool) -> bool:
    """Restore and apply the previous state of an expired change.

    Returns False when there was nothing to roll back (confirmed in time,
    or already rolled back).
    """
    restored = services.restore_previous(change_id=change_id)
    if restored is None:
        return False
    note(_("Restoring the settings from before change %(id)d.") % {"id": change_id})
    problem = ""
    try:
        apply_to_node()
    except Exception as error:  # noqa: BLE001 - recorded on the change
        logger.exception("applying the previous state of change %s", change_id)
        problem = _error_text(error)
    services.finish_rollback(change_id=change_id, failed=failed, problem=problem)
    return True


@registered_job(
    "meshnet.apply_change",
    title=gettext_lazy("Apply a network change (undone unless confirmed)"),
)
def apply_change(*, change_id: int) -> dict[str, Any]:
    """Apply the change's state; start its confirmation window."""
    change = PendingChange.objects.filter(pk=change_id).first()
    if change is None:
        raise JobFailed(_("There is no change %(id)s.") % {"id": change_id})
    if change.state != ChangeState.APPLYING:
        note(
            _("Change %(id)d is %(state)s; nothing to apply.")
            % {"id": change_id, "state": change.get_state_display()}
        )
        return {"change": change_id, "state": change.state}
    try:
        apply_to_node()
    except Exception as error:  # noqa: BLE001 - any failure goes back at once
        reason = _("Applying it failed: %(error)s") % {"error": _error_text(error)}
        services.expire_now(change_id=change_id, reason=reason)
        roll_back(change_id, failed=True)
        raise JobFailed(
            _("%(reason)s The previous settings were restored.") % {"reason": reason}
        ) from error
    started = services.start_window(change_id=change_id)
    if started is None:
        return {"change": change_id, "state": "gone"}
    note(
        _("Applied. Waiting for confirmation until %(time)s.")
        % {"time": timezone.localtime(started.deadline).strftime("%H:%M:%S")}
    )
    return {
        "change": change_id,
        "state": started.state,
        "deadline": started.deadline.isoformat(),
    }


@registered_job(
    "meshnet.expire_changes",
    every=EXPIRE_EVERY,
    routine=True,
    title=gettext_lazy("Undo network changes that were not confirmed"),
)
def expire_changes() -> dict[str, Any]:
    """Roll back every open change whose deadline has passed."""
    rolled = [
        change_id
        for change_id in services.expired_change_ids()
        if roll_back(change_id, failed=False)
    ]
    return {"rolled_back": rolled}
