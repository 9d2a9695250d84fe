"""RQ classes of the privileged queue: registry-only jobs, one simple worker.

:class:`RegisteredJob` replaces RQ's habit of importing whatever dotted path
a job in Redis names. Its ``func`` is looked up in the job registry only and
always runs through :func:`portal.jobqueue.execution.run_job`, which runs a
job only when a pending ``Job`` row with that id and kind exists. A job in
Redis that names anything else (``os.system``, ``builtins.exec``, a method of
an instance, positional or keyword arguments, RQ callbacks, webhooks, an id
that is not a UUID) is refused before any of it is touched, and its row, if
any, is marked failed. Whoever can write to Redis can therefore at most
re-trigger a job the portal itself queued.

:class:`PortalWorker` is RQ's ``SimpleWorker`` (the job runs in the worker
process, no fork per job: short latency and one process's memory) that:

- always speaks JSON: django-rq's ``rqworker`` command passes RQ's pickle
  serializer unless ``--serializer`` is given, and a pickle payload is code
  execution for whoever writes it, so the worker and its queues are forced
  to :class:`rq.serializers.JSONSerializer` whatever it is handed;
- at start-up marks rows left ``running`` by a dead worker as errored, and
  pushes ``pending`` rows that are not in Redis (queued while Redis was
  down), then does the same sweep every :data:`SWEEP_INTERVAL` seconds;
- enqueues periodic kinds (``@registered_job(..., every=N)``).

Timeouts still work without a fork: RQ's ``UnixSignalDeathPenalty`` arms
``SIGALRM`` around ``job.perform()`` in this (main) thread and raises
``JobTimeoutException`` inside the job, which ends it as errored; every
command the host layer runs also has its own timeout, and ``subprocess.run``
kills its child when the exception passes through it.

Periodic jobs: RQ 3's cron (``rq cron``/``rqcron``) is a separate process
that ``rqworker --with-scheduler`` does not start, and self-rescheduling with
``enqueue_in`` duplicates schedules after restarts. Instead the worker checks
between jobs (its blocking dequeue wakes every :data:`TICK` seconds) whether
a periodic kind is due. Due-ness is a Redis key per kind set with
``SET NX EX every``: it survives worker restarts, so a restart does not run
everything again, and a second worker (there should be none) cannot enqueue
the same run twice. A kind whose previous run is still pending or running is
skipped, so a worker busy with a long job does not come back to a pile of
samples. ``--with-scheduler`` stays harmless: the scheduler only moves jobs
RQ itself scheduled, and it uses this worker's JSON serializer.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import close_old_connections
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import Job as RQJob
from rq.job import JobStatus as RQJobStatus
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from . import registry
from .errors import JobRefused

logger = logging.getLogger(__name__)

# How often (seconds) the worker wakes from waiting for a job to look for
# due periodic kinds and for pending rows that never reached Redis.
TICK = 5
SWEEP_INTERVAL = 30
# A pending row younger than this may still be on its way to Redis (its
# on_commit push has not run yet); the sweep leaves it alone.
SWEEP_GRACE = timedelta(seconds=10)
PERIODIC_KEY = "byz:periodic:{kind}"


class RegisteredJob(RQJob):
    """An RQ job that can only run a kind from the portal's job registry."""

    def _refusal(self) -> str | None:
        """Why this job must not run, or None when it may."""
        try:
            name = self.func_name
            instance = self.instance
            args = self.args
            kwargs = self.kwargs
        except Exception as error:  # noqa: BLE001 - any undecodable payload
            return f"payload cannot be read as JSON ({type(error).__name__})"
        if instance is not None:
            return "jobs on an instance are not accepted"
        if not isinstance(name, str) or registry.get(name) is None:
            return f"{name!r} is not in the job registry"
        if args or kwargs:
            return "arguments travel in the Job row, not in Redis"
        for callback in (
            self._success_callback_name,
            self._failure_callback_name,
            self._stopped_callback_name,
        ):
            if callback:
                return f"callback {callback!r} is not accepted"
        if getattr(self, "webhooks", None):
            return "webhooks are not accepted"
        try:
            uuid.UUID(str(self.id))
        except ValueError:
            return f"job id {self.id!r} is not a Job record id"
        return None

    @property
    def func(self) -> Callable[..., Any]:
        refusal = self._refusal()
        if refusal is not None:
            raise JobRefused(refusal)
        from .execution import run_job

        return functools.partial(run_job, job_id=str(self.id), kind=self.func_name)

    def perform(self) -> Any:
        """Refuse before RQ touches the function; mark the row failed."""
        refusal = self._refusal()
        if refusal is not None:
            logger.error("refused job %s: %s", self.id, refusal)
            _mark_refused(str(self.id), refusal)
            raise JobRefused(refusal)
        return super().perform()

    # RQ callbacks and webhooks are never used by the portal; a job that
    # names one was not written by it. They resolve to nothing here, so
    # not even RQ's registry clean-up can be made to import or call them.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None

    def send_webhooks(self, *args: Any, **kwargs: Any) -> None:
        return None


def _mark_refused(job_id: str, reason: str) -> None:
    from django.utils.translation import gettext as _

    from .execution import refuse

    try:
        refuse(
            job_id,
            _("The worker refused this job: %(reason)s") % {"reason": reason},
        )
    finally:
        close_old_connections()


def worker_process_gone(connection: Any, key: str) -> bool:
    """True when worker ``key`` ran on this machine and its process is gone."""
    hostname, pid = (
        value.decode() if isinstance(value, bytes) else value
        for value in connection.hmget(key, ["hostname", "pid"])
    )
    if hostname != socket.gethostname() or not pid:
        return False
    return not _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PortalWorker(SimpleWorker):
    """The one worker of the privileged queue (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = RegisteredJob
        super().__init__(*args, **kwargs)
        for queue in self.queues:
            queue.serializer = JSONSerializer
            queue.job_class = RegisteredJob
        registry.load()
        self._last_tick = timezone.now() - timedelta(days=1)
        self._last_sweep = timezone.now() - timedelta(days=1)

    @property
    def dequeue_timeout(self) -> int:
        return TICK

    @property
    def connection_timeout(self) -> int:
        # RQ's own rule (blocking wait plus ten seconds) with the short wait.
        return TICK + 10

    @property
    def should_run_maintenance_tasks(self) -> bool:
        if super().should_run_maintenance_tasks:
            return True
        return timezone.now() - self._last_tick >= timedelta(seconds=TICK)

    def run_maintenance_tasks(self) -> None:
        base_due = self.last_cleaned_at is None or (
            timezone.now() - self.last_cleaned_at
            > timedelta(seconds=self.maintenance_interval)
        )
        if base_due:
            super().run_maintenance_tasks()
        self.portal_tick()

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        self.forget_dead_workers()
        self.recover_interrupted_jobs()
        # At start-up every pending row is pushed at once, without the grace
        # period: a duplicate delivery is harmless (the row is claimed once).
        self.push_stranded_jobs(grace=timedelta(0))
        self._last_sweep = timezone.now()
        self.portal_tick()
        self.start_side_lanes()

    def start_side_lanes(self) -> None:
        """Threads of this process that run urgent kinds beside the main
        loop: the captive lane (``captive.lane``), so a phone's tap is not
        stuck behind a long host change, without a second worker process.
        Started after the recovery above, which would otherwise take a job
        the lane is running for one whose worker died."""
        from django.apps import apps

        from .queue import QUEUE_NAME

        if QUEUE_NAME not in self.queue_names() or not apps.is_installed("captive"):
            return
        from captive.lane import start_lane

        self.side_lanes = [start_lane(self.connection)]

    def execute_job(self, job: RQJob, queue: Any) -> None:
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()

    # -- the portal's own housekeeping -------------------------------------

    def recover_interrupted_jobs(self) -> int:
        """Mark rows ``running`` whose worker is gone as errored."""
        from portal.models import Job, JobStatus

        from .execution import mark_interrupted

        orphans = []
        for job_id in Job.objects.filter(status=JobStatus.RUNNING).values_list(
            "pk", flat=True
        ):
            if not self._running_elsewhere(str(job_id)):
                orphans.append(job_id)
        count = mark_interrupted(orphans)
        if count:
            logger.warning("marked %d interrupted job(s) as errored", count)
        close_old_connections()
        return count

    def forget_dead_workers(self) -> int:
        """Unregister workers of this machine whose process is gone.

        A worker killed with SIGKILL cannot unregister itself; until its key
        expires the queue health would count it as running.
        """
        from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

        forgotten = 0
        for queue in self.queues:
            by_queue = WORKERS_BY_QUEUE_KEY % queue.name
            for raw_key in self.connection.smembers(by_queue):
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                if key == self.key:
                    continue
                if worker_process_gone(self.connection, key):
                    with self.connection.pipeline() as pipeline:
                        pipeline.srem(by_queue, key)
                        pipeline.srem(REDIS_WORKER_KEYS, key)
                        pipeline.delete(key)
                        pipeline.execute()
                    forgotten += 1
        return forgotten

    def _running_elsewhere(self, job_id: str) -> bool:
        """True when another live worker is executing this job right now."""
        try:
            rq_job = RegisteredJob.fetch(
                job_id, connection=self.connection, serializer=JSONSerializer
            )
        except Exception:  # noqa: BLE001 - gone or unreadable: not running
            return False
        worker_name = rq_job.worker_name
        if not worker_name or worker_name == self.name:
            return False
        key = f"rq:worker:{worker_name}"
        fields = self.connection.hmget(key, ["death", "hostname", "pid"])
        death, hostname, pid = (
            value.decode() if isinstance(value, bytes) else value for value in fields
        )
        if not self.connection.exists(key) or death:
            return False
        # A worker killed with SIGKILL leaves its key until the heartbeat TTL
        # (the job timeout plus a minute) runs out; on this machine we can
        # tell at once whether its process is still there.
        if hostname == socket.gethostname() and pid:
            return _process_alive(int(pid))
        return True

    def portal_tick(self) -> None:
        """Enqueue due periodic kinds; push pending rows Redis never got."""
        self._last_tick = timezone.now()
        try:
            self.enqueue_due_periodic_jobs()
            if timezone.now() - self._last_sweep >= timedelta(seconds=SWEEP_INTERVAL):
                self.push_stranded_jobs()
                self._last_sweep = timezone.now()
        except RedisError:
            raise
        except Exception:  # noqa: BLE001 - housekeeping must not kill the worker
            logger.exception("job queue housekeeping failed")
        finally:
            close_old_connections()

    def enqueue_due_periodic_jobs(self) -> list[str]:
        """Enqueue each periodic kind whose interval has passed."""
        from portal.models import Job, JobStatus

        from .services import enqueue_job

        started = []
        for entry in registry.periodic_kinds():
            busy = Job.objects.filter(
                kind=entry.kind, status__in=(JobStatus.PENDING, JobStatus.RUNNING)
            ).exists()
            if busy:
                continue
            key = PERIODIC_KEY.format(kind=entry.kind)
            if not self.connection.set(key, "1", nx=True, ex=entry.every):
                continue
            enqueue_job(kind=entry.kind, connection=self.connection)
            started.append(entry.kind)
        return started

    def _waiting_in_redis(self, job_id: str) -> bool:
        """True when RQ still holds this job as queued, scheduled or deferred.

        Any other state for a row that is still pending (no hash at all, or
        ``started`` by a worker that died before claiming the row) means the
        job will never arrive on its own. The sweep runs between jobs in this
        single-threaded worker, so nothing is executing at that moment.
        """
        try:
            status = RegisteredJob.fetch(
                job_id, connection=self.connection, serializer=JSONSerializer
            ).get_status(refresh=False)
        except RedisError:
            raise
        except Exception:  # noqa: BLE001 - missing or unreadable hash
            return False
        return status in (
            RQJobStatus.QUEUED,
            RQJobStatus.SCHEDULED,
            RQJobStatus.DEFERRED,
        )

    def push_stranded_jobs(self, grace: timedelta = SWEEP_GRACE) -> int:
        """Push pending rows that have no job in Redis (queued while down)."""
        from portal.models import Job, JobStatus

        from .queue import push

        cutoff = timezone.now() - grace
        pushed = 0
        for job_id, kind in Job.objects.filter(
            status=JobStatus.PENDING, created__lt=cutoff
        ).values_list("pk", "kind"):
            if self._waiting_in_redis(str(job_id)):
                continue
            if push(str(job_id), kind, connection=self.connection):
                pushed += 1
        if pushed:
            logger.info("pushed %d pending job(s) that were not queued", pushed)
        return pushed
