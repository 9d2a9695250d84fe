"""What phones see, through Django's test client: probes, welcome page,
Continue, the RFC 8908 API; no template render or query on the hot paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.cache import cache
from django.test import Client
from django.test.signals import template_rendered

from captive import probes
from captive.models import CaptiveSettings, ClientSession, PortalInterface, SessionState
from captive.selectors import invalidate_pages
from captive.views import client_token
from meshnet.models import MeshSettings
from portal.models import Job

pytestmark = pytest.mark.django_db

HELD = {"HTTP_X_FORWARDED_PORT": "8081"}
THROUGH = {"HTTP_X_FORWARDED_PORT": "80"}
PHONE = "10.213.1.120"

# (host, path, expected online reply)
PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204", probes.ANDROID),
    ("www.google.com", "/gen_204", probes.ANDROID),
    ("anything.example", "/generate_204", probes.ANDROID),
    ("captive.apple.com", "/hotspot-detect.html", probes.APPLE),
    ("www.apple.com", "/library/test/success.html", probes.APPLE),
    ("www.msftconnecttest.com", "/connecttest.txt", probes.WINDOWS_CONNECT),
    ("www.msftncsi.com", "/ncsi.txt", probes.WINDOWS_NCSI),
    ("detectportal.firefox.com", "/canonical.html", probes.FIREFOX_PAGE),
    ("detectportal.firefox.com", "/success.txt", probes.FIREFOX_SUCCESS),
    ("nmcheck.gnome.org", "/check_network_status.txt", probes.NETWORK_MANAGER),
    ("network-test.debian.org", "/nm", probes.NETWORK_MANAGER),
    ("ping.archlinux.org", "/nm-check.txt", probes.NETWORK_MANAGER),
]


@pytest.fixture(autouse=True)
def node(settings):  # type: ignore[no-untyped-def]
    settings.CAPTIVE_HELD_PORT = 8081
    cache.clear()
    MeshSettings.objects.update_or_create(
        pk=1, defaults={"client_subnet": "10.213.1.0/24"}
    )
    PortalInterface.objects.create(name="br-lan", enabled=True)
    yield
    cache.clear()


@contextmanager
def counting_renders() -> Iterator[list[str]]:
    names: list[str] = []

    def seen(sender, template, context, **kwargs):  # type: ignore[no-untyped-def]
        names.append(template.name)

    template_rendered.connect(seen)
    try:
        yield names
    finally:
        template_rendered.disconnect(seen)


def phone() -> Client:
    return Client(REMOTE_ADDR=PHONE)


@pytest.mark.parametrize(("host", "path", "reply"), PROBES)
def test_held_probe_never_gets_the_online_answer(host, path, reply):  # type: ignore[no-untyped-def]
    response = phone().get(path, HTTP_HOST=host, **HELD)
    assert response.status_code == 302
    assert response["Location"] == "http://10.213.1.1/captive/"
    assert response["Cache-Control"] == "no-store"
    assert response["Connection"] == "close"
    assert response.content != reply.body or reply.body == b""


@pytest.mark.parametrize(("host", "path", "reply"), PROBES)
def test_probe_of_a_client_let_through_gets_the_exact_online_answer(host, path, reply):  # type: ignore[no-untyped-def]
    response = phone().get(path, HTTP_HOST=host, **THROUGH)
    assert response.status_code == reply.status
    assert response.content == reply.body
    for name, value in reply.headers:
        assert response[name] == value


def test_exact_bodies_of_the_best_known_probes():
    assert probes.APPLE_SUCCESS == (
        b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
    )
    response = phone().get("/generate_204", HTTP_HOST="connectivitycheck.gstatic.com")
    assert response.status_code == 204 and response.content == b""
    assert phone().get("/success.txt", **THROUGH).content == b"success\n"
    assert phone().get("/ncsi.txt", **THROUGH).content == b"Microsoft NCSI"
    assert (
        phone().get("/connecttest.txt", **THROUGH).content == b"Microsoft Connect Test"
    )


def test_windows_redirect_probe_of_a_client_let_through_goes_to_the_venue_page():
    response = phone().get("/redirect", HTTP_HOST="www.msftconnecttest.com", **THROUGH)
    assert response.status_code == 302
    assert response["Location"] == "http://10.213.1.1/captive/venue/"


def test_any_page_of_any_host_sends_a_held_phone_to_the_portal():
    for host, path in [
        ("example.org", "/"),
        ("news.example", "/a/b?c=d"),
        ("10.213.1.1", "/"),
    ]:
        response = phone().get(path, HTTP_HOST=host, **HELD)
        assert response.status_code == 302, (host, path)
        assert response["Location"] == "http://10.213.1.1/captive/"


def test_held_phone_never_reaches_the_operator_pages():
    response = phone().get("/jobs/", HTTP_HOST="10.213.1.1", **HELD)
    assert response.status_code == 302
    assert response["Location"] == "http://10.213.1.1/captive/"


def test_welcome_page_has_the_continue_form_with_a_token_for_this_phone():
    response = phone().get("/captive/", HTTP_HOST="10.213.1.1", **HELD)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'action="/captive/continue/?lang=en"' in body
    assert f'value="{client_token(PHONE)}"'.split(":")[0] in body
    assert "@@CAPTIVE" not in body
    # A held phone's service links lead nowhere until it is through: it says so.
    assert "Tap Continue first" in body
    venue = phone().get("/captive/venue/", HTTP_HOST="10.213.1.1").content.decode()
    assert "Tap Continue first" not in venue


def test_welcome_page_follows_accept_language_and_the_switcher():
    response = phone().get("/captive/", HTTP_ACCEPT_LANGUAGE="ar", **HELD)
    assert '<html lang="ar" dir="rtl">' in response.content.decode()
    response = phone().get("/captive/?lang=es", HTTP_ACCEPT_LANGUAGE="ar", **HELD)
    assert '<html lang="es" dir="ltr">' in response.content.decode()
    for code in ("en", "es", "fr", "ar"):
        assert f'href="?lang={code}"' in response.content.decode() or code == "es"


def test_operator_message_is_escaped_on_every_page():
    row = CaptiveSettings.load()
    row.message = '<script>alert("x")</script>\nWater at the school'
    row.save()
    invalidate_pages()
    for path, extra in (
        ("/captive/", HELD),
        ("/captive/venue/", THROUGH),
        ("/captive/", THROUGH),
    ):
        body = phone().get(path, **extra).content.decode()
        assert "<script>alert" not in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_hot_paths_render_no_template_and_query_nothing_once_warm(
    django_assert_num_queries,
):  # type: ignore[no-untyped-def]
    for language in ("en", "es", "fr", "ar"):
        phone().get(f"/captive/?lang={language}", **HELD)
        phone().get(f"/captive/venue/?lang={language}", **THROUGH)
    with counting_renders() as renders, django_assert_num_queries(0):
        for language in ("en", "es", "fr", "ar"):
            assert phone().get(f"/captive/?lang={language}", **HELD).status_code == 200
            assert (
                phone().get(f"/captive/venue/?lang={language}", **THROUGH).status_code
                == 200
            )
        assert (
            phone().get("/generate_204", HTTP_HOST="x.example", **HELD).status_code
            == 302
        )
        assert (
            phone().get("/generate_204", HTTP_HOST="x.example", **THROUGH).status_code
            == 204
        )
        assert phone().get("/", HTTP_HOST="example.org", **HELD).status_code == 302
        assert phone().get("/captive/api/", **HELD).status_code == 200
    assert renders == []


def test_changing_the_message_shows_at_once():
    first = phone().get("/captive/", **HELD).content.decode()
    assert "Fresh water" not in first
    from captive import services

    services.portal_settings_update(
        session_timeout=3600,
        idle_timeout=600,
        message="Fresh water at the town hall",
        restore_after_restart=True,
        interfaces={"br-lan": True},
    )
    assert (
        "Fresh water at the town hall"
        in phone().get("/captive/", **HELD).content.decode()
    )


def test_services_of_this_node_and_the_mesh_are_listed(monkeypatch):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from meshnet.models import DirectoryEntry

    DirectoryEntry.objects.create(
        address="10.213.2.1",
        name="school",
        services=[
            {
                "id": "chat",
                "name": "Chat <b>",
                "protocol": "http",
                "port": 8065,
                "url": "http://10.213.2.1:8065/",
            },
            {
                "id": "voice",
                "name": "Voice",
                "protocol": "mumble",
                "port": 64738,
                "url": "",
            },
        ],
        last_seen=timezone.now(),
        expires=timezone.now() + timedelta(minutes=5),
    )
    body = phone().get("/captive/", **HELD).content.decode()
    assert "No other node announces services" not in body
    assert "Chat &lt;b&gt;" in body
    assert 'href="http://10.213.2.1:8065/"' in body
    assert "mumble" in body and "10.213.2.1" in body and "64738" in body
    assert "This node offers no services yet." in body


def test_continue_lets_the_phone_through_through_a_job():
    client = phone()
    token = client_token(PHONE)
    response = client.post("/captive/continue/?lang=fr", {"token": token}, **HELD)
    assert response.status_code == 302
    assert response["Location"] == "http://10.213.1.1/captive/venue/?lang=fr&welcome=1"
    session = ClientSession.objects.get(ip=PHONE)
    assert session.state == SessionState.PENDING
    job = Job.objects.get(kind="captive.authorise_client")
    assert job.arguments == {"session_id": session.pk}
    # A second tap while the first is on its way queues nothing new.
    client.post("/captive/continue/", {"token": token}, **HELD)
    assert Job.objects.filter(kind="captive.authorise_client").count() == 1


def test_continue_without_cookies_works_and_a_forged_or_foreign_token_is_refused():
    client = Client(REMOTE_ADDR=PHONE, enforce_csrf_checks=True)
    assert (
        client.post("/captive/continue/", {"token": "nope"}, **HELD).status_code == 400
    )
    other = client_token("10.213.1.121")
    assert (
        client.post("/captive/continue/", {"token": other}, **HELD).status_code == 400
    )
    assert not ClientSession.objects.exists()
    ok = client.post("/captive/continue/", {"token": client_token(PHONE)}, **HELD)
    assert ok.status_code == 302


def test_api_before_and_after(django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    response = phone().get("/captive/api/", **HELD)
    assert response["Content-Type"] == "application/captive+json"
    data = json.loads(response.content)
    assert data == {
        "captive": True,
        "user-portal-url": "http://10.213.1.1/captive/",
        "venue-info-url": "http://10.213.1.1/captive/venue/",
    }
    ClientSession.objects.create(
        ip=PHONE,
        mac="02:00:00:00:00:01",
        state=SessionState.ACTIVE,
        expires_at=ClientSession.ends_after(600),
    )
    with django_assert_max_num_queries(1):
        data = json.loads(phone().get("/captive/api/", **THROUGH).content)
    assert data["captive"] is False
    assert 595 <= data["seconds-remaining"] <= 600
    assert data["can-extend-session"] is False


def test_randomised_mac_flag_is_the_locally_administered_bit():
    assert ClientSession(mac="02:00:00:00:00:01").randomised_mac
    assert ClientSession(mac="da:a1:19:00:00:01").randomised_mac
    assert not ClientSession(mac="00:1b:21:3a:4f:01").randomised_mac
    assert not ClientSession(mac="a8:5e:45:00:00:01").randomised_mac


def test_dhcp_option_114_carries_the_api_uri_only_while_the_portal_is_on():
    from meshnet.state import MeshState

    assert MeshState.from_db().captive_portal_api == "http://10.213.1.1/captive/api/"
    PortalInterface.objects.update(enabled=False)
    assert MeshState.from_db().captive_portal_api is None


def test_offline_hosts_file_points_probe_hosts_at_a_public_looking_node_address():
    import ipaddress

    text = probes.render_hosts_file(online=False)
    assert "198.18.0.1 connectivitycheck.gstatic.com" in text
    assert "131.107.255.255 dns.msftncsi.com" in text
    assert not ipaddress.ip_address(probes.OFFLINE_ADDRESS).is_private or (
        probes.OFFLINE_ADDRESS.startswith("198.18.")
    )
    assert not any(
        ipaddress.ip_address(probes.OFFLINE_ADDRESS) in ipaddress.ip_network(net)
        for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
    )
    assert "gstatic" not in probes.render_hosts_file(online=True)


def test_what_a_service_is_for_is_shown_on_the_welcome_page():  # type: ignore[no-untyped-def]
    from meshnet import node_document
    from meshnet.node_document import ServiceOffer

    def offers():  # type: ignore[no-untyped-def]
        return [
            ServiceOffer(
                id="pad", name="Pad", port=9001, purpose="Write notes together"
            )
        ]

    node_document.register_service_provider(offers)
    try:
        invalidate_pages()
        body = phone().get("/captive/", **HELD).content.decode()
    finally:
        node_document.unregister_service_provider(offers)
        invalidate_pages()
    assert "Pad" in body
    assert "Write notes together" in body
