"""Writes of the job pipeline: queue a job, retry one, prune old ones.

Views and other apps' services call :func:`enqueue_job`; it creates the
``Job`` row first and pushes the job to Redis only when the surrounding
transaction commits (``transaction.on_commit``), so a rolled-back change
never runs a job, and a job never runs before the state it reads is saved.
"""

from __future__ import annotations

import functools
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from redis import Redis

from portal.models import Job, JobStatus

from . import registry
from .errors import JobInputError, JobNotRetryable
from .queue import push

# Routine (periodic, read-only) jobs are kept this long.
ROUTINE_RETENTION = timedelta(hours=1)
MAX_ARGUMENTS = 32
MAX_TEXT = 1000

Primitive = str | int | float | bool | None


def _check_primitive(name: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise JobInputError(
            _("The argument %(name)s is not a finite number.") % {"name": name}
        )
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise JobInputError(_("The argument %(name)s is too long.") % {"name": name})
    if value is None or isinstance(value, str | int | float | bool):
        return
    raise JobInputError(
        _("The argument %(name)s must be text, a number, true/false or empty.")
        % {"name": name}
    )


def validate_arguments(arguments: dict[str, Any] | None) -> dict[str, Any]:
    """Check that job arguments are JSON primitives (or lists of them).

    Jobs re-read the desired state from the database by id; anything richer
    than ids and plain values does not belong in a job's arguments.
    """
    if arguments is None:
        return {}
    if not isinstance(arguments, dict):
        raise JobInputError(_("Job arguments must be named values."))
    if len(arguments) > MAX_ARGUMENTS:
        raise JobInputError(
            _("A job takes at most %(count)d arguments.") % {"count": MAX_ARGUMENTS}
        )
    for name, value in arguments.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise JobInputError(
                _("%(name)r is not a valid argument name.") % {"name": name}
            )
        if isinstance(value, list):
            if len(value) > MAX_ARGUMENTS * 32:
                raise JobInputError(
                    _("The argument %(name)s is too long.") % {"name": name}
                )
            for item in value:
                _check_primitive(name, item)
        else:
            _check_primitive(name, value)
    return dict(arguments)


def enqueue_job(
    *,
    kind: str,
    arguments: dict[str, Any] | None = None,
    user: Any = None,
    retry_of: Job | None = None,
    connection: Redis | None = None,
) -> Job:
    """Record a job of a registered ``kind`` and queue it on commit.

    Returns the new ``pending`` row at once. If Redis is down the row stays
    pending and the worker queues it when it can (nothing is lost).
    ``connection`` is for the worker, which queues periodic jobs itself.
    """
    registry.load()
    entry = registry.get(kind)
    if entry is None:
        raise JobInputError(_("There is no job called %(kind)s.") % {"kind": kind})
    clean = validate_arguments(arguments)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            arguments=clean,
            user=user,
            routine=entry.routine,
            retry_of=retry_of,
        )
        transaction.on_commit(
            functools.partial(push, str(job.pk), kind, connection=connection),
            robust=True,
        )
    return job


def retry_job(*, job: Job, user: Any = None) -> Job:
    """Run a failed or errored job again: a new row with the same request."""
    if not job.can_retry:
        raise JobNotRetryable(
            _("Only a failed or errored job can be retried; this one is %(status)s.")
            % {"status": job.get_status_display()}
        )
    if not registry.is_registered(job.kind):
        registry.load()
        if not registry.is_registered(job.kind):
            raise JobNotRetryable(
                _("This node no longer knows the job %(kind)s.") % {"kind": job.kind}
            )
    return enqueue_job(kind=job.kind, arguments=job.arguments, user=user, retry_of=job)


def prune_jobs(*, now: Any = None) -> int:
    """Delete finished jobs past their retention; returns how many.

    Ordinary jobs are kept ``JOB_RETENTION_DAYS`` days, routine ones an
    hour. Pending and running jobs are never pruned.
    """
    now = now or timezone.now()
    keep_days = timedelta(days=settings.JOB_RETENTION_DAYS)
    finished = Job.objects.filter(status__in=JobStatus.finished())
    old = finished.filter(created__lt=now - keep_days)
    old_routine = finished.filter(routine=True, created__lt=now - ROUTINE_RETENTION)
    deleted, _by_model = (old | old_routine).delete()
    return deleted
