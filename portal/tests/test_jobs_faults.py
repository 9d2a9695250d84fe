"""Faults with real daemons: a worker killed mid-job, Redis down and back."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

import portal.jobqueue.testing_jobs  # noqa: F401 - registers the test kinds
from portal.host.files import TEMP_PREFIX, FileStore
from portal.jobqueue import health
from portal.jobqueue.execution import interrupted_message
from portal.jobqueue.services import enqueue_job, retry_job
from portal.jobqueue.testing_jobs import CONFIG_PATH
from portal.models import Job, JobStatus, NodeSettings
from portal.tests.redis_fixture import RedisServer, WorkerProcess

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

MEGABYTES = 48


@pytest.fixture
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="byz-faults-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def operator(client, django_user_model):
    NodeSettings.objects.update_or_create(
        pk=1, defaults={"node_name": "n1", "setup_completed_at": timezone.now()}
    )
    user = django_user_model.objects.create_user("operator", password="x" * 12)
    client.force_login(user)
    return client


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_worker_killed_mid_write_leaves_the_old_file_and_retry_completes_it(
    use_redis, workdir
):
    store = FileStore(workdir / "root")
    target = store.path(CONFIG_PATH)
    store.write(CONFIG_PATH, "old config\n")
    old = target.read_bytes()
    worker = WorkerProcess(use_redis, workdir).start()
    try:
        job = enqueue_job(
            kind="testing.write_big_config",
            arguments={"fill": "b", "megabytes": MEGABYTES},
        )
        # Kill the moment the temporary file appears: the write is under way.
        wait_for(lambda: list(target.parent.glob(f"{TEMP_PREFIX}*")), interval=0.001)
        assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
        worker.kill()
        leftovers = list(target.parent.glob(f"{TEMP_PREFIX}*"))
        assert leftovers, "the kill came after the write finished"
        # Old or complete, never half: here the rename had not happened.
        assert sha(target.read_bytes()) == sha(old)
        assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING

        worker = WorkerProcess(use_redis, workdir).start()
        wait_for(lambda: Job.objects.get(pk=job.pk).status == JobStatus.ERRORED)
        job.refresh_from_db()
        assert job.error == str(interrupted_message())
        assert job.finished is not None

        retried = retry_job(job=job, user=None)
        assert retried.retry_of_id == job.pk
        wait_for(lambda: Job.objects.get(pk=retried.pk).is_finished)
        retried.refresh_from_db()
        assert retried.status == JobStatus.COMPLETED, worker.output()
        content = target.read_bytes()
        assert content == b"b" * (MEGABYTES * 1024 * 1024)
        assert not list(target.parent.glob(f"{TEMP_PREFIX}*"))
        writes = [entry for entry in retried.log if entry["type"] == "write"]
        assert writes[0]["path"] == CONFIG_PATH
        assert writes[0]["sha256"] == sha(content)
    finally:
        worker.kill()


def test_a_worker_killed_mid_job_is_errored_on_restart(use_redis, workdir):
    marker = workdir / "started"
    worker = WorkerProcess(use_redis, workdir).start()
    try:
        job = enqueue_job(
            kind="testing.sleep", arguments={"seconds": 60, "marker": str(marker)}
        )
        wait_for(marker.exists)
        assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
        worker.kill()
        # Right after the kill the dead worker is not counted as running.
        health.clear_cache()
        assert health.queue_health(use_cache=False).worker_count == 0
        worker = WorkerProcess(use_redis, workdir).start()
        wait_for(lambda: Job.objects.get(pk=job.pk).status == JobStatus.ERRORED)
        assert health.queue_health(use_cache=False).worker_count == 1
    finally:
        worker.kill()


def test_redis_down_keeps_jobs_pending_pages_say_so_and_they_run_when_back(
    settings, operator, workdir
):
    folder = Path(tempfile.mkdtemp(prefix="byz-redis-down-"))
    server = RedisServer(folder=folder, socket=folder / "redis.sock")
    settings.RQ_QUEUES = {
        name: {**config, "URL": server.url}
        for name, config in settings.RQ_QUEUES.items()
    }
    health.clear_cache()
    worker = None
    try:
        # Redis is not running: enqueueing still works and keeps the row.
        job = enqueue_job(kind="testing.inspect", arguments={"label": "later"})
        job.refresh_from_db()
        assert job.status == JobStatus.PENDING
        state = health.queue_health(use_cache=False)
        assert not state.redis_ok and not state.can_apply
        assert "Changes cannot be applied right now" in state.message

        for url in (reverse("jobs:list"), job.get_absolute_url()):
            response = operator.get(url, secure=True)
            assert response.status_code == 200
            assert "Changes cannot be applied right now" in response.content.decode()

        # Redis comes back, then the worker: the pending job runs.
        server.start()
        health.clear_cache()
        state = health.queue_health(use_cache=False)
        assert state.redis_ok and state.worker_count == 0
        assert "the job worker is not running" in state.message
        worker = WorkerProcess(server, workdir).start()
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished)
        job.refresh_from_db()
        assert job.status == JobStatus.COMPLETED, worker.output()
        assert job.result["label"] == "later"
        state = health.queue_health(use_cache=False)
        assert state.can_apply and state.worker_count == 1
    finally:
        if worker is not None:
            worker.kill()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        health.clear_cache()
