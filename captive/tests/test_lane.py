"""The captive lane: a thread of the one real worker process (no second
worker) runs captive jobs while the main loop is busy, refuses the rest."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import psutil
import pytest

import portal.jobqueue.testing_jobs  # noqa: F401 - registers the test kinds
from captive.queue import captive_queue, enqueue_captive_job, push_captive
from portal.jobqueue.services import enqueue_job
from portal.models import Job, JobStatus
from portal.tests.redis_fixture import WorkerProcess

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="byz-lane-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def worker(redis_server, workdir, django_db_setup, django_db_blocker):
    process = WorkerProcess(redis_server, workdir).start()
    yield process
    process.stop()


def wait_status(job: Job, statuses: set[str], worker, timeout: float = 20.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Job.objects.get(pk=job.pk)
        if row.status in statuses:
            return row
        time.sleep(0.01)
    raise AssertionError(f"job {job.kind} stayed {row.status}:\n{worker.output()}")


def test_a_captive_job_runs_while_the_main_loop_is_busy_with_a_long_job(
    use_redis, worker, workdir
):
    marker = workdir / "sleeping"
    long_job = enqueue_job(
        kind="testing.sleep", arguments={"seconds": 8, "marker": str(marker)}
    )
    wait_status(long_job, {JobStatus.RUNNING}, worker)
    started = time.monotonic()
    tap = enqueue_captive_job(kind="captive.update_mac_rules")
    done = wait_status(tap, set(JobStatus.finished()), worker, timeout=5)
    elapsed = time.monotonic() - started
    assert done.status == JobStatus.COMPLETED, (done.error, worker.output())
    assert Job.objects.get(pk=long_job.pk).status == JobStatus.RUNNING
    assert elapsed < 2.0
    # The copy on the privileged queue runs nothing once the long job ends.
    wait_status(long_job, set(JobStatus.finished()), worker)
    time.sleep(0.5)
    again = Job.objects.get(pk=tap.pk)
    assert again.status == JobStatus.COMPLETED
    assert again.finished == done.finished


def test_the_lane_is_a_thread_of_the_one_worker_process(use_redis, worker):
    process = psutil.Process(worker.process.pid)
    names = [" ".join(child.cmdline()) for child in process.children(recursive=True)]
    assert not any("rqworker captive" in name for name in names)
    assert process.num_threads() >= 2


def test_the_lane_refuses_a_job_that_is_not_a_captive_kind(use_redis, worker):
    # A registered kind, but one that must stay on the main loop.
    job = Job.objects.create(kind="testing.crash", arguments={})
    assert push_captive(str(job.pk), "testing.crash")
    row = wait_status(job, {JobStatus.FAILED, JobStatus.ERRORED}, worker)
    assert row.status == JobStatus.FAILED
    assert "not a captive job" in row.error


def test_the_lane_refuses_a_kind_outside_the_registry(use_redis, worker):
    job = Job.objects.create(kind="captive.nothing_like_this", arguments={})
    captive_queue().enqueue_call(func="os.system", job_id=str(job.pk))
    row = wait_status(job, {JobStatus.FAILED}, worker)
    assert "not in the job registry" in row.error
