"""Reads of the job pipeline, for the job pages and the dashboard."""

from __future__ import annotations

from django.db.models import QuerySet

from portal.models import Job


def job_list(*, include_routine: bool = False) -> QuerySet[Job]:
    """Jobs newest first; routine (periodic, read-only) ones only if asked."""
    jobs = Job.objects.select_related("user").defer("log", "arguments")
    if not include_routine:
        jobs = jobs.filter(routine=False)
    return jobs.order_by("-created")


def recent_jobs(limit: int = 8, *, include_routine: bool = False) -> list[Job]:
    """The last ``limit`` jobs for the dashboard."""
    return list(job_list(include_routine=include_routine)[: max(0, limit)])


def get_job(pk: object) -> Job | None:
    """One job with its user, or None."""
    return Job.objects.select_related("user", "retry_of").filter(pk=pk).first()
