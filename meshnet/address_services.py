"""Writes for the node's own addresses: ask for a choice, check, store.

The web side (views) calls :func:`choose_addresses` and
:func:`set_addresses_manually`; both only enqueue a job, because the checks
need the system (babeld's socket, the routing table, ARP probes) and the web
process runs no commands. The worker side (:mod:`meshnet.jobs_addresses`)
calls :func:`choose_and_store_addresses` and :func:`check_and_store_addresses`
with the managed node's host; they run the checks of
:mod:`meshnet.addressing` and store the addresses in ``MeshSettings`` only
when they pass, so a clash explains itself and changes nothing.

Storing is the end of this part's work: applying the addresses to the
system (loopback, client bridge, babeld, dnsmasq) is the mesh apply job's.
:func:`hand_over_for_apply` is the one place that passes the stored choice
on (see its docstring for how).
"""

from __future__ import annotations

import logging
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
from .models import AddressOrigin, MeshSettings
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


def store_addresses(*, candidate: AddressCandidate, origin: str) -> MeshSettings:
    """Keep the addresses (survives restarts) with how and when they were checked."""
    with transaction.atomic():
        row = MeshSettings.objects.select_for_update().get(pk=MeshSettings.load().pk)
        row.mesh_address = str(candidate.mesh_address)
        row.client_subnet = str(candidate.client_subnet)
        row.address_origin = origin
        row.addresses_checked_at = timezone.now()
        row.save(
            update_fields=[
                "mesh_address",
                "client_subnet",
                "address_origin",
                "addresses_checked_at",
                "updated",
            ]
        )
    return row


def hand_over_for_apply(*, previous: MeshState, user_id: int | None) -> Job | None:
    """Pass freshly stored addresses on to be applied to the system.

    Hook between this part (decide and store) and the parts that apply:
    the routing part's apply job (``meshnet.apply_mesh``) renders and applies
    the stored MeshState. A node that already had addresses should change
    them through the apply-with-rollback flow (``meshnet.change_services``),
    so an operator cut off by the change gets the old addresses back; until
    that flow offers an entry point for it, the apply job is enqueued
    directly. ``previous`` is the state before the change, kept for that
    flow. Returns the job enqueued, or None when no apply job is registered
    (the addresses are then applied the next time the mesh is applied).
    """
    registry.load()
    if not registry.is_registered(APPLY_KIND):
        logger.info("no %s job registered; addresses stored only", APPLY_KIND)
        return None
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return enqueue_job(kind=APPLY_KIND, arguments={}, user=user)


def choose_and_store_addresses(
    *,
    host: Host,
    babel_socket: Path | None,
    node_name: str,
    candidates: CandidateSource | None = None,
    max_attempts: int = addressing.DEFAULT_ATTEMPTS,
    probe_count: int = addressing.DEFAULT_PROBE_COUNT,
    probe_wait: int = addressing.DEFAULT_PROBE_WAIT,
) -> AddressChoice:
    """Pick addresses on ``host`` and store the first free candidate.

    ``candidates`` defaults to the node's seeded candidates (same seed, same
    first candidate); tests pass their own. Nothing is stored when every
    candidate is taken.
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
    if choice.chosen is not None:
        store_addresses(candidate=choice.chosen, origin=AddressOrigin.AUTOMATIC)
    return choice


def check_and_store_addresses(
    *,
    host: Host,
    babel_socket: Path | None,
    mesh_address: str,
    client_subnet: str,
    probe_count: int = addressing.DEFAULT_PROBE_COUNT,
    probe_wait: int = addressing.DEFAULT_PROBE_WAIT,
) -> AddressChoice:
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
    if choice.chosen is not None:
        store_addresses(candidate=choice.chosen, origin=AddressOrigin.MANUAL)
    return choice
