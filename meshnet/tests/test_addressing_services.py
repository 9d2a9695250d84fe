"""Address services, jobs and the page, with the database and a real Redis.

Jobs run in this process through the worker's own entry point
(:func:`portal.jobqueue.execution.run_job`) against a recording host and a
fake babeld socket (see test_addressing), so what they store and how they
fail is what the operator would see.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from meshnet import address_services, jobs_addresses
from meshnet.addressing import AddressInputError, candidate_for
from meshnet.models import AddressOrigin, MeshSettings, PendingChange
from meshnet.tests.test_addressing import (  # noqa: F401 - fixture
    HEADER,
    SEED,
    babel_text,
    babeld_socket,
    node_host,
)
from portal.jobqueue.execution import run_job
from portal.models import Job, JobStatus
from portal.tests.access_helpers import finish_setup, logged_in_client

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def node(tmp_path, monkeypatch, settings, babeld_socket, use_redis):  # noqa: F811
    """The managed node: recorded ``ip`` answers and a fake babeld.

    Returns a function that sets what babeld announces and which addresses
    answer ARP probes, and returns the recording runner.
    """

    def configure(routes=(), xroutes=(), answering=frozenset()):
        host, runner = node_host(tmp_path, answering=set(answering))
        settings.BABELD_SOCKET = babeld_socket(
            HEADER + babel_text(list(routes), list(xroutes))
        )
        monkeypatch.setattr(jobs_addresses, "current_host", lambda: host)
        return runner

    return configure


def run(job: Job) -> Job:
    run_job(job_id=str(job.pk), kind=job.kind)
    job.refresh_from_db()
    return job


def store(mesh: str, subnet: str, origin: str = AddressOrigin.MANUAL) -> None:
    row = MeshSettings.load()
    row.mesh_address, row.client_subnet, row.address_origin = mesh, subnet, origin
    row.save()


def test_choose_job_stores_the_first_free_candidate(node):
    node()
    job = run(address_services.choose_addresses(user=None))
    assert job.status == JobStatus.COMPLETED, job.error
    first = candidate_for(SEED, 0)
    row = MeshSettings.load()
    assert row.mesh_address == str(first.mesh_address)
    assert row.client_subnet == str(first.client_subnet)
    assert row.address_origin == AddressOrigin.AUTOMATIC
    assert row.addresses_checked_at is not None
    notes = [e["text"] for e in job.log if e["type"] == "note"]
    assert any("Candidate 1" in text and "free" in text for text in notes)
    assert job.result["mesh_address"] == str(first.mesh_address)


def test_choice_survives_a_restart_and_the_same_seed_asks_for_the_same_addresses(
    node,
):
    node()
    run(address_services.choose_addresses(user=None))
    first = MeshSettings.load()
    # A restart: a fresh read of the row, and the node choosing again with the
    # same hardware (same seed) while babeld announces its own addresses.
    node(xroutes=[f"{first.mesh_address}/32", first.client_subnet])
    job = run(address_services.choose_addresses(user=None))
    assert job.status == JobStatus.COMPLETED, job.error
    again = MeshSettings.objects.get(pk=first.pk)
    assert (again.mesh_address, again.client_subnet) == (
        first.mesh_address,
        first.client_subnet,
    )


def test_choose_job_takes_the_next_candidate_when_the_first_is_announced(node):
    first, second = candidate_for(SEED, 0), candidate_for(SEED, 1)
    node(routes=[(str(first.client_subnet), "aa:00:00:00:00:00:00:07")])
    job = run(address_services.choose_addresses(user=None))
    assert job.status == JobStatus.COMPLETED
    assert MeshSettings.load().client_subnet == str(second.client_subnet)
    notes = " ".join(e["text"] for e in job.log if e["type"] == "note")
    assert f"Candidate 1, {first}: taken" in notes
    assert "aa:00:00:00:00:00:00:07" in notes


def test_choose_job_fails_clearly_when_every_candidate_is_taken(node):
    store("10.42.7.99", "10.42.8.0/24")
    node(routes=[("10.0.0.0/8", "aa:00:00:00:00:00:00:08")])
    job = run(address_services.choose_addresses(user=None))
    assert job.status == JobStatus.FAILED
    assert "candidates is taken" in job.error and "by hand" in job.error
    row = MeshSettings.load()
    assert (row.mesh_address, row.client_subnet) == ("10.42.7.99", "10.42.8.0/24")


def test_manual_addresses_with_a_clash_are_explained_and_change_nothing(node):
    store("10.42.7.99", "10.42.8.0/24")
    before = MeshSettings.load()
    node(routes=[("10.77.3.0/24", "aa:00:00:00:00:00:00:09")])
    job = run(
        address_services.set_addresses_manually(
            mesh_address="10.77.0.5", client_subnet="10.77.3.0/24", user=None
        )
    )
    assert job.status == JobStatus.FAILED
    assert "nothing was changed" in job.error
    assert "10.77.3.0/24" in job.error and "aa:00:00:00:00:00:00:09" in job.error
    after = MeshSettings.load()
    assert (after.mesh_address, after.client_subnet, after.address_origin) == (
        before.mesh_address,
        before.client_subnet,
        before.address_origin,
    )
    assert after.addresses_checked_at == before.addresses_checked_at


def test_manual_address_answering_a_probe_is_refused(node):
    runner = node(answering={"10.77.0.5"})
    job = run(
        address_services.set_addresses_manually(
            mesh_address="10.77.0.5", client_subnet="10.77.3.0/24", user=None
        )
    )
    assert job.status == JobStatus.FAILED
    assert "a device answered on to-n1" in job.error
    assert MeshSettings.load().mesh_address is None
    assert ("arping", "-0", "-C", "1", "-c", "3", "-w", "3", "-i", "to-n1",
            "10.77.0.5") in runner.argvs  # fmt: skip


def test_free_manual_addresses_are_stored_as_set_by_the_operator(node):
    node()
    job = run(
        address_services.set_addresses_manually(
            mesh_address="172.20.0.5/32", client_subnet="192.168.77.16/28", user=None
        )
    )
    assert job.status == JobStatus.COMPLETED, job.error
    row = MeshSettings.load()
    assert (row.mesh_address, row.client_subnet) == ("172.20.0.5", "192.168.77.16/28")
    assert row.address_origin == AddressOrigin.MANUAL


def test_check_job_validates_its_arguments_again(node):
    from portal.jobqueue.services import enqueue_job

    node()
    job = run(
        enqueue_job(
            kind=address_services.CHECK_KIND,
            arguments={"mesh_address": "10.1.1.1;reboot", "client_subnet": "x"},
        )
    )
    assert job.status == JobStatus.FAILED and "10.1.1.1;reboot" in job.error
    assert MeshSettings.load().mesh_address is None


def test_first_addresses_are_applied_by_the_mesh_apply_job(node):
    node()
    job = run(address_services.choose_addresses(user=None))
    assert job.status == JobStatus.COMPLETED, job.error
    apply = Job.objects.get(kind=address_services.APPLY_KIND)
    notes = " ".join(e["text"] for e in job.log if e["type"] == "note")
    assert str(apply.pk) in notes
    assert not PendingChange.objects.exists()


def test_new_addresses_of_a_running_node_go_through_apply_with_rollback(node):
    store("10.42.7.99", "10.42.8.0/24", AddressOrigin.MANUAL)
    node()
    job = run(address_services.choose_addresses(user=None))
    assert job.status == JobStatus.COMPLETED, job.error
    change = PendingChange.objects.get()
    assert change.kind == "addresses"
    assert change.previous["mesh_address"] == "10.42.7.99"
    first = candidate_for(SEED, 0)
    assert change.proposed["client_subnet"] == str(first.client_subnet)
    row = MeshSettings.load()
    assert row.mesh_address == str(first.mesh_address)
    assert row.address_origin == AddressOrigin.AUTOMATIC
    notes = " ".join(e["text"] for e in job.log if e["type"] == "note")
    assert change.get_absolute_url() in notes
    assert job.result["change"] == change.pk


def test_an_open_change_refuses_new_addresses_and_nothing_is_stored(node):
    store("10.42.7.99", "10.42.8.0/24", AddressOrigin.MANUAL)
    PendingChange.objects.create(
        kind="interfaces", deadline=PendingChange.deadline_after(90)
    )
    node()
    job = run(address_services.choose_addresses(user=None))
    assert job.status == JobStatus.FAILED
    assert "still waiting for confirmation" in job.error
    row = MeshSettings.load()
    assert (row.mesh_address, row.address_origin) == ("10.42.7.99", "manual")


@pytest.mark.parametrize(
    "mesh", ["10.1.1.1; reboot", "$(reboot)", "10.1.1.1\n", "8.8.8.8", "fd00::1"]
)
def test_hostile_manual_input_queues_nothing(mesh, use_redis):
    with pytest.raises(AddressInputError):
        address_services.set_addresses_manually(
            mesh_address=mesh, client_subnet="10.42.8.0/24", user=None
        )
    assert not Job.objects.exists()


# -- the page --


@pytest.fixture
def client(use_redis):
    finish_setup()
    return logged_in_client()


def test_page_needs_a_login(use_redis):
    from portal.tests.access_helpers import HttpsClient

    finish_setup()
    response = HttpsClient().get(reverse("meshnet:addresses"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_page_shows_current_addresses_origin_and_help(client):
    store("10.42.7.99", "10.42.8.0/24", AddressOrigin.AUTOMATIC)
    response = client.get(reverse("meshnet:addresses"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "10.42.7.99" in page and "10.42.8.0/24" in page and "10.42.8.1" in page
    assert "chosen by the node" in page
    assert "What happens on apply" in page
    assert reverse("meshnet:addresses_choose") in page


def test_page_shows_why_the_last_attempt_failed(client):
    job = Job.objects.create(
        kind=address_services.CHECK_KIND,
        status=JobStatus.FAILED,
        error="These addresses are taken; nothing was changed.",
    )
    page = client.get(reverse("meshnet:addresses")).content.decode()
    assert "These addresses are taken; nothing was changed." in page
    assert job.get_absolute_url() in page


def test_choose_button_queues_a_job_and_follows_it(client):
    response = client.post(reverse("meshnet:addresses_choose"))
    job = Job.objects.get()
    assert job.kind == address_services.CHOOSE_KIND
    assert (
        response.status_code == 302 and response["Location"] == job.get_absolute_url()
    )


def test_manual_form_queues_a_check_with_canonical_addresses(client):
    response = client.post(
        reverse("meshnet:addresses_manual"),
        {"mesh_address": "10.42.7.99/32", "client_subnet": "10.42.8.0/24"},
    )
    job = Job.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == job.get_absolute_url()
    )
    assert job.kind == address_services.CHECK_KIND
    assert job.arguments["mesh_address"] == "10.42.7.99"
    assert job.arguments["client_subnet"] == "10.42.8.0/24"


@pytest.mark.parametrize(
    ("mesh", "subnet", "message"),
    [
        ("10.42.7.99;reboot", "10.42.8.0/24", "is not an IPv4 address"),
        ("$(reboot)", "10.42.8.0/24", "is not an IPv4 address"),
        ("10.42.7.99\nreboot", "10.42.8.0/24", "is not an IPv4 address"),
        ("fd00::1", "10.42.8.0/24", "IPv6"),
        ("8.8.8.8", "10.42.8.0/24", "not a private address"),
        ("10.42.7.99", "10.42.8.1/24", "did you mean 10.42.8.0/24"),
        ("10.42.7.99", "10.42.0.0/16", "not a /16"),
        ("10.42.7.99", "10.42.7.0/24", "must not overlap"),
        ("1" * 200, "10.42.8.0/24", "at most"),
        ("ünï", "10.42.8.0/24", "is not an IPv4 address"),
    ],
)
def test_manual_form_refuses_bad_input_with_a_message_and_queues_nothing(
    client, mesh, subnet, message
):
    from django.utils.html import escape

    store("10.1.2.3", "10.1.3.0/24")
    response = client.post(
        reverse("meshnet:addresses_manual"),
        {"mesh_address": mesh, "client_subnet": subnet},
    )
    assert response.status_code == 400
    assert escape(message) in response.content.decode()
    assert not Job.objects.exists()
    row = MeshSettings.load()
    assert (row.mesh_address, row.client_subnet) == ("10.1.2.3", "10.1.3.0/24")


def test_page_points_to_an_address_change_waiting_for_confirmation(client):
    change = PendingChange.objects.create(
        kind="addresses", deadline=PendingChange.deadline_after(90)
    )
    page = client.get(reverse("meshnet:addresses")).content.decode()
    assert "must be confirmed" in page and change.get_absolute_url() in page
