"""The portal app's registered jobs (thin entry points, see portal.status)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from portal.host.node import current_host
from portal.jobqueue.registry import registered_job
from portal.models import NodeStatus
from portal.status import collect_status


@registered_job(
    "portal.sample_status", every=15, routine=True, title=_("Read the node's status")
)
def sample_status() -> dict[str, Any]:
    """Collect the dashboard's snapshot of the system and store it."""
    data = collect_status(current_host(), babel_socket=settings.BABELD_SOCKET)
    NodeStatus.store(data)
    babel = data["babel"]
    return {
        "interfaces": len(data["interfaces"]),
        "neighbours": len(babel.get("neighbours") or []),
        "babel": "ok" if babel.get("available") else babel.get("error", ""),
    }
