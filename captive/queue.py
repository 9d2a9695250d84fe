"""The captive lane's queue: captive jobs skip the queue of long host changes.

Tapping Continue must open the phone's access within 200 ms (DESIGN, "Speed
where it matters"), but the one privileged worker may be busy for a minute
with a mesh apply. So every ``captive.*`` job is queued twice when its row
commits: on the ``privileged`` queue as usual (:func:`enqueue_job`) *and* on
the ``captive`` queue, whose Redis list the captive lane (a thread of the
same worker process, :mod:`captive.lane`) blocks on. Whichever takes the
job first claims its row with one conditional UPDATE (see
:mod:`portal.jobqueue.execution`); the other finds it claimed and does
nothing. Without the lane (a crashed thread, Redis briefly gone) captive
jobs still run, on the privileged worker's main loop, only later.

The lane and the main loop may thus run captive jobs at the same time (a
tap on the lane while the main loop rebuilds the table), so each job holds
:func:`firewall_lock` (an ``flock`` on a file of the run folder, opened per
call, so it serialises threads as well as processes) around its
read-modify-write of the nft table.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError
from rq.queue import Queue
from rq.serializers import JSONSerializer

from portal.jobqueue.queue import FAILURE_TTL, RESULT_TTL, web_connection
from portal.jobqueue.services import enqueue_job
from portal.models import Job

logger = logging.getLogger(__name__)

QUEUE_NAME = "captive"
LOCK_NAME = "captive-firewall.lock"


def captive_queue(connection: Any = None) -> Queue:
    from portal.jobqueue.rq import RegisteredJob

    return Queue(
        QUEUE_NAME,
        connection=connection or web_connection(),
        job_class=RegisteredJob,
        serializer=JSONSerializer,
        default_timeout=120,
    )


def push_captive(job_id: str, kind: str) -> bool:
    """Put the job on the captive lane as well; False when Redis is down."""
    try:
        captive_queue().enqueue_call(
            func=kind,
            job_id=job_id,
            description=kind,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )
    except RedisError as error:
        logger.warning(
            "captive job %s stays on the privileged queue: %s", job_id, error
        )
        return False
    return True


def enqueue_captive_job(
    *, kind: str, arguments: dict[str, Any] | None = None, user: Any = None
) -> Job:
    """:func:`enqueue_job` plus a push on the captive lane, both on commit."""
    with transaction.atomic():
        job = enqueue_job(kind=kind, arguments=arguments, user=user)
        transaction.on_commit(
            functools.partial(push_captive, str(job.pk), kind), robust=True
        )
    return job


@contextlib.contextmanager
def firewall_lock() -> Iterator[None]:
    """Serialise changes of the captive table across worker processes."""
    folder = settings.PORTAL.state_dir / "run"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
