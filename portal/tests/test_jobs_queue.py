"""enqueue_job, on_commit, the RQ classes django-rq builds, pruning."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from rq.serializers import JSONSerializer

import portal.jobqueue.testing_jobs  # noqa: F401 - registers the test kinds
from portal.jobqueue import registry
from portal.jobqueue.errors import JobInputError, JobRefused
from portal.jobqueue.queue import privileged_queue, web_connection
from portal.jobqueue.rq import PortalWorker, RegisteredJob
from portal.jobqueue.services import enqueue_job, prune_jobs
from portal.models import Job, JobStatus

pytestmark = pytest.mark.django_db


@pytest.mark.redis
def test_enqueue_pushes_the_job_on_commit_with_the_row_id(
    use_redis, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = enqueue_job(kind="testing.inspect", arguments={"label": "a"})
        assert privileged_queue(web_connection()).count == 0
    assert len(callbacks) == 1
    queue = privileged_queue(web_connection())
    assert queue.job_ids == [str(job.pk)]
    rq_job = queue.fetch_job(str(job.pk))
    assert rq_job.func_name == "testing.inspect"
    assert rq_job.args == () or rq_job.args == []
    assert rq_job.kwargs == {}


@pytest.mark.redis
def test_nothing_is_enqueued_when_the_transaction_rolls_back(
    use_redis, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                enqueue_job(kind="testing.inspect")
                raise RuntimeError("the form's save failed")
    assert callbacks == []
    assert privileged_queue(web_connection()).count == 0
    assert not Job.objects.exists()


def test_enqueue_refuses_unknown_kinds_and_rich_arguments():
    with pytest.raises(JobInputError):
        enqueue_job(kind="os.system")
    with pytest.raises(JobInputError):
        enqueue_job(kind="testing.inspect", arguments={"label": {"nested": 1}})
    with pytest.raises(JobInputError):
        enqueue_job(kind="testing.inspect", arguments={"label": object()})
    with pytest.raises(JobInputError):
        enqueue_job(kind="testing.inspect", arguments={"not valid": 1})
    with pytest.raises(JobInputError):
        enqueue_job(kind="testing.inspect", arguments={"x": float("nan")})
    assert not Job.objects.exists()


def test_routine_flag_comes_from_the_registry():
    assert enqueue_job(kind="testing.tick").routine
    assert not enqueue_job(kind="testing.inspect").routine


@pytest.mark.redis
def test_django_rq_builds_a_json_registry_only_worker_even_when_asked_for_pickle(
    use_redis,
):
    from django_rq.workers import get_worker

    # What `manage.py rqworker privileged` does: its --serializer default is
    # RQ's pickle serializer.
    worker = get_worker(
        "privileged", serializer="rq.serializers.DefaultSerializer", name="t"
    )
    assert isinstance(worker, PortalWorker)
    assert worker.serializer is JSONSerializer
    assert worker.job_class is RegisteredJob
    assert all(queue.serializer is JSONSerializer for queue in worker.queues)
    assert all(queue.job_class is RegisteredJob for queue in worker.queues)


def _rq_job(connection, func, **kwargs) -> RegisteredJob:
    return RegisteredJob.create(
        func,
        connection=connection,
        serializer=JSONSerializer,
        id=kwargs.pop("id", str(uuid.uuid4())),
        **kwargs,
    )


@pytest.mark.redis
def test_registered_job_resolves_only_registry_kinds(use_redis):
    connection = use_redis.client()
    assert callable(_rq_job(connection, "testing.inspect").func)
    for name in ("os.system", "builtins.exec", "portal.config.read_or_create_secret"):
        with pytest.raises(JobRefused):
            _rq_job(connection, name).func
    with pytest.raises(JobRefused):
        _rq_job(connection, "testing.inspect", kwargs={"label": "x"}).func
    with pytest.raises(JobRefused):
        _rq_job(connection, "testing.inspect", id="not-a-uuid").func


@pytest.mark.redis
def test_registered_job_refuses_callbacks_and_webhooks(use_redis):
    from rq.callbacks import Callback
    from rq.webhook import Webhook

    connection = use_redis.client()
    for option in ("on_success", "on_failure", "on_stopped"):
        job = _rq_job(connection, "testing.inspect", **{option: Callback("os.system")})
        with pytest.raises(JobRefused):
            job.func
        assert job.success_callback is None and job.failure_callback is None
        assert job.stopped_callback is None
    job = _rq_job(
        connection,
        "testing.inspect",
        webhooks=[Webhook(url="http://10.0.0.1/", job_status="finished")],
    )
    with pytest.raises(JobRefused):
        job.func


def test_test_only_kinds_need_the_test_settings_and_the_variable(monkeypatch, settings):
    monkeypatch.setenv(registry.TEST_JOBS_ENV, "1")
    assert registry.test_jobs_enabled()
    settings.SETTINGS_MODULE = "portal.settings.production"
    assert not registry.test_jobs_enabled()
    settings.SETTINGS_MODULE = "portal.settings.test"
    monkeypatch.delenv(registry.TEST_JOBS_ENV)
    assert not registry.test_jobs_enabled()


def test_pruning_removes_old_jobs_and_keeps_recent_and_unfinished(settings):
    settings.JOB_RETENTION_DAYS = 30
    now = timezone.now()

    def job(age: timedelta, status=JobStatus.COMPLETED, routine=False) -> Job:
        row = Job.objects.create(kind="testing.inspect", status=status, routine=routine)
        Job.objects.filter(pk=row.pk).update(created=now - age)
        return row

    old = job(timedelta(days=31))
    old_failed = job(timedelta(days=40), status=JobStatus.FAILED)
    recent = job(timedelta(days=29))
    old_pending = job(timedelta(days=60), status=JobStatus.PENDING)
    old_routine = job(timedelta(hours=2), routine=True)
    new_routine = job(timedelta(minutes=30), routine=True)
    running_routine = job(timedelta(hours=2), status=JobStatus.RUNNING, routine=True)

    assert prune_jobs(now=now) == 3
    left = set(Job.objects.values_list("pk", flat=True))
    assert left == {recent.pk, old_pending.pk, new_routine.pk, running_routine.pk}
    assert old.pk not in left and old_failed.pk not in left
    assert old_routine.pk not in left


def test_pruning_is_a_registered_periodic_routine_job():
    registry.load()
    entry = registry.get("portal.prune_jobs")
    assert entry is not None and entry.every and entry.routine
    Job.objects.create(kind="testing.inspect", status=JobStatus.COMPLETED)
    Job.objects.filter().update(created=timezone.now() - timedelta(days=400))
    assert entry.func() == {"deleted": 1}
