"""Apply with rollback: plain functions, services, jobs and pages.

The jobs run here through the job pipeline's own ``run_job`` (claim the
row, run the registered function, record the outcome); what they apply to
the node is recorded instead of run, because a unit test has no node. The
lab tests (``test_changes_lab.py``) apply for real, with a real worker.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from meshnet import change_services as services
from meshnet import jobs_changes
from meshnet.changes import (
    ChangeError,
    changed_fields,
    describe_changes,
    join_result,
    merge_proposal,
    reach_addresses,
    revert_state,
)
from meshnet.models import (
    ChangeState,
    ConfirmAttempt,
    MeshInterface,
    MeshSettings,
    PendingChange,
)
from meshnet.state import InterfaceState, MeshState
from portal.jobqueue.errors import JobFailed
from portal.jobqueue.execution import run_job
from portal.models import Job, JobStatus, NodeStatus
from portal.tests.access_helpers import HttpsClient, finish_setup, logged_in_client

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BASE = MeshState(
    node_name="library-2",
    mesh_address="10.213.0.1",
    client_subnet="10.213.1.0/24",
    babel_hmac_key="secret-key-of-the-mesh",
    interfaces=(
        InterfaceState(name="to-n2", role="mesh", medium="wired"),
        InterfaceState(name="br-lan", role="clients", medium="wired"),
    ),
)


# -- plain functions ----------------------------------------------------------


def test_a_partial_proposal_keeps_every_other_field():
    merged = merge_proposal(BASE, {"mesh_address": "10.9.8.7"})
    assert merged.mesh_address == "10.9.8.7"
    assert merged.client_subnet == BASE.client_subnet
    assert merged.interfaces == BASE.interfaces
    assert changed_fields(BASE.to_dict(), merged.to_dict()) == ["mesh_address"]


def test_a_proposal_cannot_rename_the_node_or_set_unknown_fields():
    with pytest.raises(ChangeError):
        merge_proposal(BASE, {"node_name": "evil"})
    with pytest.raises(ChangeError):
        merge_proposal(BASE, {"mesh_address; rm -rf /": "1"})
    with pytest.raises(ChangeError):
        merge_proposal(BASE, {"interfaces": [{"name": "x", "shell": "$(id)"}]})
    with pytest.raises(ChangeError):
        merge_proposal(BASE, {"interfaces": "eth0"})
    with pytest.raises(ChangeError):
        merge_proposal(BASE, "mesh_address=1.2.3.4")  # type: ignore[arg-type]
    whole = merge_proposal(BASE, MeshState(node_name="other", mesh_address="10.1.1.1"))
    assert whole.node_name == "library-2"


def test_the_description_hides_secrets_and_names_interfaces():
    after = merge_proposal(
        BASE,
        {
            "babel_hmac_key": "another-secret",
            "interfaces": [
                {"name": "to-n2", "role": "mesh", "medium": "wired"},
                {
                    "name": "wlan0",
                    "role": "mesh",
                    "medium": "ibss",
                    "essid": "mesh",
                    "channel": 1,
                    "passphrase": "hunter22hunter22",
                },
            ],
        },
    )
    lines = describe_changes(BASE.to_dict(), after.to_dict())
    text = repr(lines)
    assert "secret" not in text and "hunter22" not in text
    labels = [line.label for line in lines]
    assert labels == ["routing key", "interface br-lan", "interface wlan0"]
    assert lines[1].after == "removed"
    assert "channel=1" in lines[2].after


def test_a_rollback_restores_only_what_the_change_touched():
    proposed = merge_proposal(BASE, {"mesh_address": "10.9.8.7"})
    # Meanwhile the gateway app switched the default route on.
    current = MeshState.from_dict(
        {**proposed.to_dict(), "announce_default_route": True}
    )
    back = revert_state(current, BASE.to_dict(), proposed.to_dict())
    assert back.mesh_address == "10.213.0.1"
    assert back.announce_default_route is True


def test_the_new_addresses_are_offered_for_confirmation():
    proposed = merge_proposal(
        BASE, {"mesh_address": "10.9.8.7", "client_subnet": "10.9.9.0/24"}
    )
    assert reach_addresses(BASE.to_dict(), proposed.to_dict()) == [
        "10.9.8.7",
        "10.9.9.1",
    ]
    same = merge_proposal(BASE, {"babel_hmac_key": ""})
    assert reach_addresses(BASE.to_dict(), same.to_dict()) == []


def test_joined_needs_a_heard_neighbour_in_a_snapshot_after_the_change():
    applied = timezone.now()
    heard = {"babel": {"available": True, "neighbours": [{"reach": 0xFF00}]}}
    silent = {"babel": {"available": True, "neighbours": [{"reach": 0}]}}
    later = applied + timedelta(seconds=3)
    assert join_result(heard, later, applied).joined
    assert join_result(heard, later, applied).neighbours == 1
    assert join_result(heard, applied - timedelta(seconds=1), applied).state == (
        "unknown"
    )
    assert join_result(silent, later, applied).state == "waiting"
    down = {"babel": {"available": False, "error": "no socket"}}
    assert join_result(down, later, applied).error == "no socket"
    assert join_result(None, None, applied).state == "unknown"


# -- services and jobs ---------------------------------------------------------


def store(state: MeshState) -> None:
    services.write_state(state, list(services.SCALAR_FIELDS) + ["interfaces"])


@pytest.fixture
def node(use_redis):
    finish_setup()
    store(BASE)
    return BASE


@pytest.fixture
def applied(monkeypatch):
    """Record each state the jobs apply, instead of applying it to a node."""
    states: list[MeshState] = []

    def record() -> dict[str, Any]:
        states.append(MeshState.from_db())
        return {}

    monkeypatch.setattr(jobs_changes, "apply_to_node", record)
    return states


def run_pending() -> list[Job]:
    """Run every pending job row through the pipeline, oldest first."""
    ran = []
    for job in Job.objects.filter(status=JobStatus.PENDING).order_by("created"):
        run_job(job_id=str(job.pk), kind=job.kind)
        ran.append(Job.objects.get(pk=job.pk))
    return ran


def expire() -> Job:
    job = Job.objects.create(kind=services.EXPIRE_KIND, routine=True)
    run_job(job_id=str(job.pk), kind=job.kind)
    return Job.objects.get(pk=job.pk)


def propose(**fields: Any) -> PendingChange:
    return services.propose_change(
        kind="addresses",
        proposed=fields or {"mesh_address": "10.9.8.7"},
        deadline_seconds=30,
    )


def past_deadline(change: PendingChange) -> None:
    PendingChange.objects.filter(pk=change.pk).update(
        deadline=timezone.now() - timedelta(seconds=1)
    )


def test_a_proposal_is_stored_applied_and_waits(node, applied, use_redis):
    change = propose()
    # The apply job reached the queue (pushed when the proposal committed).
    [job_id] = use_redis.client().lrange("rq:queue:privileged", 0, -1)
    assert Job.objects.get(pk=job_id.decode()).arguments == {"change_id": change.pk}
    assert change.state == ChangeState.APPLYING
    assert change.previous["mesh_address"] == "10.213.0.1"
    assert change.proposed["mesh_address"] == "10.9.8.7"
    assert MeshSettings.load().mesh_address == "10.9.8.7"
    [job] = run_pending()
    assert job.kind == "meshnet.apply_change" and job.status == JobStatus.COMPLETED
    assert [s.mesh_address for s in applied] == ["10.9.8.7"]
    change.refresh_from_db()
    assert change.state == ChangeState.WAITING
    assert change.applied is not None
    left = (change.deadline - timezone.now()).total_seconds()
    assert 25 < left <= 30


def test_an_unconfirmed_change_is_rolled_back_after_its_deadline(node, applied):
    change = propose()
    run_pending()
    assert expire().result == {"rolled_back": []}  # not yet
    past_deadline(change)
    job = expire()
    assert job.status == JobStatus.COMPLETED
    assert job.result == {"rolled_back": [change.pk]}
    change.refresh_from_db()
    assert change.state == ChangeState.ROLLED_BACK
    assert "not confirmed in time" in change.message
    assert MeshSettings.load().mesh_address == "10.213.0.1"
    assert [s.mesh_address for s in applied] == ["10.9.8.7", "10.213.0.1"]
    assert expire().result == {"rolled_back": []}  # once only


def test_a_confirmed_change_stays_after_its_deadline(node, applied):
    change = propose()
    run_pending()
    confirmed = services.confirm_change(change_id=change.pk, token=change.token)
    assert confirmed.state == ChangeState.CONFIRMED
    past_deadline(change)
    expire()
    change.refresh_from_db()
    assert change.state == ChangeState.CONFIRMED
    assert MeshSettings.load().mesh_address == "10.9.8.7"
    assert len(applied) == 1


def test_a_rolled_back_address_change_also_restores_how_they_were_chosen(node, applied):
    row = MeshSettings.load()
    row.address_origin = "auto"
    row.save()
    change = services.propose_change(
        kind="addresses",
        proposed={"mesh_address": "10.9.8.7", "address_origin": "manual"},
        deadline_seconds=30,
    )
    run_pending()
    assert MeshSettings.load().address_origin == "manual"
    past_deadline(change)
    expire()
    row.refresh_from_db()
    assert (row.mesh_address, row.address_origin) == ("10.213.0.1", "auto")


def test_a_rollback_keeps_what_another_part_changed_meanwhile(node, applied):
    change = propose()
    run_pending()
    row = MeshSettings.load()
    row.announce_default_route = True
    row.save()
    past_deadline(change)
    expire()
    row.refresh_from_db()
    assert row.mesh_address == "10.213.0.1"
    assert row.announce_default_route is True


def test_interfaces_come_back_as_they_were(node, applied):
    change = services.propose_change(
        kind="interfaces",
        proposed={
            "interfaces": [
                InterfaceState(
                    name="wlan0", role="mesh", medium="ibss", essid="m", channel=6
                )
            ]
        },
    )
    assert list(MeshInterface.objects.values_list("name", flat=True)) == ["wlan0"]
    run_pending()
    past_deadline(change)
    expire()
    assert sorted(MeshInterface.objects.values_list("name", flat=True)) == [
        "br-lan",
        "to-n2",
    ]


def test_a_failed_apply_is_undone_at_once(node, monkeypatch):
    calls: list[str | None] = []

    def failing() -> None:
        calls.append(MeshState.from_db().mesh_address)
        if len(calls) == 1:
            raise JobFailed("babeld refused its configuration")

    monkeypatch.setattr(jobs_changes, "apply_to_node", failing)
    change = propose()
    [job] = run_pending()
    assert job.status == JobStatus.FAILED
    assert "babeld refused" in job.error and "restored" in job.error
    change.refresh_from_db()
    assert change.state == ChangeState.FAILED
    assert "babeld refused" in change.message
    assert calls == ["10.9.8.7", "10.213.0.1"]
    assert MeshSettings.load().mesh_address == "10.213.0.1"


def test_a_change_whose_apply_never_finished_is_rolled_back(node, applied):
    # The worker died in the middle of applying: the row was marked errored
    # and the change stayed "applying" past its first deadline.
    change = propose()
    Job.objects.filter(kind="meshnet.apply_change").update(status=JobStatus.ERRORED)
    past_deadline(change)
    expire()
    change.refresh_from_db()
    assert change.state == ChangeState.ROLLED_BACK
    assert MeshSettings.load().mesh_address == "10.213.0.1"


def test_only_one_change_is_open_at_a_time(node, applied):
    propose()
    with pytest.raises(ChangeError, match="still waiting"):
        propose(client_subnet="10.5.5.0/24")
    assert PendingChange.objects.count() == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"mesh_address": "10.9.8.7; reboot"},
        {"mesh_address": "$(reboot)"},
        {"mesh_address": "10.9.8.7\n"},
        {"client_subnet": "x" * 400},
        {"mesh_domain": "mesh domain"[:0] + "é" * 100},
        {"dhcp_lease_seconds": "soon"},
        {"interfaces": [{"name": "eth0 $(id)", "role": "mesh", "medium": "wired"}]},
        {"interfaces": [{"name": "eth0", "role": "root", "medium": "wired"}]},
        {
            "interfaces": [
                {"name": "wlan0", "role": "mesh", "medium": "ibss", "essid": "e" * 33}
            ]
        },
        {"interfaces": [{"name": "eth0", "role": "mesh", "medium": "wired"}] * 2},
        {"mesh_address": "10.213.0.1"},  # changes nothing
        {},
    ],
)
def test_a_bad_proposal_is_refused_and_changes_nothing(node, fields):
    before = MeshState.from_db()
    with pytest.raises(ChangeError) as caught:
        services.propose_change(kind="addresses", proposed=fields)
    assert str(caught.value.message)
    assert PendingChange.objects.count() == 0
    assert Job.objects.count() == 0
    assert MeshState.from_db() == before


@pytest.mark.parametrize(
    "kind,seconds",
    [
        ("bad kind", 30),
        ("x" * 40, 30),
        ("addresses", 0),
        ("addresses", 601),
        ("addresses", "90"),
        ("addresses", True),
    ],
)
def test_a_bad_kind_or_window_is_refused(node, kind, seconds):
    with pytest.raises(ChangeError):
        services.propose_change(
            kind=kind, proposed={"mesh_address": "10.9.8.7"}, deadline_seconds=seconds
        )
    assert PendingChange.objects.count() == 0


def test_the_default_window_is_the_operators_setting(node, applied):
    services.update_rollback_seconds(seconds=45)
    change = services.propose_change(
        kind="addresses", proposed={"mesh_address": "10.9.8.7"}
    )
    assert change.window_seconds == 45
    with pytest.raises(ChangeError):
        services.update_rollback_seconds(seconds=29)
    assert MeshSettings.load().rollback_seconds == 45


# -- confirmation by token -----------------------------------------------------


def waiting_change(applied: list[MeshState]) -> PendingChange:
    change = propose()
    run_pending()
    change.refresh_from_db()
    assert change.state == ChangeState.WAITING
    return change


def test_confirmation_works_without_a_session_from_another_client(node, applied):
    change = waiting_change(applied)
    stranger = HttpsClient(enforce_csrf_checks=True, REMOTE_ADDR="10.9.9.50")
    page = stranger.get(
        reverse("meshnet:change_confirm", args=[change.pk, change.token])
    )
    assert page.status_code == 200
    assert b"Keep the change" in page.content
    assert 'http-equiv="refresh"' in page.content.decode()
    csrf = page.cookies["csrftoken"].value
    answer = stranger.post(
        reverse("meshnet:change_confirm_post", args=[change.pk]),
        {"token": change.token, "action": "confirm", "csrfmiddlewaretoken": csrf},
        HTTP_ORIGIN="https://10.9.8.7",
        HTTP_HOST="10.9.8.7",
    )
    assert answer.status_code == 302, answer.content
    change.refresh_from_db()
    assert change.state == ChangeState.CONFIRMED
    result = stranger.get(answer["Location"])
    assert b"confirmed and stays" in result.content


def test_a_form_from_another_site_is_refused_by_csrf(node, applied):
    change = waiting_change(applied)
    stranger = HttpsClient(enforce_csrf_checks=True)
    answer = stranger.post(
        reverse("meshnet:change_confirm_post", args=[change.pk]),
        {"token": change.token, "action": "confirm"},
        HTTP_ORIGIN="https://evil.example",
    )
    assert answer.status_code == 403
    change.refresh_from_db()
    assert change.state == ChangeState.WAITING


def test_a_reused_token_gets_a_clear_message_and_changes_nothing(node, applied):
    change = waiting_change(applied)
    client = HttpsClient()
    url = reverse("meshnet:change_confirm_post", args=[change.pk])
    assert client.post(url, {"token": change.token}).status_code == 302
    again = client.post(url, {"token": change.token, "action": "rollback"})
    assert again.status_code == 409
    assert b"already confirmed" in again.content
    change.refresh_from_db()
    assert change.state == ChangeState.CONFIRMED
    assert ConfirmAttempt.objects.count() == 0


def test_an_expired_token_gets_a_clear_message_and_changes_nothing(node, applied):
    change = waiting_change(applied)
    past_deadline(change)
    answer = HttpsClient().post(
        reverse("meshnet:change_confirm_post", args=[change.pk]),
        {"token": change.token, "action": "confirm"},
    )
    assert answer.status_code == 409
    assert b"Too late" in answer.content
    change.refresh_from_db()
    assert change.state == ChangeState.WAITING
    expire()
    change.refresh_from_db()
    assert change.state == ChangeState.ROLLED_BACK
    page = HttpsClient().get(
        reverse("meshnet:change_confirm", args=[change.pk, change.token])
    )
    assert b"Rolled back" in page.content and b"not confirmed in time" in page.content


@pytest.mark.parametrize(
    "token",
    ["wrong", "A" * 32, "x" * 65, "tok en", "tok;en", "$(reboot)", "é" * 10, ""],
)
def test_a_wrong_token_is_refused_and_counted(node, applied, token):
    change = waiting_change(applied)
    answer = HttpsClient().post(
        reverse("meshnet:change_confirm_post", args=[change.pk]),
        {"token": token, "action": "confirm"},
    )
    assert answer.status_code == 404
    assert b"not valid" in answer.content or b"incomplete" in answer.content
    change.refresh_from_db()
    assert change.state == ChangeState.WAITING
    # A token the form accepts is checked and the miss counted (an empty or
    # over-long one never gets that far).
    assert ConfirmAttempt.objects.count() == (1 if 0 < len(token) <= 64 else 0)


def test_wrong_tokens_are_throttled_per_address(node, applied):
    change = waiting_change(applied)
    guesser = HttpsClient(REMOTE_ADDR="10.9.9.66")
    for attempt in range(services.CONFIRM_ATTEMPT_LIMIT):
        if attempt % 2:
            page = guesser.get(
                reverse("meshnet:change_confirm", args=[change.pk, "guess"])
            )
        else:
            page = guesser.post(
                reverse("meshnet:change_confirm_post", args=[change.pk]),
                {"token": f"guess{attempt}"},
            )
        assert page.status_code == 404
    blocked = guesser.post(
        reverse("meshnet:change_confirm_post", args=[change.pk]),
        {"token": change.token},
    )
    assert blocked.status_code == 429
    change.refresh_from_db()
    assert change.state == ChangeState.WAITING
    # Someone else (the operator on another address) is not blocked.
    other = HttpsClient(REMOTE_ADDR="10.9.9.1").post(
        reverse("meshnet:change_confirm_post", args=[change.pk]),
        {"token": change.token},
    )
    assert other.status_code == 302


def test_the_token_of_one_change_does_not_confirm_another(node, applied):
    first = waiting_change(applied)
    services.confirm_change(change_id=first.pk, token=first.token)
    second = propose(mesh_address="10.9.8.8")
    run_pending()
    with pytest.raises(services.ConfirmRefused) as caught:
        services.confirm_change(change_id=second.pk, token=first.token)
    assert caught.value.reason == "unknown"


def test_undo_now_rolls_back_on_the_next_run(node, applied):
    change = waiting_change(applied)
    answer = HttpsClient().post(
        reverse("meshnet:change_confirm_post", args=[change.pk]),
        {"token": change.token, "action": "rollback"},
    )
    assert answer.status_code == 302
    run_pending()  # the expiry job queued by the undo
    change.refresh_from_db()
    assert change.state == ChangeState.ROLLED_BACK
    assert change.message == "Rolled back by the operator."
    assert MeshSettings.load().mesh_address == "10.213.0.1"


# -- pages -------------------------------------------------------------------


def test_the_change_page_shows_what_changed_and_the_countdown(node, applied):
    change = waiting_change(applied)
    page = logged_in_client().get(change.get_absolute_url())
    text = page.content.decode()
    assert page.status_code == 200
    assert "10.213.0.1" in text and "10.9.8.7" in text
    assert timezone.localtime(change.deadline).strftime("%H:%M:%S") in text
    port = settings.PORTAL.https_port
    netloc = "10.9.8.7" if port == 443 else f"10.9.8.7:{port}"
    confirm = f"https://{netloc}/mesh/changes/{change.pk}/confirm/{change.token}/"
    assert confirm in text
    assert "secret-key-of-the-mesh" not in text
    assert 'http-equiv="refresh"' in text


def test_the_change_page_needs_a_login_but_the_token_page_does_not(node, applied):
    change = waiting_change(applied)
    anonymous = HttpsClient()
    assert anonymous.get(change.get_absolute_url()).status_code == 302
    token_page = anonymous.get(
        reverse("meshnet:change_confirm", args=[change.pk, change.token])
    )
    assert token_page.status_code == 200


def test_the_result_says_the_node_joined_the_mesh_once_neighbours_appear(node, applied):
    change = waiting_change(applied)
    services.confirm_change(change_id=change.pk, token=change.token)
    url = reverse("meshnet:change_confirm", args=[change.pk, change.token])
    NodeStatus.store({"babel": {"available": True, "neighbours": []}})
    page = HttpsClient().get(url).content.decode()
    assert "No neighbour heard yet" in page
    assert 'http-equiv="refresh"' in page
    NodeStatus.store(
        {"babel": {"available": True, "neighbours": [{"reach": 65535, "id": "x"}]}}
    )
    page = HttpsClient().get(url).content.decode()
    assert "This node joined the mesh." in page
    assert "1 neighbour" in page
    assert 'http-equiv="refresh"' not in page


@pytest.mark.parametrize(
    "path",
    [
        "/mesh/changes/99999999999999999999999/",
        "/mesh/changes/0/",
        "/mesh/changes/5/confirm/%00%0a/",
        "/mesh/changes/99999999999999999999999/confirm/abc/",
        "/mesh/changes/1/confirm/" + "a" * 500 + "/",
    ],
)
def test_bad_addresses_give_no_server_error(node, path):
    for client in (logged_in_client(), HttpsClient()):
        assert client.get(path).status_code in (302, 404)
        assert client.post(path, {"token": "\x00"}).status_code in (302, 403, 404, 405)


def test_bad_posts_give_no_server_error(node, applied):
    change = waiting_change(applied)
    url = reverse("meshnet:change_confirm_post", args=[change.pk])
    client = HttpsClient()
    assert client.get(url).status_code == 405
    assert client.post(url, {}).status_code == 404
    assert (
        client.post(url, {"token": change.token, "action": "reboot"}).status_code == 404
    )
    assert (
        client.post("/mesh/changes/999999/confirm/", {"token": "x"}).status_code == 404
    )


def test_the_time_to_confirm_is_adjusted_on_the_changes_page(node):
    client = logged_in_client()
    url = reverse("meshnet:change_list")
    assert client.get(url).status_code == 200
    for bad in ("29", "601", "soon", "", "1e3"):
        answer = client.post(url, {"seconds": bad})
        assert answer.status_code == 400, bad
    assert MeshSettings.load().rollback_seconds == 90
    assert client.post(url, {"seconds": "120"}).status_code == 302
    assert MeshSettings.load().rollback_seconds == 120


def test_the_changes_page_needs_a_login(node):
    answer = Client().get(reverse("meshnet:change_list"), secure=True)
    assert answer.status_code == 302 and "/login" in answer["Location"]


def test_the_expiry_job_runs_on_every_tick_of_the_worker():
    from portal.jobqueue import registry
    from portal.jobqueue.rq import TICK

    registry.load()
    entry = registry.get(services.EXPIRE_KIND)
    assert entry is not None and entry.routine
    assert entry.every is not None and entry.every < TICK


@pytest.mark.parametrize("language", ["ar", "fr", "es"])
def test_the_change_pages_render_in_every_language(node, applied, language):
    change = waiting_change(applied)
    client = logged_in_client()
    client.cookies["django_language"] = language
    for url in (
        change.get_absolute_url(),
        reverse("meshnet:change_confirm", args=[change.pk, change.token]),
        reverse("meshnet:change_list"),
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert f'lang="{language}"' in page.content.decode()
