"""RQ entry points for the node's own addresses (thin: they call a service).

- ``meshnet.choose_addresses``: pick a free mesh address and client subnet
  (seeded candidates, checked against babeld's table, the kernel's routes
  and ARP probes on the mesh links) and store them.
- ``meshnet.check_addresses``: the same checks for addresses the operator
  typed; stored only when they pass, otherwise the job fails with the clash
  in plain words.

Every candidate's verdict goes to the job log as a plain line, so the job
page tells which check failed for which addresses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.host.node import current_host
from portal.jobqueue.errors import JobFailed
from portal.jobqueue.log import note
from portal.jobqueue.registry import registered_job

from . import address_services
from .addressing import AddressCheckError, AddressChoice, AddressInputError
from .changes import ChangeError
from .state import MeshState


def _babel_socket() -> Path | None:
    value = getattr(settings, "BABELD_SOCKET", None)
    return Path(value) if value else None


def _report(choice: AddressChoice) -> dict[str, Any]:
    for line in choice.explain():
        note(line)
    summary: dict[str, Any] = {"attempts": len(choice.checks)}
    if choice.chosen is not None:
        summary["mesh_address"] = str(choice.chosen.mesh_address)
        summary["client_subnet"] = str(choice.chosen.client_subnet)
    return summary


def _explain_stored(stored: address_services.Stored | None) -> None:
    """Tell in the log how the addresses go on to be applied."""
    if stored is None:
        return
    if stored.unchanged:
        note(_("These are the addresses the node already has; nothing changes."))
    elif stored.change is not None:
        note(
            _(
                "The addresses are stored as a change that must be confirmed: "
                "open %(url)s within the deadline, or the old addresses come back."
            )
            % {"url": stored.change.get_absolute_url()}
        )
    elif stored.apply_job is not None:
        note(
            _("The addresses are stored; applying them (job %(job)s).")
            % {"job": stored.apply_job.pk}
        )
    else:
        note(
            _(
                "The addresses are stored; they take effect the next time the "
                "mesh settings are applied."
            )
        )


def _summary(
    choice: AddressChoice, stored: address_services.Stored | None
) -> dict[str, Any]:
    summary = _report(choice)
    if stored is not None and stored.change is not None:
        summary["change"] = stored.change.pk
    return summary


@registered_job(
    address_services.CHOOSE_KIND,
    title=gettext_lazy("Choose the mesh address and client subnet"),
)
def choose_addresses(*, user_id: int | None = None) -> dict[str, Any]:
    """Pick free addresses for this node and store them."""
    try:
        choice, stored = address_services.choose_and_store_addresses(
            host=current_host(),
            babel_socket=_babel_socket(),
            node_name=MeshState.from_db().node_name,
            user_id=user_id,
        )
    except AddressCheckError as error:
        raise JobFailed(str(error)) from None
    except ChangeError as error:
        raise JobFailed(str(error.message)) from None
    summary = _summary(choice, stored)
    if choice.chosen is None:
        raise JobFailed(choice.explain()[-1])
    _explain_stored(stored)
    return summary


@registered_job(
    address_services.CHECK_KIND,
    title=gettext_lazy("Check and set the mesh address and client subnet"),
)
def check_addresses(
    *, mesh_address: str, client_subnet: str, user_id: int | None = None
) -> dict[str, Any]:
    """Check the operator's addresses; store them only when nothing clashes."""
    try:
        choice, stored = address_services.check_and_store_addresses(
            host=current_host(),
            babel_socket=_babel_socket(),
            mesh_address=mesh_address,
            client_subnet=client_subnet,
            user_id=user_id,
        )
    except AddressInputError as error:
        raise JobFailed(error.message) from None
    except AddressCheckError as error:
        raise JobFailed(str(error)) from None
    except ChangeError as error:
        raise JobFailed(str(error.message)) from None
    summary = _summary(choice, stored)
    if choice.chosen is None:
        clashes = choice.checks[-1].clashes
        raise JobFailed(
            _("These addresses are taken; nothing was changed. %(reasons)s")
            % {"reasons": " ".join(clash.explain() for clash in clashes)}
        )
    _explain_stored(stored)
    return summary
