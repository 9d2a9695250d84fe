"""Services (writes) of the routing part: ask the worker to apply the mesh.

Views and other parts call these; the system is only ever changed by the
job on the privileged queue, never by the web process.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from portal.jobqueue.services import enqueue_job
from portal.models import Job

from .jobs_routing import APPLY_MESH_KIND


@transaction.atomic
def apply_mesh_settings(*, user: Any = None) -> Job:
    """Queue ``meshnet.apply_mesh`` (sent to the worker on commit)."""
    return enqueue_job(kind=APPLY_MESH_KIND, user=user)
