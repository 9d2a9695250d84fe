"""The gateway page, its form, services and jobs: good input saved and a job
queued on commit; hostile input refused with a message and nothing changed;
the check job moves the announcement and the captive portal on a change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gateway import jobs, selectors, services
from gateway.health import UplinkHealth
from gateway.models import GatewaySettings
from meshnet.models import DirectoryEntry, MeshInterface, MeshSettings
from portal.models import Job
from portal.tests.access_helpers import finish_setup, logged_in_client

pytestmark = pytest.mark.django_db

GOOD = {
    "uplink_interface": "eth0",
    "addressing": "dhcp",
    "static_address": "",
    "static_router": "",
    "sharing": "on",
    "dns_mode": "uplink",
    "dns_servers": "",
    "check_targets": "9.9.9.9, 1.1.1.1",
    "check_interval_seconds": "10",
    "fail_threshold": "3",
    "pass_threshold": "2",
}


@pytest.fixture
def operator():  # type: ignore[no-untyped-def]
    finish_setup()
    MeshSettings.objects.update_or_create(
        pk=1, defaults={"client_subnet": "10.213.1.0/24", "mesh_address": "10.213.0.1"}
    )
    MeshInterface.objects.create(name="wlan0", role="mesh", medium="ibss")
    return logged_in_client()


def test_the_page_needs_a_login_and_is_in_the_navigation(operator):
    from django.test import Client

    assert Client().get("/gateway/").status_code in (301, 302)
    page = operator.get("/gateway/").content.decode()
    assert 'href="/gateway/"' in page and 'aria-current="page"' in page
    assert "Interfaces that could be an uplink" in page
    assert "none chosen" in page


def test_candidates_from_the_last_scan_are_listed(operator):
    row = GatewaySettings.load()
    row.candidates = [
        {"name": "usb0", "kind": "ether", "carrier": True,
         "addresses": ["192.168.42.17/24"], "default_route": True,
         "gateway": "192.168.42.129", "lease": True},
    ]  # fmt: skip
    row.save()
    page = operator.get("/gateway/").content.decode()
    assert "usb0" in page and "192.168.42.17/24" in page and "DHCP lease" in page


def test_saving_stores_the_settings_and_queues_the_apply_on_commit(
    operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator.post("/gateway/save/", GOOD)
    assert response.status_code == 302
    job = Job.objects.get(kind="gateway.apply")
    assert response["Location"] == job.get_absolute_url()
    assert callbacks  # pushed to Redis only once the row is committed
    row = GatewaySettings.load()
    assert row.uplink_interface == "eth0" and row.sharing
    assert row.check_targets == ["9.9.9.9", "1.1.1.1"]
    # No check has passed yet: nothing is announced.
    assert not MeshSettings.load().announce_default_route


def test_a_static_uplink_is_stored_normalised(operator):
    data = {**GOOD, "addressing": "static", "static_address": "192.0.2.7/24",
            "static_router": "192.0.2.1"}  # fmt: skip
    assert operator.post("/gateway/save/", data).status_code == 302
    row = GatewaySettings.load()
    assert (row.static_address, row.static_router) == ("192.0.2.7/24", "192.0.2.1")


HOSTILE = [
    ("uplink_interface", "eth0; reboot", "not an interface name"),
    ("uplink_interface", "$(reboot)", "not an interface name"),
    ("uplink_interface", "eth0\nflush", "not an interface name"),
    ("uplink_interface", "eth 0", "not an interface name"),
    ("uplink_interface", "éth0", "not an interface name"),
    ("uplink_interface", "x" * 40, "not an interface name"),
    ("uplink_interface", "wlan0", "belongs to the mesh"),
    ("dns_servers", "9.9.9.9; rm -rf /", "not an IP address"),
    ("dns_servers", "1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5", "At most 4"),
    ("dns_servers", "$(curl evil)", "not an IP address"),
    ("check_targets", "example.org", "not an IP address"),
    ("check_targets", "10.0.0.1", "not a public IPv4"),
    ("check_targets", "", "required"),
    ("check_targets", "9.9.9.9\n8.8.8.8" + " " * 300, "at most 240 characters"),
    ("dns_servers", "9.9.9.9 " * 26, "At most 200 characters"),
    ("check_interval_seconds", "1", "greater than or equal to 5"),
    ("fail_threshold", "0", "greater than or equal to 1"),
]


@pytest.mark.parametrize("field,value,message", HOSTILE)
def test_hostile_values_are_refused_with_a_message_and_change_nothing(
    operator, field, value, message
):
    before = GatewaySettings.load()
    response = operator.post("/gateway/save/", {**GOOD, field: value})
    assert response.status_code == 400
    assert message in response.content.decode()
    after = GatewaySettings.load()
    assert after.uplink_interface == before.uplink_interface == ""
    assert not Job.objects.filter(kind="gateway.apply").exists()


@pytest.mark.parametrize(
    "changes,field,message",
    [
        ({"addressing": "static", "static_address": "192.0.2.7"}, "static_address",
         "IPv4 address with its prefix"),
        ({"addressing": "static", "static_address": "192.0.2.7/24",
          "static_router": "198.51.100.1"}, "static_address", "is not another address"),
        ({"dns_mode": "custom", "dns_servers": ""}, "dns_servers", "at least one DNS"),
        ({"uplink_interface": ""}, "sharing", "Choose the uplink interface first"),
        ({"sharing": "", "tor_enabled": "on"}, "tor_enabled", "needs sharing"),
        ({"onion_services": ["pad"]}, "onion_services", "Select a valid choice"),
    ],
)  # fmt: skip
def test_inconsistent_settings_are_refused(operator, changes, field, message):
    response = operator.post("/gateway/save/", {**GOOD, **changes})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Job.objects.filter(kind="gateway.apply").exists()


def test_onion_choices_are_the_catalogues_onion_services():
    ids = [service_id for service_id, _name in selectors.onion_service_choices()]
    assert "ircd" in ids and "library" in ids
    assert "pad" not in ids and "onion-chat" not in ids
    (choice,) = selectors.onion_choices_for(["ircd", "pad", "nope"])
    assert choice.name == "ircd" and choice.port == 6667


def test_dashboard_says_plainly_how_the_mesh_reaches_the_internet(operator):
    page = operator.get("/").content.decode()
    assert "Internet" in page and "No uplink chosen." in page
    row = GatewaySettings.load()
    row.uplink_interface, row.sharing, row.uplink_online = "eth0", True, True
    row.save()
    assert ">direct<" in operator.get("/").content.decode()
    row.tor_enabled = True
    row.save()
    page = operator.get("/").content.decode()
    assert "Internet via Tor" in page and "tor is not running" in page
    row.tor_progress = 5
    row.save()
    for url in ("/", "/gateway/"):
        assert "Tor is still connecting: 5%" in operator.get(url).content.decode()
    row.tor_progress = 100
    row.save()
    page = operator.get("/").content.decode()
    assert "Internet via Tor" in page and "connecting" not in page
    row.uplink_online = False
    row.save()
    page = operator.get("/").content.decode()
    assert ">none<" in page and "The uplink check fails" in page


# -- upstream DNS from the database -------------------------------------------


def test_other_nodes_forward_to_the_gateways_the_directory_knows(operator):
    now = timezone.now()
    for name, subnet, gateway in (("alpha", "10.9.1.0/24", True),
                                  ("beta", "10.9.2.0/24", False)):  # fmt: skip
        DirectoryEntry.objects.create(
            address=f"10.9.0.{subnet[5]}", name=name, client_subnet=subnet,
            gateway=gateway, last_seen=now, expires=now + timedelta(minutes=5),
        )  # fmt: skip
    assert selectors.dns_upstream_servers() == ("10.9.1.1",)
    from meshnet.state import MeshState

    state = MeshState.from_db()
    assert state.upstream_servers == ("10.9.1.1",) and not state.dns_for_mesh


def test_a_working_gateway_uses_its_leases_resolvers(operator):
    row = GatewaySettings.load()
    row.uplink_interface, row.sharing, row.uplink_online = "eth0", True, True
    row.lease_dns_servers = ["192.168.1.1"]
    row.save()
    assert selectors.dns_upstream_servers() == ("192.168.1.1",)
    row.tor_enabled = True
    row.save()
    assert selectors.dns_upstream_servers() == ("10.213.1.1#9053",)


# -- the uplink check job -----------------------------------------------------


@pytest.fixture
def checking(operator, monkeypatch):
    row = GatewaySettings.load()
    row.uplink_interface, row.sharing, row.addressing = "eth0", True, "static"
    row.save()
    answers: list[bool] = []
    monkeypatch.setattr(jobs.health, "check_uplink", lambda host, i, t: answers.pop(0))
    monkeypatch.setattr(jobs, "_scan", lambda host, row: [])
    captive_calls: list[bool] = []
    import captive.services

    monkeypatch.setattr(
        captive.services, "uplink_state_set",
        lambda *, online: captive_calls.append(online),
    )  # fmt: skip
    return answers, captive_calls


def _online_gateway():
    """The gateway as it is after its uplink check passed: online, announced."""
    row = GatewaySettings.load()
    row.uplink_online = True
    row.health = UplinkHealth(online=True).to_dict()
    row.save()
    MeshSettings.objects.update(announce_default_route=True)


def _due():
    GatewaySettings.objects.update(checked_at=timezone.now() - timedelta(hours=1))


def test_the_check_job_announces_after_two_passes_and_tells_the_captive_portal(
    checking,
):
    answers, captive_calls = checking
    answers += [True, True]
    assert jobs.check_uplink_job()["changed"] is False
    assert not MeshSettings.load().announce_default_route
    assert jobs.check_uplink_job()["reason"] == "not due"
    _due()
    assert jobs.check_uplink_job()["changed"] is True
    assert MeshSettings.load().announce_default_route
    assert GatewaySettings.load().uplink_online
    assert captive_calls == [True]
    assert Job.objects.filter(kind="gateway.apply").count() == 1


def test_the_check_job_withdraws_after_three_failures_and_a_flap_changes_nothing(
    checking,
):
    answers, captive_calls = checking
    _online_gateway()
    for passed in [False, True, False, False, True, False, False]:
        answers.append(passed)
        _due()
        jobs.check_uplink_job()
        assert MeshSettings.load().announce_default_route
    assert captive_calls == []
    answers.append(False)
    _due()
    assert jobs.check_uplink_job()["changed"] is True
    assert not MeshSettings.load().announce_default_route
    assert captive_calls == [False]


def test_the_check_keeps_how_far_tor_has_bootstrapped(checking, monkeypatch):
    from gateway import tor

    answers, _captive = checking
    # tor runs; what its log says is the test's to choose.
    logged: dict[str, int | None] = {"percent": None}
    monkeypatch.setattr(tor, "_is_running", lambda host: True)
    monkeypatch.setattr(tor, "_bootstrap_percent", lambda log: logged["percent"])
    answers += [True, True, True]
    jobs.check_uplink_job()
    assert GatewaySettings.load().tor_progress is None  # Tor mode is off
    GatewaySettings.objects.update(tor_enabled=True)
    _due()
    jobs.check_uplink_job()
    assert GatewaySettings.load().tor_progress == 0  # running, nothing logged yet
    logged["percent"] = 45
    _due()
    jobs.check_uplink_job()
    assert GatewaySettings.load().tor_progress == 45


def test_the_node_start_sets_up_a_chosen_uplink_again(operator):
    from portal.start_jobs import queue_start_jobs

    assert [job.kind for job in queue_start_jobs()] == ["services.reconcile"]
    GatewaySettings.objects.update(uplink_interface="eth0")
    kinds = [job.kind for job in queue_start_jobs()]
    assert kinds == ["services.reconcile", "gateway.apply"]


def test_a_failed_apply_is_made_good_by_the_next_check(checking, monkeypatch, tmp_path):
    """Online, but babeld's config does not announce the default route (the
    apply queued on the change failed): the next check queues one apply,
    not one per check, and none once the config announces it."""
    from meshnet.babel_config import ANNOUNCE_DEFAULT, CONFIG
    from portal.host.files import FileStore
    from portal.host.node import Host
    from portal.host.runner import RecordingRunner
    from portal.models import JobStatus

    host = Host(mode="lab", runner=RecordingRunner(), files=FileStore(tmp_path))
    monkeypatch.setattr(jobs, "current_host", lambda: host)
    answers, _captive = checking
    _online_gateway()
    host.files.write(CONFIG, "interface to-n2 type wired\nredistribute deny\n")
    answers += [True, True, True]
    _due()
    assert jobs.check_uplink_job()["announcement_follows"] is True
    _due()
    assert jobs.check_uplink_job()["announcement_follows"] is False  # one waits
    assert Job.objects.filter(kind="gateway.apply").count() == 1
    Job.objects.filter(kind="gateway.apply").update(status=JobStatus.FAILED)
    host.files.write(CONFIG, f"interface to-n2 type wired\n{ANNOUNCE_DEFAULT}\n")
    _due()
    assert jobs.check_uplink_job()["announcement_follows"] is False
    assert Job.objects.filter(kind="gateway.apply").count() == 1


def test_without_an_uplink_the_node_follows_the_mesh(operator, monkeypatch, tmp_path):
    from meshnet.dnsmasq_config import CONFIG
    from portal.host.files import FileStore
    from portal.host.node import Host
    from portal.host.runner import RecordingRunner

    host = Host(
        mode="lab", runner=RecordingRunner(strict=True), files=FileStore(tmp_path)
    )
    host.files.write(CONFIG, "interface=br-lan\nno-resolv\n")
    monkeypatch.setattr(jobs, "current_host", lambda: host)
    captive_calls: list[bool] = []
    import captive.services

    monkeypatch.setattr(
        captive.services, "uplink_state_set",
        lambda *, online: captive_calls.append(online),
    )  # fmt: skip
    answer = jobs.check_uplink_job()
    # no gateway in the mesh: offline, and no upstream is wanted
    assert answer == {"checked": False, "reason": "no uplink", "mesh_online": False,
                      "dns_follows": False}  # fmt: skip
    now = timezone.now()
    DirectoryEntry.objects.create(
        address="10.9.0.1", name="alpha", client_subnet="10.9.1.0/24", gateway=True,
        last_seen=now, expires=now + timedelta(minutes=5),
    )  # fmt: skip
    answer = jobs.check_uplink_job()
    assert answer["mesh_online"] and answer["dns_follows"]
    assert captive_calls == [False, True]
    assert Job.objects.filter(kind="gateway.apply").count() == 1
    host.files.write(CONFIG, "interface=br-lan\nserver=10.9.1.1\n")
    assert jobs.check_uplink_job()["dns_follows"] is False


def test_sharing_off_stops_the_announcement_at_once(checking):
    GatewaySettings.objects.update(uplink_online=True)
    MeshSettings.objects.update(announce_default_route=True)
    services.sharing_set(sharing=False)
    assert not MeshSettings.load().announce_default_route
