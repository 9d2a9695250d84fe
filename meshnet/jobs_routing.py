"""RQ entry point of the routing part: ``meshnet.apply_mesh``.

The job re-reads the desired state from the models (never from its
arguments: a job queued before a later edit applies the newest state) and
applies it to :func:`~portal.host.node.current_host`. Every command and file
write lands in the job's log through the host layer; each change is also
noted in plain words. Other parts (rollback, addresses, interfaces) run it
through the registry with no arguments.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from portal.host.errors import InvalidValue
from portal.host.node import current_host
from portal.jobqueue.errors import JobFailed
from portal.jobqueue.log import note
from portal.jobqueue.registry import registered_job

from .apply import MeshApplyError, apply_mesh
from .state import MeshState

APPLY_MESH_KIND = "meshnet.apply_mesh"


def upstream_dns_servers() -> tuple[str, ...]:
    """Upstream resolvers for dnsmasq: none until the gateway app says so.

    The gateway app provides them (its uplink's resolvers) by replacing this
    hook's answer through ``settings.MESH_UPSTREAM_DNS_PROVIDER``, a dotted
    path to a function returning addresses; unset, the mesh has no upstream.
    """
    from django.conf import settings
    from django.utils.module_loading import import_string

    provider = getattr(settings, "MESH_UPSTREAM_DNS_PROVIDER", "")
    if not provider:
        return ()
    return tuple(import_string(provider)())


@registered_job(APPLY_MESH_KIND, title=_("Apply the mesh settings"))
def apply_mesh_settings_job() -> dict[str, Any]:
    """Apply the mesh settings in the database to this node."""
    state = MeshState.from_db()
    try:
        report = apply_mesh(
            current_host(), state, upstream_servers=upstream_dns_servers()
        )
    except (InvalidValue, MeshApplyError) as error:
        raise JobFailed(str(error)) from error
    if not report.steps:
        note(str(_("Nothing to change: the node already matches its settings.")))
    for step in report.steps:
        note(step)
    return report.to_dict()
