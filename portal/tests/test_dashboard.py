"""The dashboard renders from the stored snapshot, whatever state the queue is in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from portal.jobqueue import health as health_module
from portal.jobqueue.health import QueueHealth
from portal.models import Job, NodeStatus
from portal.tests.access_helpers import finish_setup, logged_in_client

pytestmark = pytest.mark.django_db

HEALTHY = QueueHealth(redis_ok=True, worker_count=1, queued=0, message="")
NO_WORKER = QueueHealth(redis_ok=True, worker_count=0, queued=3, message="no worker")
REDIS_DOWN = QueueHealth(redis_ok=False, worker_count=0, queued=0, message="down")

SNAPSHOT = {
    "version": 1,
    "host_mode": "lab",
    "namespace": "byz-n1",
    "uptime_seconds": 3 * 86400 + 4 * 3600 + 12,
    "interfaces": [
        {
            "name": "lo",
            "index": 1,
            "kind": "loopback",
            "mac": None,
            "operstate": "UNKNOWN",
            "mtu": 65536,
            "flags": ["LOOPBACK", "UP"],
            "addresses": [
                {
                    "family": "inet",
                    "address": "127.0.0.1",
                    "prefixlen": 8,
                    "scope": "host",
                }
            ],
            "rx_bytes": 1,
            "tx_bytes": 1,
            "rx_packets": 1,
            "tx_packets": 1,
        },
        {
            "name": "byz-n1-n2",
            "index": 7,
            "kind": "veth",
            "mac": "ee:b4:ce:4a:1d:58",
            "operstate": "UP",
            "mtu": 1500,
            "flags": ["UP"],
            "addresses": [
                {
                    "family": "inet",
                    "address": "10.99.0.1",
                    "prefixlen": 32,
                    "scope": "global",
                }
            ],
            "rx_bytes": 5_368_709,
            "tx_bytes": 1536,
            "rx_packets": 4021,
            "tx_packets": 12,
        },
    ],
    "interfaces_error": "",
    "babel": {
        "available": True,
        "error": "",
        "my_id": "60:a6:96:93:1d:58:de:a6",
        "neighbours": [
            {
                "id": "55ddeb663eb0",
                "address": "fe80::8013:1cff:fe86:7291",
                "interface": "byz-n1-n2",
                "reach": 0xFFF8,
                "ureach": 0,
                "rxcost": 96,
                "txcost": 96,
                "cost": 96,
                "rtt": None,
                "rttcost": None,
            }
        ],
        "route_count": 4,
        "xroute_count": 1,
    },
}


@pytest.fixture(autouse=True)
def node_is_set_up(db):
    return finish_setup(node_name="riverside")


@pytest.fixture
def queue(monkeypatch):
    """Set what the job queue's health check answers."""

    def set_health(value):
        def fake(*args, **kwargs):
            if isinstance(value, Exception):
                raise value
            return value

        monkeypatch.setattr(health_module, "queue_health", fake)

    set_health(HEALTHY)
    return set_health


def _store(age_seconds: float, data=SNAPSHOT) -> None:
    NodeStatus.store(data)
    NodeStatus.objects.update(
        collected_at=timezone.now() - timedelta(seconds=age_seconds)
    )


def test_dashboard_without_a_snapshot_says_so_and_why(queue):
    queue(NO_WORKER)
    response = logged_in_client().get("/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "No status yet" in text
    assert "no worker is running" in text
    assert "Changes cannot be applied right now." in text


def test_dashboard_shows_the_snapshot_for_people(queue):
    _store(12)
    response = logged_in_client().get("/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "riverside" in text
    assert "As of 12 seconds ago." in text
    assert "3 days 4 hours" in text
    assert "byz-n1-n2" in text and "10.99.0.1/32" in text
    assert "5.1 MiB" in text and "1.5 KiB" in text
    assert "4,021 packets" in text
    assert "fe80::8013:1cff:fe86:7291" in text
    assert "13 of 16" in text
    assert "babeld knows 4 routes." in text
    assert "127.0.0.1/8" not in text  # loopback is left out
    assert "Changes cannot be applied" not in text
    assert "These figures are old" not in text


def test_stale_snapshot_is_called_stale_with_the_reason(queue):
    queue(NO_WORKER)
    _store(600)
    text = logged_in_client().get("/").content.decode()
    assert "As of 10 minutes ago." in text
    assert "no worker is running to collect new ones" in text


def test_babeld_not_running_is_said_plainly(queue):
    data = {
        **SNAPSHOT,
        "babel": {
            "available": False,
            "error": "babeld is not running",
            "neighbours": [],
        },
    }
    _store(3, data)
    text = logged_in_client().get("/").content.decode()
    assert "could not be asked: babeld is not running" in text


@pytest.mark.parametrize("down", [REDIS_DOWN, RedisConnectionError("refused")])
def test_dashboard_renders_with_redis_down_and_says_so(queue, down):
    queue(down)
    _store(600)
    response = logged_in_client().get("/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "The job queue (Redis) is not reachable." in text
    assert "Queue down" in text


def test_dashboard_lists_recent_jobs_with_links(queue):
    job = Job.objects.create(kind="meshnet.apply_mesh", status="failed")
    text = logged_in_client().get("/").content.decode()
    # The operator reads what the job does, not its internal kind.
    assert str(job.kind_title) in text
    assert job.get_absolute_url() in text


def test_refresh_now_enqueues_the_sample_job(queue, django_capture_on_commit_callbacks):
    client = logged_in_client()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("portal:refresh_status"))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:dashboard")
    job = Job.objects.get(kind="portal.sample_status")
    assert job.user.get_username() == "operator"
    assert len(callbacks) == 1
    text = client.get("/").content.decode()
    assert "Refresh requested." in text


def test_refresh_with_no_worker_warns_that_it_waits(queue):
    queue(NO_WORKER)
    client = logged_in_client()
    client.post(reverse("portal:refresh_status"))
    assert Job.objects.filter(kind="portal.sample_status").count() == 1
    assert "no worker is running" in client.get("/").content.decode()


def test_refresh_only_by_post(queue):
    response = logged_in_client().get(reverse("portal:refresh_status"))
    assert response.status_code == 405
    assert not Job.objects.exists()


def test_dashboard_in_arabic_is_right_to_left(queue):
    _store(5)
    client = logged_in_client(headers={"accept-language": "ar"})
    text = client.get("/").content.decode()
    assert 'dir="rtl"' in text and 'lang="ar"' in text


def test_every_operator_page_has_help(queue):
    client = logged_in_client()
    for path in ("/", "/jobs/"):
        text = client.get(path).content.decode()
        assert 'class="page__help help"' in text
        assert "About this page" in text
