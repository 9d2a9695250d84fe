"""Job pages: login, list, detail with log, refresh while unfinished, Retry."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

import portal.jobqueue.testing_jobs  # noqa: F401 - registers the test kinds
from portal.models import Job, JobStatus, NodeSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model, settings):
    # No Redis at this address: pages must render anyway.
    settings.RQ_QUEUES = {
        name: {**config, "URL": "unix:///nonexistent/redis.sock?db=0"}
        for name, config in settings.RQ_QUEUES.items()
    }
    NodeSettings.objects.update_or_create(
        pk=1, defaults={"node_name": "n1", "setup_completed_at": timezone.now()}
    )
    user = django_user_model.objects.create_user("operator", password="x" * 12)
    client.force_login(user)
    return client


def command_entry() -> dict:
    return {
        "type": "command",
        "argv": ["ip", "-j", "link", "show", "dev", "lo"],
        "namespace": "byz-n1",
        "returncode": 0,
        "stdout": '[{"ifname":"lo"}]',
        "stderr": "",
        "duration": 0.0123,
        "at": timezone.now().isoformat(),
    }


def test_job_pages_require_login(client):
    NodeSettings.objects.create(pk=1, setup_completed_at=timezone.now())
    job = Job.objects.create(kind="testing.inspect")
    for url in (reverse("jobs:list"), job.get_absolute_url()):
        response = client.get(url, secure=True)
        assert response.status_code == 302
        assert "/login/" in response["Location"]
    response = client.post(reverse("jobs:retry", args=[job.pk]), secure=True)
    assert response.status_code == 302
    assert Job.objects.count() == 1


def test_job_list_hides_routine_jobs_unless_asked(operator):
    Job.objects.create(kind="testing.inspect", status=JobStatus.COMPLETED)
    Job.objects.create(kind="testing.tick", routine=True)
    page = operator.get(reverse("jobs:list"), secure=True).content.decode()
    assert "Inspect the loopback interface" in page
    assert "testing.tick" not in page
    page = operator.get(
        reverse("jobs:list") + "?routine=1", secure=True
    ).content.decode()
    assert "testing.tick" in page


def test_job_list_paginates(operator):
    Job.objects.bulk_create([Job(kind="testing.inspect") for _ in range(30)])
    first = operator.get(reverse("jobs:list"), secure=True).content.decode()
    assert first.count('href="/jobs/') >= 25
    second = operator.get(reverse("jobs:list") + "?page=2", secure=True)
    assert second.status_code == 200
    assert "Page 2 of 2" in second.content.decode()
    assert (
        operator.get(reverse("jobs:list") + "?page=zzz", secure=True).status_code == 200
    )


def test_job_detail_shows_every_log_entry(operator):
    job = Job.objects.create(
        kind="testing.inspect",
        arguments={"label": "x"},
        status=JobStatus.COMPLETED,
        started=timezone.now() - timedelta(seconds=2),
        finished=timezone.now(),
        log=[
            command_entry(),
            {"type": "write", "path": "/etc/babeld.conf", "bytes": 12, "sha256": "ab"},
            {"type": "note", "text": "all good"},
        ],
    )
    page = operator.get(job.get_absolute_url(), secure=True).content.decode()
    assert "ip -j link show dev lo" in page
    assert "byz-n1" in page
    assert "exit code 0" in page
    assert "ifname" in page
    assert "/etc/babeld.conf" in page
    assert "all good" in page
    assert "label" in page


def test_meta_refresh_only_while_the_job_is_unfinished(operator):
    running = Job.objects.create(
        kind="testing.inspect", status=JobStatus.RUNNING, started=timezone.now()
    )
    pending = Job.objects.create(kind="testing.inspect")
    done = Job.objects.create(kind="testing.inspect", status=JobStatus.COMPLETED)
    for job, refreshes in ((running, True), (pending, True), (done, False)):
        page = operator.get(job.get_absolute_url(), secure=True).content.decode()
        assert ('http-equiv="refresh"' in page) is refreshes


def test_pending_job_page_says_changes_cannot_be_applied(operator):
    job = Job.objects.create(kind="testing.inspect")
    page = operator.get(job.get_absolute_url(), secure=True).content.decode()
    assert "Changes cannot be applied right now" in page


def test_progress_fragment_is_the_status_and_log_alone(operator):
    job = Job.objects.create(
        kind="testing.inspect", status=JobStatus.FAILED, error="No radio here."
    )
    response = operator.get(reverse("jobs:progress", args=[job.pk]), secure=True)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert "No radio here." in body
    assert response["X-Job-Finished"] == "1"


def test_retry_post_queues_the_same_job_again(operator):
    job = Job.objects.create(
        kind="testing.fail", arguments={"message": "m"}, status=JobStatus.FAILED
    )
    response = operator.post(reverse("jobs:retry", args=[job.pk]), secure=True)
    new = Job.objects.exclude(pk=job.pk).get()
    assert response.status_code == 302
    assert response["Location"] == new.get_absolute_url()
    assert new.kind == job.kind and new.arguments == job.arguments
    assert new.retry_of == job and new.status == JobStatus.PENDING
    assert new.user.get_username() == "operator"


def test_retry_button_only_for_failed_or_errored_jobs(operator):
    failed = Job.objects.create(kind="testing.inspect", status=JobStatus.ERRORED)
    done = Job.objects.create(kind="testing.inspect", status=JobStatus.COMPLETED)
    retry = reverse("jobs:retry", args=[failed.pk])
    assert (
        retry in operator.get(failed.get_absolute_url(), secure=True).content.decode()
    )
    page = operator.get(done.get_absolute_url(), secure=True).content.decode()
    assert reverse("jobs:retry", args=[done.pk]) not in page


def test_retry_by_get_changes_nothing(operator):
    job = Job.objects.create(kind="testing.inspect", status=JobStatus.FAILED)
    response = operator.get(reverse("jobs:retry", args=[job.pk]), secure=True)
    assert response.status_code == 405
    assert Job.objects.count() == 1


def test_retry_of_a_completed_job_is_refused_with_a_message(operator):
    job = Job.objects.create(kind="testing.inspect", status=JobStatus.COMPLETED)
    response = operator.post(
        reverse("jobs:retry", args=[job.pk]), secure=True, follow=True
    )
    assert response.status_code == 200
    assert "Only a failed or errored job can be retried" in response.content.decode()
    assert Job.objects.count() == 1


def test_retry_of_a_kind_this_node_no_longer_knows_is_refused(operator):
    job = Job.objects.create(kind="gone.away", status=JobStatus.FAILED)
    response = operator.post(
        reverse("jobs:retry", args=[job.pk]), secure=True, follow=True
    )
    assert "no longer knows the job gone.away" in response.content.decode()
    assert Job.objects.count() == 1


def test_unknown_or_malformed_job_ids_are_404(operator):
    unknown = uuid.uuid4()
    assert operator.get(f"/jobs/{unknown}/", secure=True).status_code == 404
    assert operator.post(f"/jobs/{unknown}/retry/", secure=True).status_code == 404
    assert operator.get("/jobs/not-a-uuid/", secure=True).status_code == 404


def test_recent_jobs_for_the_dashboard(operator):
    from portal.jobqueue.selectors import recent_jobs

    Job.objects.create(kind="testing.tick", routine=True)
    jobs = [Job.objects.create(kind="testing.inspect") for _ in range(5)]
    recent = recent_jobs(3)
    assert [job.pk for job in recent] == [job.pk for job in reversed(jobs)][:3]


def test_a_completed_jobs_summary_reads_as_words_not_python(operator):
    job = Job.objects.create(
        kind="testing.inspect",
        status=JobStatus.COMPLETED,
        finished=timezone.now(),
        result={"switched_on": ["ircd", "onion-chat"], "failed": {}},
    )
    page = operator.get(job.get_absolute_url(), secure=True).content.decode()
    assert "switched on: <code>ircd, onion-chat</code>" in page
    assert "failed: <code>—</code>" in page
    assert "{&#x27;switched_on&#x27;" not in page and "['ircd'" not in page
