"""Is the job queue working? A short answer for every page.

The base template shows :func:`queue_health`'s message when changes cannot
be applied, so an operator is never left wondering why nothing happens. The
answer is cached for a couple of seconds per process, and Redis is asked
with a one-second timeout, so a page never waits long on a dead queue.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from redis.exceptions import RedisError
from rq.queue import Queue
from rq.worker_registration import get_keys

from .queue import privileged_queue, web_connection
from .rq import worker_process_gone

CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class QueueHealth:
    """What the operator needs to know about the privileged queue."""

    redis_ok: bool
    worker_count: int
    queued: int
    # A lazy string: the answer is cached and shared by every request, so it
    # is translated when a page shows it, in that page's language.
    message: str | Promise

    @property
    def can_apply(self) -> bool:
        """True when a change the operator saves is applied now."""
        return self.redis_ok and self.worker_count > 0

    ok = can_apply


_cache_lock = threading.Lock()
_cached: tuple[float, QueueHealth] | None = None


def queue_health(*, use_cache: bool = True) -> QueueHealth:
    """The state of Redis and the worker, at most ``CACHE_SECONDS`` old."""
    global _cached
    now = time.monotonic()
    with _cache_lock:
        if use_cache and _cached is not None and now - _cached[0] < CACHE_SECONDS:
            return _cached[1]
    health = _measure()
    with _cache_lock:
        _cached = (time.monotonic(), health)
    return health


def clear_cache() -> None:
    """Forget the cached answer (tests, or right after starting a worker)."""
    global _cached
    with _cache_lock:
        _cached = None


def _measure() -> QueueHealth:
    connection = web_connection()
    try:
        connection.ping()
        queue = privileged_queue(connection)
        queued = queue.count
        worker_count = _live_workers(queue)
    except RedisError:
        return QueueHealth(
            redis_ok=False,
            worker_count=0,
            queued=0,
            message=_(
                "Changes cannot be applied right now: the job queue (Redis) "
                "is not reachable. They are saved and will be applied when "
                "it is back."
            ),
        )
    if worker_count == 0:
        message = _(
            "Changes cannot be applied right now: the job worker is not "
            "running. They are saved and will be applied when it is back."
        )
    elif queued:
        message = _waiting_message(queued)
    else:
        message = _("The job worker is running.")
    return QueueHealth(
        redis_ok=True, worker_count=worker_count, queued=queued, message=message
    )


def _waiting_text(count: int) -> str:
    return ngettext(
        "The job worker is running; %(count)d job waiting.",
        "The job worker is running; %(count)d jobs waiting.",
        count,
    ) % {"count": count}


_waiting_message = lazy(_waiting_text, str)


def _live_workers(queue: Queue) -> int:
    """Workers registered on the queue whose key is alive and not dead.

    A worker killed with SIGKILL stays in RQ's registry set, and its key
    lives until its heartbeat TTL runs out; on this machine its missing
    process gives it away at once.
    """
    keys = list(get_keys(queue=queue))
    if not keys:
        return 0
    with queue.connection.pipeline() as pipeline:
        for key in keys:
            pipeline.exists(key)
            pipeline.hexists(key, "death")
        answers = pipeline.execute()
    return sum(
        1
        for key, exists, dead in zip(keys, answers[::2], answers[1::2], strict=True)
        if exists and not dead and not worker_process_gone(queue.connection, key)
    )
