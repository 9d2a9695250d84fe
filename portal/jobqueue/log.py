"""The job log: structured entries appended to ``Job.log`` while a job runs.

:class:`JobLogSink` is installed with :func:`portal.host.log.recording_to`
for the length of a job, so every command and file write the host layer
makes lands in the log without the job doing anything. :func:`note` adds a
plain line. Entries are written to the database as they come (at most a few
times a second), each in its own short transaction, so the job page shows
progress live and SQLite's write lock is never held for long.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.utils import timezone

from portal.host import log as host_log

logger = logging.getLogger(__name__)

# Longest text kept for one note or error entry.
TEXT_CAP = 8 * 1024


def entry(kind: str, **fields: Any) -> dict[str, Any]:
    """A log entry of ``kind`` stamped with the current time."""
    return {"type": kind, "at": timezone.now().isoformat(), **fields}


def note(text: str) -> None:
    """Append a plain line to the current job's log (and the worker log)."""
    text = str(text)[:TEXT_CAP]
    logger.info("%s", text)
    host_log.emit({"type": "note", "text": text})


class JobLogSink:
    """Collects entries for one job and saves them to its row.

    Writes are throttled to one every ``interval`` seconds; :meth:`flush`
    writes whatever is left and is called when the job ends.
    """

    def __init__(self, job_id: Any, *, interval: float = 0.25) -> None:
        self.job_id = job_id
        self.entries: list[dict[str, Any]] = []
        self.interval = interval
        self._last_write = 0.0
        self._dirty = False

    def __call__(self, record: dict[str, Any]) -> None:
        record = dict(record)
        record.setdefault("at", timezone.now().isoformat())
        self.entries.append(record)
        self._dirty = True
        if time.monotonic() - self._last_write >= self.interval:
            self.flush()

    def append(self, record: dict[str, Any]) -> None:
        """Add an entry the job machinery itself writes (errors, refusals)."""
        self(record)

    def flush(self) -> None:
        """Save the entries collected so far (one short UPDATE)."""
        if not self._dirty:
            return
        from portal.models import Job

        Job.objects.filter(pk=self.job_id).update(log=list(self.entries))
        self._dirty = False
        self._last_write = time.monotonic()
