"""Writes for the node's own addresses: ask for a choice, check, store.

The web side (views) calls :func:`choose_addresses` and
:func:`set_addresses_manually`; both only enqueue a job, because the checks
need the system (babeld's socket, the routing table, ARP probes) and the web
process runs no commands. The worker side (:mod:`meshnet.jobs_addresses`)
calls :func:`choose_and_store_addresses` and :func:`check_and_store_addresses`
with the managed node's host; they run the checks of
:mod:`meshnet.addressing` and store the addresses in ``MeshSettings`` only
when they pass, so a clash explains itself and changes nothing.

Storing hands over to the parts that apply (:func:`store_and_apply`): a
first choice goes straight to the mesh apply job (``meshnet.apply_mesh``);
a change of a running node's addresses goes through apply with rollback
(``meshnet.change_services.propose_change``), so an operator cut off by it
gets the old addresses back at the deadline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.host.node import Host
from portal.jobqueue import registry
from portal.jobqueue.services import enqueue_job
from portal.models import Job

from . import addressing
from .addressing import AddressCandidate, AddressChoice, CandidateSource
from .models import AddressOrigin, MeshSettings, PendingChange
from .state import MeshState

logger = logging.getLogger(__name__)

CHOOSE_KIND = "meshnet.choose_addresses"
CHECK_KIND = "meshnet.check_addresses"
# The job kind that applies the stored MeshState to the system (routing
# part); enqueued after a choice is stored, when it is registered.
APPLY_KIND = "meshnet.apply_mesh"


# -- web side ---------------------------------------------------------------------


def _user_id(user: Any) -> int | None:
    """The operator's id, so the apply job that follows is theirs too."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return int(user.pk)


@transaction.atomic
def choose_addresses(*, user: Any) -> Job:
    """Ask the worker to pick free addresses for this node and store them."""
    return enqueue_job(
        kind=CHOOSE_KIND, arguments={"user_id": _user_id(user)}, user=user
    )


@transaction.atomic
def set_addresses_manually(*, mesh_address: str, client_subnet: str, user: Any) -> Job:
    """Check the operator's addresses in the worker, store them if free.

    Raises :class:`~meshnet.addressing.AddressInputError` (with the field at
    fault) before anything is queued when the input is not acceptable.
    """
    mesh, subnet = addressing.parse_manual_addresses(mesh_address, client_subnet)
    return enqueue_job(
        kind=CHECK_KIND,
        arguments={
            "mesh_address": str(mesh),
            "client_subnet": str(subnet),
            "user_id": _user_id(user),
        },
        user=user,
    )


# -- worker side ------------------------------------------------------------------


def current_addresses() -> AddressCandidate | None:
    """The addresses stored now, as a candidate (None when there are none)."""
    row = MeshSettings.load()
    return addressing.stored_candidate(row.mesh_address, row.client_subnet)


def _configured_links() -> list[str]:
    return [item.name for item in MeshState.from_db().mesh_interfaces]


def store_addresses(
    *, candidate: AddressCandidate, origin: str, addresses: bool = True
) -> MeshSettings:
    """Keep the addresses (survives restarts) with how and when they were checked.

    ``addresses=False`` records only the origin and the time, for addresses
    the change flow has already written.
    """
    fields = ["address_origin", "addresses_checked_at", "updated"]
    with transaction.atomic():
        row = MeshSettings.objects.select_for_update().get(pk=MeshSettings.load().pk)
        if addresses:
            row.mesh_address = str(candidate.mesh_address)
            row.client_subnet = str(candidate.client_subnet)
            fields += ["mesh_address", "client_subnet"]
        row.address_origin = origin
        row.addresses_checked_at = timezone.now()
        row.save(update_fields=fields)
    return row


@dataclass(frozen=True)
class Stored:
    """How checked addresses were kept and passed on to be applied."""

    change: PendingChange | None = None  # applied with rollback
    apply_job: Job | None = None  # applied directly (a first choice)
    unchanged: bool = False  # the node already had exactly these


def _user(user_id: int | None) -> Any:
    if not user_id:
        return None
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id).first()


def store_and_apply(
    *, candidate: AddressCandidate, origin: str, user_id: int | None = None
) -> Stored:
    """Store checked addresses and have them applied to the system.

    - A node without addresses yet cannot be cut off by getting some: they
      are stored and the mesh apply job (``meshnet.apply_mesh``) is queued.
    - A node that has addresses changes them through apply with rollback
      (:func:`meshnet.change_services.propose_change`, kind ``addresses``):
      the operator confirms from the new address, or the old addresses come
      back at the deadline.
    - The same addresses again change nothing; only the check time is kept.

    Raises :class:`~meshnet.changes.ChangeError` (message for the operator)
    when the change flow refuses, e.g. another change is still open; then
    nothing is stored.
    """
    from .change_services import propose_change

    current = current_addresses()
    user = _user(user_id)
    if current is not None and (
        current.mesh_address == candidate.mesh_address
        and current.client_subnet == candidate.client_subnet
    ):
        store_addresses(candidate=candidate, origin=origin, addresses=False)
        return Stored(unchanged=True)
    if current is None:
        store_addresses(candidate=candidate, origin=origin)
        registry.load()
        if not registry.is_registered(APPLY_KIND):
            logger.warning("no %s job registered; addresses stored only", APPLY_KIND)
            return Stored()
        return Stored(apply_job=enqueue_job(kind=APPLY_KIND, user=user))
    with transaction.atomic():
        change = propose_change(
            kind="addresses",
            proposed={
                "mesh_address": str(candidate.mesh_address),
                "client_subnet": str(candidate.client_subnet),
                # In the change, so a rollback restores how the old
                # addresses were chosen along with the addresses.
                "address_origin": origin,
            },
            user=user,
        )
        store_addresses(candidate=candidate, origin=origin, addresses=False)
    return Stored(change=change)


def choose_and_store_addresses(
    *,
    host: Host,
    babel_socket: Path | None,
    node_name: str,
    candidates: CandidateSource | None = None,
    user_id: int | None = None,
    max_attempts: int = addressing.DEFAULT_ATTEMPTS,
    probe_count: int = addressing.DEFAULT_PROBE_COUNT,
    probe_wait: int = addressing.DEFAULT_PROBE_WAIT,
) -> tuple[AddressChoice, Stored | None]:
    """Pick addresses on ``host``; store and apply the first free candidate.

    ``candidates`` defaults to the node's seeded candidates (same seed, same
    first candidate); tests pass their own. Nothing is stored when every
    candidate is taken (then the second value is None).
    """
    if candidates is None:
        seed = addressing.read_node_seed(host, fallback=node_name)
        candidates = addressing.seeded_candidates(seed)
    choice = addressing.choose_addresses(
        host,
        candidates=candidates,
        babel_socket=babel_socket,
        configured_links=_configured_links(),
        own=current_addresses(),
        max_attempts=max_attempts,
        probe_count=probe_count,
        probe_wait=probe_wait,
    )
    if choice.chosen is None:
        return choice, None
    stored = store_and_apply(
        candidate=choice.chosen, origin=AddressOrigin.AUTOMATIC, user_id=user_id
    )
    return choice, stored


def check_and_store_addresses(
    *,
    host: Host,
    babel_socket: Path | None,
    mesh_address: str,
    client_subnet: str,
    user_id: int | None = None,
    probe_count: int = addressing.DEFAULT_PROBE_COUNT,
    probe_wait: int = addressing.DEFAULT_PROBE_WAIT,
) -> tuple[AddressChoice, Stored | None]:
    """Check the operator's addresses on ``host``; store them only if free.

    The input is validated again here: the job's arguments are not trusted
    beyond what the same rules accept.
    """
    mesh, subnet = addressing.parse_manual_addresses(mesh_address, client_subnet)
    candidate = AddressCandidate(mesh_address=mesh, client_subnet=subnet)
    choice = addressing.check_addresses(
        host,
        candidate,
        babel_socket=babel_socket,
        configured_links=_configured_links(),
        own=current_addresses(),
        probe_count=probe_count,
        probe_wait=probe_wait,
    )
    if choice.chosen is None:
        return choice, None
    stored = store_and_apply(
        candidate=choice.chosen, origin=AddressOrigin.MANUAL, user_id=user_id
    )
    return choice, stored
