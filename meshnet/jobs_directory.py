"""RQ entry point of the mesh directory (see :mod:`meshnet.directory`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from portal.host.node import current_host
from portal.jobqueue.log import note
from portal.jobqueue.registry import registered_job

from .directory import SYNC_PERIOD_SECONDS, OwnNode, sync_directory
from .models import MeshSettings
from .node_document import this_node_document


@registered_job(
    "meshnet.sync_directory",
    every=SYNC_PERIOD_SECONDS,
    routine=True,
    title=_("Update the mesh directory"),
)
def sync_directory_job() -> dict[str, Any]:
    """Fetch every reachable node's document and rewrite the mesh names."""
    own = OwnNode(document=this_node_document(), domain=MeshSettings.load().mesh_domain)
    result = sync_directory(
        current_host(),
        own=own,
        babel_socket=settings.BABELD_SOCKET,
        period=SYNC_PERIOD_SECONDS,
        log=note,
    )
    return result.to_json()
