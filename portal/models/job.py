"""The record of one privileged job: what was asked, by whom, and what happened.

Follows NetBox's ``core.models.Job``: a row exists before the job is queued,
and its UUID is the RQ job id, so the page of a job can be shown the moment
the operator is redirected to it, whether or not Redis or the worker is up.
The row, not Redis, is the source of truth: Redis only carries the id, and a
job whose row says ``pending`` is (re-)queued by the worker until it runs.

The log is a JSON list of structured entries, each a dict with a ``type``:

- ``command``: ``argv``, ``namespace``, ``returncode``, ``stdout``,
  ``stderr``, ``duration``, ``timed_out``, ``truncated`` (from the host layer);
- ``write`` / ``remove``: ``path`` and, for writes, ``bytes`` and ``sha256``;
- ``note``: ``text``, a plain line from the job itself;
- ``error``: ``text`` (and ``exception`` for unexpected errors).

Every entry also has ``at``, an ISO timestamp.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    """Where a job is in its life; the last three are final."""

    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    ERRORED = "errored", _("Errored")

    @classmethod
    def finished(cls) -> tuple[str, ...]:
        """Statuses after which nothing more happens to a job."""
        return (cls.COMPLETED, cls.FAILED, cls.ERRORED)

    @classmethod
    def retryable(cls) -> tuple[str, ...]:
        """Statuses for which the operator may ask to run the job again."""
        return (cls.FAILED, cls.ERRORED)


class Job(models.Model):
    """One run of a registered job function on the privileged worker.

    ``kind`` names the function in the job registry
    (:mod:`portal.jobqueue.registry`); ``arguments`` are the keyword
    arguments it gets, JSON primitives only (ids, not objects), because the
    job re-reads the desired state from the database itself.
    """

    id = models.UUIDField(
        primary_key=True,
        default=uuid.uuid4,
        editable=False,
        help_text=_("Also the id of the job in the queue."),
    )
    kind = models.CharField(
        _("kind"),
        max_length=100,
        help_text=_("Which registered job this is, e.g. meshnet.apply_mesh."),
    )
    arguments = models.JSONField(_("arguments"), default=dict, blank=True)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=JobStatus.choices,
        default=JobStatus.PENDING,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("started by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)
    started = models.DateTimeField(_("started"), null=True, blank=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    log = models.JSONField(_("log"), default=list, blank=True)
    result = models.JSONField(_("result"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    routine = models.BooleanField(
        _("routine"),
        default=False,
        help_text=_(
            "Periodic read-only work (samples, expiry); hidden from the job "
            "list by default and pruned after an hour."
        ),
    )
    retry_of = models.ForeignKey(
        "self",
        verbose_name=_("retry of"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
    )

    class Meta:
        ordering = ["-created"]
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        indexes = [
            # The job list (newest first, routine ones hidden) and the
            # dashboard's recent jobs.
            models.Index(fields=["routine", "-created"], name="job_routine_created"),
            # The worker's start-up sweep (running/pending rows) and pruning.
            models.Index(fields=["status", "created"], name="job_status_created"),
            models.Index(fields=["finished"], name="job_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("jobs:detail", kwargs={"pk": self.pk})

    @property
    def kind_title(self) -> str:
        """What the job does in the operator's words (its registered title)."""
        from portal.jobqueue import registry

        return str(registry.title_of(self.kind))

    @property
    def is_finished(self) -> bool:
        """True once nothing more will happen to this job."""
        return self.status in JobStatus.finished()

    @property
    def can_retry(self) -> bool:
        """True when Retry makes sense: the job failed or errored."""
        return self.status in JobStatus.retryable()

    @property
    def duration_seconds(self) -> float | None:
        """:attr:`duration` in seconds, for templates."""
        duration = self.duration
        return None if duration is None else duration.total_seconds()

    @property
    def duration(self) -> timedelta | None:
        """How long the job ran, or has been running so far."""
        if self.started is None:
            return None
        if self.finished is not None:
            return self.finished - self.started
        from django.utils import timezone

        return timezone.now() - self.started
