"""The privileged queue in Redis: connections and putting a job on it.

The web process talks to Redis with short timeouts (a page must not hang
because Redis does); the worker uses django-rq's connection, which RQ gives
its own long blocking timeout. Only the job id and the kind travel through
Redis, serialised as JSON; the arguments stay in the ``Job`` row.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError
from rq.queue import Queue
from rq.serializers import JSONSerializer

logger = logging.getLogger(__name__)

QUEUE_NAME = "privileged"
# Seconds a web request waits for Redis before it says the queue is down.
WEB_SOCKET_TIMEOUT = 1.0
# How long RQ keeps the (empty) result and the failure record of a job: the
# ``Job`` row keeps the real record, Redis only needs it for a short while.
RESULT_TTL = 600
FAILURE_TTL = 24 * 3600


@lru_cache(maxsize=1)
def _web_connection(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=WEB_SOCKET_TIMEOUT,
        socket_connect_timeout=WEB_SOCKET_TIMEOUT,
        health_check_interval=30,
    )


def web_connection() -> Redis:
    """A Redis client for the web process (short timeouts, pooled)."""
    return _web_connection(settings.RQ_QUEUES[QUEUE_NAME]["URL"])


def privileged_queue(connection: Redis | None = None) -> Queue:
    """The privileged queue with the registry-only job class and JSON."""
    from .rq import RegisteredJob

    return Queue(
        QUEUE_NAME,
        connection=connection or web_connection(),
        job_class=RegisteredJob,
        serializer=JSONSerializer,
        default_timeout=settings.RQ_QUEUES[QUEUE_NAME].get("DEFAULT_TIMEOUT", 600),
    )


def push(job_id: str, kind: str, *, connection: Redis | None = None) -> bool:
    """Put job ``job_id`` of ``kind`` on the queue; False when Redis is down.

    A job that could not be pushed keeps its ``pending`` row, and the worker
    pushes it when it next sweeps (see :class:`portal.jobqueue.rq.PortalWorker`),
    so nothing the operator asked for is lost.
    """
    try:
        privileged_queue(connection).enqueue_call(
            func=kind,
            job_id=job_id,
            description=kind,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )
    except RedisError as error:
        logger.warning("job %s (%s) stays pending: Redis: %s", job_id, kind, error)
        return False
    return True
