"""A real redis-server and a real worker process run real jobs end to end."""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from rq.job import JobStatus as RQJobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer

import portal.jobqueue.testing_jobs  # noqa: F401 - registers the test kinds
from portal.jobqueue.services import enqueue_job
from portal.models import Job, JobStatus
from portal.tests.redis_fixture import WorkerProcess

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="byz-worker-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def worker(redis_server, workdir, django_db_setup, django_db_blocker):
    """One worker process for the tests of this module that do not kill it."""
    process = WorkerProcess(redis_server, workdir).start()
    yield process
    process.stop()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def wait_finished(job: Job, worker: WorkerProcess, timeout: float = 20.0) -> Job:
    try:
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"job not finished; worker said:\n{worker.output()}")
    return Job.objects.get(pk=job.pk)


def rq_status(redis_server, job_id: str) -> str | None:
    value = redis_server.client().hget(f"rq:job:{job_id}", "status")
    return value.decode() if value else None


def test_registered_job_runs_end_to_end_in_a_real_worker(use_redis, worker):
    job = enqueue_job(kind="testing.inspect", arguments={"label": "e2e"})
    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING
    seen = set()

    def finished() -> bool:
        status = Job.objects.get(pk=job.pk).status
        seen.add(status)
        return status in JobStatus.finished()

    wait_for(finished, interval=0.005)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, worker.output()
    assert job.started and job.finished and job.started <= job.finished
    assert job.result == {"returncode": 0, "label": "e2e"}
    commands = [entry for entry in job.log if entry["type"] == "command"]
    assert len(commands) == 1
    assert commands[0]["argv"][:2] == ["ip", "-j"]
    assert commands[0]["argv"][-1] == "lo"
    assert commands[0]["returncode"] == 0
    assert '"ifname":"lo"' in commands[0]["stdout"].replace(" ", "")
    assert commands[0]["duration"] >= 0
    assert {"type": "note", "text": "inspecting lo e2e"}.items() <= next(
        entry for entry in job.log if entry["type"] == "note"
    ).items()


def test_a_job_that_fails_is_failed_with_its_message(use_redis, worker):
    job = wait_finished(
        enqueue_job(kind="testing.fail", arguments={"message": "No radio here."}),
        worker,
    )
    assert job.status == JobStatus.FAILED
    assert job.error == "No radio here."
    assert [entry["type"] for entry in job.log] == ["note", "error"]


def test_an_unexpected_exception_marks_the_job_errored(use_redis, worker):
    job = wait_finished(enqueue_job(kind="testing.crash"), worker)
    assert job.status == JobStatus.ERRORED
    assert "RuntimeError: boom" in job.error
    assert "Traceback" in job.log[-1]["exception"] or "boom" in job.log[-1]["exception"]


def test_worker_uses_json_and_the_registry_job_class(use_redis, worker):
    # What rqworker really built: a job it ran lands in Redis as JSON.
    job = wait_finished(enqueue_job(kind="testing.inspect"), worker)
    assert job.status == JobStatus.COMPLETED
    data = use_redis.client().hget(f"rq:job:{job.pk}", "data")
    import zlib

    try:
        data = zlib.decompress(data)
    except zlib.error:
        pass
    assert json.loads(data) == ["testing.inspect", None, [], {}]


@pytest.mark.parametrize(
    ("func_name", "args", "kwargs"),
    [
        ("os.system", ["touch {marker}"], {}),
        ("builtins.exec", ["open('{marker}', 'w')"], {}),
        ("portal.config.read_or_create_secret", [], {"path": "{marker}"}),
        ("pathlib.Path.touch", ["{marker}"], {}),
    ],
)
def test_a_job_naming_a_function_outside_the_registry_is_refused(
    use_redis, worker, workdir, func_name, args, kwargs
):
    marker = workdir / f"marker-{uuid.uuid4().hex}"
    args = [arg.format(marker=marker) for arg in args]
    kwargs = {key: value.format(marker=marker) for key, value in kwargs.items()}
    # A Job row with the same id exists: it is marked failed, not run.
    row = Job.objects.create(kind="testing.inspect")
    queue = Queue(
        "privileged", connection=use_redis.client(), serializer=JSONSerializer
    )
    queue.enqueue_call(func=func_name, args=args, kwargs=kwargs, job_id=str(row.pk))
    wait_for(lambda: rq_status(use_redis, str(row.pk)) == RQJobStatus.FAILED)
    row.refresh_from_db()
    assert row.status == JobStatus.FAILED
    assert "refused" in row.error
    assert not marker.exists()
    assert row.started is None


def test_a_registered_kind_with_arguments_in_redis_is_refused(
    use_redis, worker, workdir
):
    row = Job.objects.create(kind="testing.fail", arguments={"message": "x"})
    queue = Queue(
        "privileged", connection=use_redis.client(), serializer=JSONSerializer
    )
    queue.enqueue_call(
        func="testing.fail", kwargs={"message": "from redis"}, job_id=str(row.pk)
    )
    wait_for(lambda: rq_status(use_redis, str(row.pk)) == RQJobStatus.FAILED)
    row.refresh_from_db()
    assert row.status == JobStatus.FAILED
    assert "refused" in row.error and row.started is None


def test_a_registered_kind_without_a_job_row_runs_nothing(use_redis, worker, workdir):
    marker = workdir / f"marker-{uuid.uuid4().hex}"
    queue = Queue(
        "privileged", connection=use_redis.client(), serializer=JSONSerializer
    )
    job_id = str(uuid.uuid4())
    queue.enqueue_call(func="testing.sleep", job_id=job_id)
    wait_for(lambda: rq_status(use_redis, job_id) == RQJobStatus.FAILED)
    assert not Job.objects.filter(pk=job_id).exists()
    assert not marker.exists()


def _hand_written_job(client, job_id: str, data: bytes) -> None:
    client.hset(
        f"rq:job:{job_id}",
        mapping={
            "data": data,
            "status": "queued",
            "origin": "privileged",
            "created_at": "2026-01-01T00:00:00.000000Z",
            "enqueued_at": "2026-01-01T00:00:00.000000Z",
            "description": "x",
            "timeout": 60,
        },
    )
    client.rpush("rq:queue:privileged", job_id)


def test_a_hand_written_redis_hash_naming_os_system_is_refused(
    use_redis, worker, workdir
):
    marker = workdir / f"marker-{uuid.uuid4().hex}"
    job_id = str(uuid.uuid4())
    payload = json.dumps(["os.system", None, [f"touch {marker}"], {}]).encode()
    _hand_written_job(use_redis.client(), job_id, payload)
    wait_for(lambda: rq_status(use_redis, job_id) == RQJobStatus.FAILED)
    time.sleep(0.2)
    assert not marker.exists()


class _CreatesFileWhenUnpickled:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_job_is_never_unpickled(use_redis, worker, workdir):
    marker = workdir / f"marker-{uuid.uuid4().hex}"
    # Unpickling this payload would create the marker file.
    payload = pickle.dumps(
        ("testing.inspect", None, [_CreatesFileWhenUnpickled(str(marker))], {})
    )
    # Sanity: it really would.
    pickle.loads(payload)  # noqa: S301
    assert marker.exists()
    marker.unlink()
    job_id = str(uuid.uuid4())
    _hand_written_job(use_redis.client(), job_id, payload)
    wait_for(lambda: rq_status(use_redis, job_id) == RQJobStatus.FAILED)
    time.sleep(0.2)
    assert not marker.exists()


def test_the_worker_enqueues_periodic_jobs_once_per_interval(use_redis, worker):
    # testing.tick is registered every=3600: the worker queued it at start-up.
    wait_for(
        lambda: (
            Job.objects.filter(kind="testing.tick", status=JobStatus.COMPLETED).exists()
            or Job.objects.filter(kind="testing.tick").exists()
        )
    )
    tick = Job.objects.filter(kind="testing.tick").first()
    assert tick.routine
    assert use_redis.client().ttl("byz:periodic:testing.tick") > 3500
    time.sleep(6)  # more than one worker tick
    assert Job.objects.filter(kind="testing.tick").count() == 1
