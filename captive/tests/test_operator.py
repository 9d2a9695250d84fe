"""The operator's pages: settings, connected phones, kick, MAC rules; bad
input refused with a message and nothing changed."""

from __future__ import annotations

import pytest

from captive.models import (
    CaptiveSettings,
    ClientSession,
    MacRule,
    PortalInterface,
    SessionState,
)
from meshnet.models import MeshSettings
from portal.models import Job
from portal.tests.access_helpers import finish_setup, logged_in_client

pytestmark = pytest.mark.django_db

GOOD = {
    "session_timeout": "3600",
    "idle_timeout": "600",
    "message": "Water at the school.\nFirst aid at the library.",
    "restore_after_restart": "on",
    "interface_br-lan": "on",
}


@pytest.fixture
def operator():  # type: ignore[no-untyped-def]
    finish_setup()
    MeshSettings.objects.update_or_create(
        pk=1, defaults={"client_subnet": "10.213.1.0/24"}
    )
    PortalInterface.objects.create(name="br-lan", enabled=False)
    return logged_in_client()


def test_operator_pages_need_a_login_and_https():
    finish_setup()
    from django.test import Client

    assert (
        Client().get("/captive-portal/").status_code == 301
        or Client().get("/captive-portal/").status_code == 302
    )
    response = Client().get("/captive-portal/")
    assert response["Location"].startswith("https://")


def test_page_lists_connected_phones_with_their_details(operator):  # type: ignore[no-untyped-def]
    ClientSession.objects.create(
        ip="10.213.1.150",
        mac="da:00:00:00:00:07",
        hostname="maria-phone",
        state=SessionState.ACTIVE,
        bytes_up=2048,
        bytes_down=5 * 1024 * 1024,
        expires_at=ClientSession.ends_after(600),
    )
    body = operator.get("/captive-portal/").content.decode()
    for text in (
        "da:00:00:00:00:07",
        "10.213.1.150",
        "maria-phone",
        "2.0",
        "5.0",
        "randomised",
    ):
        assert text in body
    assert "interface_br-lan" in body


def test_saving_settings_turns_the_portal_on_and_applies_it(operator):  # type: ignore[no-untyped-def]
    response = operator.post("/captive-portal/settings/", GOOD)
    assert response.status_code == 302
    row = CaptiveSettings.load()
    assert (row.session_timeout, row.idle_timeout) == (3600, 600)
    assert row.message.startswith("Water at the school.\nFirst aid")
    assert PortalInterface.objects.get(name="br-lan").enabled
    job = Job.objects.get(kind="captive.apply_portal")
    assert response["Location"] == job.get_absolute_url()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session_timeout", "10"),
        ("session_timeout", "99999999"),
        ("session_timeout", "1h"),
        ("idle_timeout", "-5"),
        ("idle_timeout", "7200"),  # longer than the session
        ("message", "x" * 2001),
        ("message", "bell\x07"),
    ],
)
def test_bad_settings_are_refused_and_nothing_changes(operator, field, value):  # type: ignore[no-untyped-def]
    before = CaptiveSettings.load()
    response = operator.post("/captive-portal/settings/", {**GOOD, field: value})
    assert response.status_code == 400
    assert (
        'role="alert"' in response.content.decode()
        or "errorlist" in response.content.decode()
    )
    after = CaptiveSettings.load()
    assert (after.session_timeout, after.idle_timeout, after.message) == (
        before.session_timeout,
        before.idle_timeout,
        before.message,
    )
    assert not PortalInterface.objects.get(name="br-lan").enabled
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "mac", ["zz:00:00:00:00:01", "00:11:22:33:44", "<b>", "00:11:22:33:44:55:66"]
)
def test_bad_mac_is_refused(operator, mac):  # type: ignore[no-untyped-def]
    response = operator.post("/captive-portal/macs/", {"mac": mac, "kind": "blocked"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "not a MAC address" in body or "at most 17 characters" in body
    assert not MacRule.objects.exists() and not Job.objects.exists()


def test_block_and_allow_a_mac_and_remove_the_rule(operator):  # type: ignore[no-untyped-def]
    operator.post(
        "/captive-portal/macs/", {"mac": "00-1B-21-3A-4F-01", "kind": "blocked"}
    )
    rule = MacRule.objects.get()
    assert (rule.mac, rule.kind) == ("00:1b:21:3a:4f:01", "blocked")
    operator.post(
        "/captive-portal/macs/", {"mac": "00:1b:21:3a:4f:01", "kind": "allowed"}
    )
    assert MacRule.objects.get().kind == "allowed"
    operator.post(f"/captive-portal/macs/{rule.pk}/remove/")
    assert not MacRule.objects.exists()
    assert Job.objects.filter(kind="captive.update_mac_rules").count() == 3


def test_kick_queues_the_deauthorisation(operator):  # type: ignore[no-untyped-def]
    session = ClientSession.objects.create(
        ip="10.213.1.150",
        mac="00:1b:21:3a:4f:01",
        state=SessionState.ACTIVE,
        expires_at=ClientSession.ends_after(600),
    )
    assert (
        operator.post(f"/captive-portal/clients/{session.pk}/kick/").status_code == 302
    )
    job = Job.objects.get(kind="captive.deauthorise_client")
    assert job.arguments == {"session_id": session.pk, "reason": "kicked"}


def test_message_is_escaped_on_the_operator_page(operator):  # type: ignore[no-untyped-def]
    operator.post(
        "/captive-portal/settings/", {**GOOD, "message": "<img src=x onerror=alert(1)>"}
    )
    body = operator.get("/captive-portal/").content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
