"""Job pages: the list, one job with its live log, and Retry.

The detail page refreshes itself (``<meta http-equiv="refresh">``) only
while the job is unfinished, so it works with JavaScript off; the progress
fragment is the same status-and-log block alone, for htmx or a script.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from portal.models import Job

from . import registry, selectors
from .errors import JobInputError, JobNotRetryable
from .health import queue_health
from .services import retry_job

PAGE_SIZE = 25
# Seconds between refreshes of an unfinished job's page.
REFRESH_SECONDS = 2


def _get_job_or_404(pk: Any) -> Job:
    job = selectors.get_job(pk)
    if job is None:
        raise Http404(_("There is no such job; it may have been deleted."))
    return job


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    """Jobs newest first, routine ones hidden unless ``?routine=1``."""
    registry.load()
    include_routine = request.GET.get("routine") == "1"
    paginator = Paginator(
        selectors.job_list(include_routine=include_routine), PAGE_SIZE
    )
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "portal/jobs/list.html",
        {"page": page, "include_routine": include_routine},
    )


def _detail_context(job: Job) -> dict[str, Any]:
    return {
        "job": job,
        "refresh_seconds": REFRESH_SECONDS if not job.is_finished else None,
        "log_entries": job.log if isinstance(job.log, list) else [],
    }


@login_required
@require_GET
def job_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """One job: what was asked, its status and every log entry."""
    registry.load()
    job = _get_job_or_404(pk)
    context = _detail_context(job)
    if job.status == "pending":
        context["health"] = queue_health()
    return render(request, "portal/jobs/detail.html", context)


@login_required
@require_GET
def job_progress(request: HttpRequest, pk: Any) -> HttpResponse:
    """The status-and-log block of one job alone (for live updates)."""
    registry.load()
    job = _get_job_or_404(pk)
    response = render(request, "portal/jobs/htmx/progress.html", _detail_context(job))
    if job.is_finished:
        # htmx stops polling on 286; a plain script can read the header.
        response["X-Job-Finished"] = "1"
    return response


@login_required
@require_POST
def job_retry(request: HttpRequest, pk: Any) -> HttpResponse:
    """Run a failed or errored job again and show the new job."""
    job = _get_job_or_404(pk)
    try:
        new_job = retry_job(job=job, user=request.user)
    except (JobNotRetryable, JobInputError) as error:
        messages.error(request, str(error))
        return redirect(job.get_absolute_url())
    messages.success(request, _("The job was queued again."))
    return redirect(new_job.get_absolute_url())
