"""Apply with rollback: changes that could cut the operator off.

Public API (the addresses, interfaces and routing parts route their changes
through it)::

    from meshnet.change_services import ChangeError, propose_change

    try:
        change = propose_change(
            kind="addresses",                 # or "interfaces", "routing", ...
            proposed={"mesh_address": "10.9.8.7", "client_subnet": "10.9.8.0/24"},
            user=request.user,
        )
    except ChangeError as error:
        form.add_error(None, error.message)   # nothing was changed
    else:
        return redirect(change)               # the pending change page

``proposed`` is a whole :class:`~meshnet.state.MeshState` or a dict of the
fields that change (``interfaces`` in a dict is the whole new list of
:class:`~meshnet.state.InterfaceState` or dicts). ``deadline_seconds``
defaults to the operator's ``MeshSettings.rollback_seconds`` (90 s).

What happens:

1. :func:`propose_change` (one transaction) snapshots the current state
   (``MeshState.from_db().to_dict()``) into ``PendingChange.previous``,
   writes the proposal to the models (checked by the models' own field
   validation: a bad value raises :class:`ChangeError` and changes
   nothing), stores it in ``PendingChange.proposed`` and queues the job
   ``meshnet.apply_change``. Only one change is open at a time.
2. The job applies the models to the node (the routing part's apply) and
   starts the confirmation window: ``deadline = applied + window``. If the
   apply fails, the change is rolled back at once.
3. :func:`confirm_change` with the token, from any address and without a
   session (the operator may only reach the node on its new address, where
   the old session cookie is not sent), confirms it while the deadline has
   not passed. The token is compared in constant time, works once, and
   wrong tokens are throttled per client address.
4. Otherwise the periodic job ``meshnet.expire_changes`` (every few
   seconds, see below) restores, in the models, every field the change
   touched to its ``previous`` value and applies that to the node.

Why a periodic job and not RQ's scheduler: the privileged queue's job
class refuses anything but a registry kind with its arguments in the
``Job`` row, and a job scheduled in Redis is lost with Redis (the worker's
sweep would then push it early). The deadline is stored in the database
instead; the worker enqueues ``meshnet.expire_changes`` on its tick (every
5 s; periodic kinds survive worker restarts, see
:mod:`portal.jobqueue.rq`), and the job rolls back every open change whose
deadline has passed. So a rollback happens within about five seconds of
the deadline, and a worker that was down rolls back as soon as it is back.

The deadline decides every race: a change is confirmed only while
``deadline > now`` and rolled back only once ``deadline <= now``, each with
one conditional UPDATE, so a confirmation and a rollback can never both
win.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.host import validate
from portal.host.errors import InvalidValue
from portal.jobqueue.services import enqueue_job

from .changes import (
    ChangeError,
    changed_fields,
    check_kind,
    merge_proposal,
    revert_state,
)
from .models import (
    ROLLBACK_MAX_SECONDS,
    ChangeState,
    ConfirmAttempt,
    MeshInterface,
    MeshSettings,
    PendingChange,
)
from .state import MeshState

__all__ = [
    "ChangeError",
    "ConfirmRefused",
    "confirm_change",
    "open_change",
    "propose_change",
    "roll_back_now",
    "update_rollback_seconds",
]

logger = logging.getLogger(__name__)

APPLY_KIND = "meshnet.apply_change"
EXPIRE_KIND = "meshnet.expire_changes"
OPEN_STATES = (ChangeState.APPLYING, ChangeState.WAITING)
# Wrong tokens allowed per client address in the window before refusing.
CONFIRM_ATTEMPT_LIMIT = 10
CONFIRM_ATTEMPT_WINDOW = timedelta(minutes=15)
TOKEN_MAX_LENGTH = 64
SCALAR_FIELDS = (
    "protocol",
    "mesh_address",
    "client_subnet",
    "mesh_domain",
    "babel_hmac_key",
    "dhcp_lease_seconds",
    "announce_default_route",
    "address_origin",
)


class ConfirmRefused(ChangeError):
    """A confirmation that did not confirm anything; ``reason`` says why.

    Reasons: ``unknown`` (no such change, or a wrong token), ``throttled``,
    ``applying`` (not live yet), ``confirmed`` (the token was used),
    ``expired`` (the deadline passed), ``rolled-back``, ``failed``.
    """

    def __init__(self, reason: str, message: Any) -> None:
        super().__init__(message)
        self.reason = reason


def open_change() -> PendingChange | None:
    """The change being applied or waiting for confirmation, if any."""
    return PendingChange.objects.filter(state__in=OPEN_STATES).first()


def _window(deadline_seconds: Any) -> int:
    if deadline_seconds is None:
        return MeshSettings.load().rollback_seconds
    if (
        isinstance(deadline_seconds, bool)
        or not isinstance(deadline_seconds, int)
        or not 1 <= deadline_seconds <= ROLLBACK_MAX_SECONDS
    ):
        raise ChangeError(
            _("The time to confirm must be 1 to %(max)d seconds.")
            % {"max": ROLLBACK_MAX_SECONDS}
        )
    return deadline_seconds


def _messages(error: ValidationError) -> str:
    return " ".join(str(message) for message in error.messages)


def _refuse_control_characters(state: MeshState) -> None:
    """Refuse newlines and other control characters in any text value.

    The models' fields would quietly strip some of them (an address with a
    trailing newline); a proposal carrying them is refused instead, so what
    was asked is what is applied or nothing is.
    """
    values: list[Any] = [getattr(state, name) for name in SCALAR_FIELDS]
    for interface in state.interfaces:
        values.extend(vars(interface).values())
    for value in values:
        if isinstance(value, str) and any(
            ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value
        ):
            raise ChangeError(
                _("A value contains a line break or another control character.")
            )


def write_state(state: MeshState, names: list[str]) -> None:
    """Store the fields ``names`` of ``state`` in the models, checked.

    Raises :class:`ChangeError` when a value does not pass the models' own
    validation; the caller's transaction then leaves everything as it was.
    """
    _refuse_control_characters(state)
    settings_row = MeshSettings.load()
    scalar = [name for name in names if name in SCALAR_FIELDS]
    for name in scalar:
        setattr(settings_row, name, getattr(state, name))
    if scalar:
        try:
            settings_row.full_clean()
        except ValidationError as error:
            raise ChangeError(_messages(error)) from error
        settings_row.save(update_fields=[*scalar, "updated"])
    if "interfaces" not in names:
        return
    seen: set[str] = set()
    rows = []
    for interface in state.interfaces:
        try:
            validate.interface_name(interface.name)
        except InvalidValue as error:
            raise ChangeError(str(error)) from error
        if interface.name in seen:
            raise ChangeError(
                _("The interface %(name)s is listed twice.") % {"name": interface.name}
            )
        seen.add(interface.name)
        row = MeshInterface.objects.filter(name=interface.name).first() or (
            MeshInterface(name=interface.name)
        )
        for field in (
            "role",
            "medium",
            "essid",
            "channel",
            "bssid",
            "mesh_id",
            "passphrase",
            "enabled",
        ):
            setattr(row, field, getattr(interface, field))
        try:
            row.full_clean(validate_unique=False)
        except ValidationError as error:
            raise ChangeError(
                _("Interface %(name)s: %(problem)s")
                % {"name": interface.name, "problem": _messages(error)}
            ) from error
        rows.append(row)
    MeshInterface.objects.exclude(name__in=seen).delete()
    for row in rows:
        row.save()


def propose_change(
    *,
    kind: str,
    proposed: MeshState | Mapping[str, Any],
    user: Any = None,
    deadline_seconds: int | None = None,
) -> PendingChange:
    """Store a change, queue its apply, and return the pending change.

    See the module docstring. Raises :class:`ChangeError` (with a message
    for the operator) and changes nothing when the proposal is not valid,
    changes nothing, or another change is still open.
    """
    check_kind(kind)
    window = _window(deadline_seconds)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    with transaction.atomic():
        if open_change() is not None:
            raise ChangeError(
                _(
                    "Another network change is still waiting for confirmation. "
                    "Confirm it or let it roll back first."
                )
            )
        current = MeshState.from_db()
        try:
            target = merge_proposal(current, proposed)
        except (TypeError, ValueError) as error:
            if isinstance(error, ChangeError):
                raise
            raise ChangeError(_("The change is not a valid mesh state.")) from error
        previous = current.to_dict()
        wanted = target.to_dict()
        names = changed_fields(previous, wanted)
        if not names:
            raise ChangeError(_("The change changes nothing."))
        write_state(target, names)
        # What the models now hold (normalised by the fields, e.g. an
        # address written as the model stores it).
        stored = MeshState.from_db().to_dict()
        change = PendingChange.objects.create(
            kind=kind,
            previous=previous,
            proposed=stored,
            deadline=PendingChange.deadline_after(window),
            window_seconds=window,
            user=user,
            state=ChangeState.APPLYING,
        )
        enqueue_job(kind=APPLY_KIND, arguments={"change_id": change.pk}, user=user)
    return change


def _throttled(address: str) -> bool:
    cutoff = timezone.now() - CONFIRM_ATTEMPT_WINDOW
    ConfirmAttempt.objects.filter(created__lt=cutoff).delete()
    recent = ConfirmAttempt.objects.filter(address=address[:64], created__gte=cutoff)
    return recent.count() >= CONFIRM_ATTEMPT_LIMIT


def _wrong(address: str) -> ConfirmRefused:
    ConfirmAttempt.objects.create(address=address[:64])
    return ConfirmRefused(
        "unknown",
        _(
            "This confirmation link is not valid. Check that you copied all of "
            "it; an unconfirmed change rolls back by itself."
        ),
    )


def _token_shape_ok(token: Any) -> bool:
    return (
        isinstance(token, str)
        and 0 < len(token) <= TOKEN_MAX_LENGTH
        and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in token)
    )


def find_change(*, change_id: Any, token: Any, address: str) -> PendingChange:
    """The change ``change_id`` if ``token`` is its token; else refused.

    The token is compared in constant time; a wrong one counts toward the
    client's limit.
    """
    if _throttled(address):
        raise ConfirmRefused(
            "throttled",
            _("Too many wrong confirmation links from your address. Wait a while."),
        )
    change = None
    if isinstance(change_id, int) and 0 < change_id < 2**63:
        change = PendingChange.objects.filter(pk=change_id).first()
    expected = change.token if change is not None else secrets.token_urlsafe(24)
    given = token if _token_shape_ok(token) else ""
    if not secrets.compare_digest(expected.encode(), given.encode()) or change is None:
        raise _wrong(address)
    return change


def refusal_for(change: PendingChange) -> ConfirmRefused:
    """Why ``change`` cannot be confirmed now (it is not waiting, or late)."""
    when = timezone.localtime(change.resolved or change.deadline)
    if change.state == ChangeState.CONFIRMED:
        return ConfirmRefused(
            "confirmed",
            _("This change was already confirmed at %(time)s; nothing more to do.")
            % {"time": when.strftime("%H:%M:%S")},
        )
    if change.state == ChangeState.ROLLED_BACK:
        return ConfirmRefused(
            "rolled-back",
            _(
                "Too late: the change was rolled back at %(time)s and the "
                "previous settings are back."
            )
            % {"time": when.strftime("%H:%M:%S")},
        )
    if change.state == ChangeState.FAILED:
        return ConfirmRefused(
            "failed",
            _("This change failed and was undone: %(reason)s")
            % {"reason": change.message},
        )
    if change.state == ChangeState.APPLYING:
        return ConfirmRefused(
            "applying",
            _("The change is still being applied. Try again in a few seconds."),
        )
    return ConfirmRefused(
        "expired",
        _(
            "Too late: the time to confirm ran out at %(time)s. The previous "
            "settings are being restored."
        )
        % {"time": when.strftime("%H:%M:%S")},
    )


def confirm_change(*, token: Any, change_id: Any, address: str = "") -> PendingChange:
    """Confirm the change ``change_id`` with its token; no session needed.

    Raises :class:`ConfirmRefused` with a clear message (and changes
    nothing) for a wrong token, too many wrong tokens, a change not yet
    live, already confirmed, or past its deadline.
    """
    # Outside the transaction: a wrong token's attempt must stay counted.
    change = find_change(change_id=change_id, token=token, address=address)
    with transaction.atomic():
        now = timezone.now()
        confirmed = PendingChange.objects.filter(
            pk=change.pk, state=ChangeState.WAITING, deadline__gt=now
        ).update(
            state=ChangeState.CONFIRMED,
            resolved=now,
            message=_("Confirmed by the operator."),
        )
        change.refresh_from_db()
    if not confirmed:
        raise refusal_for(change)
    return change


def roll_back_now(*, change_id: Any, token: Any, address: str = "") -> PendingChange:
    """Ask for the rollback of a waiting change at once (with its token).

    The deadline is moved to now; the expiry job (queued here too) restores
    the previous state within seconds.
    """
    change = find_change(change_id=change_id, token=token, address=address)
    with transaction.atomic():
        now = timezone.now()
        moved = PendingChange.objects.filter(
            pk=change.pk, state__in=OPEN_STATES, deadline__gt=now
        ).update(deadline=now, message=_("Rolled back by the operator."))
        change.refresh_from_db()
        if moved:
            enqueue_job(kind=EXPIRE_KIND)
    if not moved:
        raise refusal_for(change)
    return change


def update_rollback_seconds(*, seconds: int) -> MeshSettings:
    """Set the default time to confirm (checked by the field's limits)."""
    with transaction.atomic():
        row = MeshSettings.load()
        row.rollback_seconds = seconds
        try:
            row.full_clean()
        except ValidationError as error:
            raise ChangeError(_messages(error)) from error
        row.save(update_fields=["rollback_seconds", "updated"])
    return row


# -- the worker's side (called by meshnet.jobs_changes) ---------------------


@dataclass(frozen=True)
class Restored:
    """What a rollback put back: the change and the state now in the models."""

    change: PendingChange
    state: MeshState


def start_window(*, change_id: int) -> PendingChange | None:
    """The change is live: its deadline becomes now + its window.

    Returns None when the change is no longer being applied (rolled back
    meanwhile, e.g. after the worker was down past the first deadline).
    """
    now = timezone.now()
    change = PendingChange.objects.filter(pk=change_id).first()
    if change is None:
        return None
    started = PendingChange.objects.filter(
        pk=change_id, state=ChangeState.APPLYING
    ).update(
        state=ChangeState.WAITING,
        applied=now,
        deadline=now + timedelta(seconds=change.window_seconds),
    )
    if not started:
        return None
    change.refresh_from_db()
    return change


def expire_now(*, change_id: int, reason: str) -> None:
    """Move the deadline of an open change to now (its apply failed)."""
    PendingChange.objects.filter(pk=change_id, state__in=OPEN_STATES).update(
        deadline=timezone.now(), message=reason
    )


def restore_previous(*, change_id: int) -> Restored | None:
    """Put back, in the models, what an expired change touched.

    Only a change that is still open and past its deadline is restored (so
    never one the operator confirmed in time). The change stays open until
    :func:`finish_rollback` records it, so a worker that dies between the
    two restores and applies again on its next run.
    """
    with transaction.atomic():
        change = (
            PendingChange.objects.select_for_update()
            .filter(pk=change_id, state__in=OPEN_STATES, deadline__lte=timezone.now())
            .first()
        )
        if change is None:
            return None
        previous, proposed = change.previous, change.proposed
        target = revert_state(MeshState.from_db(), previous, proposed)
        write_state(target, changed_fields(previous, proposed))
    return Restored(change=change, state=MeshState.from_db())


def finish_rollback(*, change_id: int, failed: bool, problem: str = "") -> None:
    """Record that the previous state is back (and why it came back)."""
    change = PendingChange.objects.filter(pk=change_id).first()
    if change is None:
        return
    if failed:
        state = ChangeState.FAILED
    else:
        state = ChangeState.ROLLED_BACK
    reason = change.message or _("It was not confirmed in time.")
    if problem:
        reason = _(
            "%(reason)s Restoring the previous settings had a problem: %(problem)s"
        ) % {"reason": reason, "problem": problem}
    PendingChange.objects.filter(pk=change_id, state__in=OPEN_STATES).update(
        state=state, resolved=timezone.now(), message=reason
    )


def expired_change_ids() -> list[int]:
    """Open changes whose deadline has passed, oldest first."""
    return list(
        PendingChange.objects.filter(
            state__in=OPEN_STATES, deadline__lte=timezone.now()
        )
        .order_by("created")
        .values_list("pk", flat=True)
    )
