"""The captive lane: a thread of the one worker process that runs taps.

Why a thread and not a second worker: DESIGN's budget is 150 MB for web,
worker and Redis together, and a second RQ worker process costs ~45 MB
(a whole Python with Django loaded). Why not the worker's main loop: the
one privileged worker may be busy for a minute with a mesh apply, and a
phone's tap must open its access within 200 ms (DESIGN, "Speed where it
matters").

So :class:`portal.jobqueue.rq.PortalWorker` starts :func:`start_lane` once
it has recovered interrupted rows. The lane blocks on the ``captive``
queue's Redis list with ``BLPOP`` (it wakes the moment an id arrives: no
polling) and runs each job through
:func:`portal.jobqueue.execution.run_job`, exactly like the main loop:

- the same refusals as :class:`~portal.jobqueue.rq.RegisteredJob` (a kind
  from the registry only, no arguments, instances, callbacks or webhooks in
  Redis, a UUID id), and in addition only ``captive.*`` kinds: a mesh apply
  pushed onto this list is refused, so host changes still run one at a time
  on the main loop;
- the row is claimed with one conditional UPDATE, so the copy of the same
  job on the privileged queue (:func:`captive.queue.enqueue_captive_job`
  queues both) finds it claimed and does nothing; if the lane is down the
  privileged copy still runs the job, only later;
- its own database connection is closed after each job (Django keeps one
  connection per thread; a connection left open would hold SQLite's file
  and grow stale).

Two threads may run captive jobs at the same time (a tap on the lane while
the main loop rebuilds the table), so every job holds
:func:`captive.queue.firewall_lock` (``flock`` on an open file: a lock per
open file description, so it serialises threads as well as processes).

There is no RQ timeout on the lane (``SIGALRM`` reaches the main thread
only); every command the host layer runs has its own timeout instead.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import connections
from redis.exceptions import RedisError
from rq.serializers import JSONSerializer

from .queue import QUEUE_NAME

logger = logging.getLogger(__name__)

# Seconds BLPOP waits before the lane looks at its stop flag again.
WAIT_SECONDS = 5
# Seconds to wait after a Redis error before trying again.
RETRY_SECONDS = 2
KIND_PREFIX = "captive."


def queue_key() -> str:
    """The Redis list RQ keeps the captive queue's job ids in."""
    from rq.queue import Queue

    return f"{Queue.redis_queue_namespace_prefix}{QUEUE_NAME}"


def lane_refusal(job: Any) -> str | None:
    """Why the lane must not run ``job``, or None when it may."""
    refusal = job._refusal()
    if refusal is not None:
        return refusal
    if not str(job.func_name).startswith(KIND_PREFIX):
        return f"{job.func_name!r} is not a captive job"
    return None


def run_one(connection: Any, job_id: str) -> str:
    """Fetch, check and run one job of the lane; returns what happened."""
    from portal.jobqueue.execution import run_job
    from portal.jobqueue.rq import RegisteredJob, _mark_refused

    try:
        job = RegisteredJob.fetch(
            job_id, connection=connection, serializer=JSONSerializer
        )
    except RedisError:
        raise
    except Exception as error:  # noqa: BLE001 - gone or unreadable hash
        logger.info("captive lane: job %s not readable: %s", job_id, error)
        return "missing"
    try:
        refusal = lane_refusal(job)
        if refusal is not None:
            logger.error("captive lane refused job %s: %s", job_id, refusal)
            _mark_refused(job_id, refusal)
            return "refused"
        run_job(job_id=str(job.id), kind=str(job.func_name))
        return "ran"
    except Exception:  # noqa: BLE001 - the lane must outlive any one job
        logger.exception("captive lane: job %s failed", job_id)
        return "errored"
    finally:
        connections.close_all()


class CaptiveLane(threading.Thread):
    """The daemon thread that runs captive jobs beside the main loop."""

    def __init__(self, connection: Any) -> None:
        super().__init__(name="captive-lane", daemon=True)
        self.connection = connection
        self.stopping = threading.Event()
        self.handled = 0

    def stop(self) -> None:
        """Ask the lane to end after the job it runs (if any)."""
        self.stopping.set()

    def run(self) -> None:
        key = queue_key()
        logger.info("captive lane listening on %s", key)
        while not self.stopping.is_set():
            try:
                popped = self.connection.blpop([key], timeout=WAIT_SECONDS)
            except RedisError as error:
                logger.warning("captive lane: Redis: %s", error)
                self.stopping.wait(RETRY_SECONDS)
                continue
            if popped is None:
                continue
            raw = popped[1]
            job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                run_one(self.connection, job_id)
            except RedisError as error:
                logger.warning("captive lane: Redis: %s", error)
            self.handled += 1


def start_lane(connection: Any) -> CaptiveLane:
    """Start the lane on a Redis client of its own (BLPOP holds a socket).

    The client is made from the worker's connection settings, with no read
    timeout shorter than the blocking wait.
    """
    from redis import Redis

    kwargs = dict(connection.connection_pool.connection_kwargs)
    timeout = kwargs.get("socket_timeout")
    if timeout is not None and timeout <= WAIT_SECONDS:
        kwargs["socket_timeout"] = WAIT_SECONDS + 10
    own = Redis(
        connection_pool=connection.connection_pool.__class__(
            connection_class=connection.connection_pool.connection_class, **kwargs
        )
    )
    lane = CaptiveLane(own)
    lane.start()
    return lane
