"""Running one job in the worker: claim the row, run, record the outcome.

This is what :class:`portal.jobqueue.rq.RegisteredJob` calls for every job
it accepts. The ``Job`` row is the source of truth: a job runs only when its
row exists, names the same kind, and is still ``pending``; it is claimed
with one conditional UPDATE, so a job delivered twice (the worker's sweep
re-queues a pending row whose first enqueue was merely slow) runs once.

Outcomes: the function returns -> *completed* with its JSON summary;
:class:`~portal.jobqueue.errors.JobFailed` -> *failed* with its message;
anything else (including RQ's timeout) -> *errored* with the exception and
the last lines of the traceback in the log.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import close_old_connections
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.host.log import recording_to
from portal.models import Job, JobStatus

from . import registry
from .errors import JobFailed, JobRefused
from .log import TEXT_CAP, JobLogSink, entry

logger = logging.getLogger(__name__)

TRACEBACK_LINES = 12


def run_job(*, job_id: str, kind: str) -> None:
    """Run the job whose row has id ``job_id``; refuse anything else."""
    close_old_connections()
    try:
        with translation.override(_operator_language()):
            _run(job_id, kind)
    finally:
        close_old_connections()


def _operator_language() -> str:
    """The language the operator chose in setup: job messages are stored as
    text, so they are written in the language the operator reads."""
    from portal.models import NodeSettings

    try:
        language = NodeSettings.peek().language
    except Exception:  # noqa: BLE001 - a job must not fail over its language
        language = ""
    known = {code for code, _name in settings.LANGUAGES}
    return language if language in known else settings.LANGUAGE_CODE


def _run(job_id: str, kind: str) -> None:
    registered = registry.get(kind)
    if registered is None:
        refuse(
            job_id,
            _("The job kind %(kind)s is not known to this node.") % {"kind": kind},
        )
        raise JobRefused(f"job kind {kind!r} is not registered")
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, kind=kind, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started=now
    )
    if not claimed:
        row = Job.objects.filter(pk=job_id).only("kind", "status").first()
        if row is None:
            raise JobRefused(f"no Job record {job_id}: nothing is run")
        if row.kind != kind:
            refuse(job_id, _("The queue asked for another kind of job than this one."))
            raise JobRefused(f"job {job_id} is a {row.kind!r}, not {kind!r}")
        logger.info("job %s is already %s; not run again", job_id, row.status)
        return

    job = Job.objects.get(pk=job_id)
    sink = JobLogSink(job.pk)
    sink.entries = list(job.log or [])
    status = JobStatus.COMPLETED
    error = ""
    result: Any = None
    try:
        with recording_to(sink):
            result = registered.func(**(job.arguments or {}))
        result = _json_summary(result)
    except JobFailed as failure:
        status = JobStatus.FAILED
        error = failure.message[:TEXT_CAP]
        sink.append(entry("error", text=error))
    except Exception as exc:  # noqa: BLE001 - every error ends the job
        status = JobStatus.ERRORED
        error = _("The job stopped on an unexpected error: %(error)s") % {
            "error": _summary(exc)
        }
        tail = traceback.format_exc().strip().splitlines()[-TRACEBACK_LINES:]
        sink.append(entry("error", text=error, exception="\n".join(tail)))
        logger.exception("job %s (%s) errored", job_id, kind)
    finally:
        sink.flush()
    Job.objects.filter(pk=job_id).update(
        status=status,
        finished=timezone.now(),
        result=result,
        error=error,
        log=list(sink.entries),
    )


def _summary(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:TEXT_CAP]


def _json_summary(value: Any) -> Any:
    """The job's return value if it is small JSON, else its text."""
    if value is None:
        return None
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError):
        return str(value)[:TEXT_CAP]
    if len(encoded) > TEXT_CAP:
        return encoded[:TEXT_CAP]
    return value


def refuse(job_id: str, message: str) -> None:
    """Mark the row of a refused job (if there is one) failed, run nothing."""
    try:
        row = Job.objects.filter(pk=job_id).first()
    except (ValueError, ValidationError):  # a malformed id: no row to mark
        logger.warning("refused job with unusable id %r", job_id)
        return
    if row is None or row.is_finished:
        return
    Job.objects.filter(pk=row.pk).update(
        status=JobStatus.FAILED,
        finished=timezone.now(),
        error=message,
        log=[*row.log, entry("error", text=message)],
    )


def interrupted_message() -> str:
    return _("The worker stopped in the middle of this job; Retry runs it again.")


def mark_interrupted(job_ids: list[Any]) -> int:
    """Mark rows left ``running`` by a dead worker as errored."""
    count = 0
    message = interrupted_message()
    for row in Job.objects.filter(pk__in=job_ids, status=JobStatus.RUNNING):
        count += Job.objects.filter(pk=row.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.ERRORED,
            finished=timezone.now(),
            error=message,
            log=[*row.log, entry("error", text=message)],
        )
    return count
