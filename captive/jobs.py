"""RQ entry points of the captive app (thin: re-read by id, call control).

Every kind here is queued on the captive lane too (:mod:`captive.queue`), so
a tap is not stuck behind a long mesh apply on the privileged worker.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from portal.host.node import current_host
from portal.jobqueue.registry import registered_job

from . import control

SYNC_SECONDS = 10


@registered_job("captive.apply_portal", title=_("Apply the captive portal"))
def apply_portal() -> dict[str, Any]:
    return control.apply_portal(current_host())


@registered_job("captive.authorise_client", title=_("Let a phone through"))
def authorise_client(*, session_id: int) -> dict[str, Any]:
    return control.authorise_client(current_host(), int(session_id))


@registered_job("captive.deauthorise_client", title=_("Send a phone back"))
def deauthorise_client(*, session_id: int, reason: str = "kicked") -> dict[str, Any]:
    return control.deauthorise_client(current_host(), int(session_id), str(reason))


@registered_job("captive.update_mac_rules", title=_("Apply blocked and allowed MACs"))
def update_mac_rules() -> dict[str, Any]:
    return control.update_mac_rules(current_host())


@registered_job(
    "captive.sync_clients",
    every=SYNC_SECONDS,
    routine=True,
    title=_("Read the connected phones"),
)
def sync_clients() -> dict[str, Any]:
    return control.sync_clients(current_host())
