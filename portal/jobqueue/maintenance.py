"""The portal's own periodic jobs."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .registry import registered_job
from .services import prune_jobs


@registered_job(
    "portal.prune_jobs", every=3600, routine=True, title=_("Delete old jobs")
)
def prune_old_jobs() -> dict[str, int]:
    """Delete finished jobs past their retention (see ``prune_jobs``)."""
    return {"deleted": prune_jobs()}
