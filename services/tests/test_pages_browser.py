"""The services pages in a real headless Chromium, as an operator sees them.

The project's browser harness (``portal/tests/test_pages_browser.py``):
pytest-django's live server, Debian's Chromium through Playwright, a
360-px phone and a 1280-px desktop, no request leaving localhost, no
horizontal overflow. The node has services in every state an operator
meets: the chat running, the voice server failing and withdrawn, XMPP
missing its packages, the stream just switched on with its generated
passwords waiting to be noted, the rest off. Screenshots land in
test-artifacts/screenshots/ (``services-*``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import Job
from portal.tests.test_pages_browser import (  # noqa: F401 - fixtures
    DESKTOP,
    PHONE,
    Session,
    _log_in,
    _set_up_node_with_data,
    browser,
    https_side,
)
from services import services
from services.models import ObservedState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ONION = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion"


def _services_in_every_state() -> None:
    from meshnet.models import MeshSettings

    MeshSettings.objects.update_or_create(
        pk=1,
        defaults={"mesh_address": "10.213.0.1", "client_subnet": "10.213.1.0/24"},
    )
    now = timezone.now()

    def put(service_id: str, **fields) -> None:
        row = services.state_for(service_id)
        for name, value in fields.items():
            setattr(row, name, value)
        row.save()

    put(
        "ircd",
        enabled=True,
        observed=ObservedState.RUNNING,
        last_health_at=now - timedelta(seconds=20),
        last_health_ok=True,
        last_health_message="It answers.",
    )
    put(
        "voice",
        enabled=True,
        observed=ObservedState.FAILING,
        last_health_at=now - timedelta(seconds=12),
        last_health_ok=False,
        last_health_message="The program murmurd is not running.",
        consecutive_failures=4,
        withdrawn=True,
    )
    put(
        "xmpp",
        observed=ObservedState.MISSING,
        missing_packages=["prosody"],
        last_health_at=now - timedelta(minutes=3),
        last_health_ok=False,
        last_health_message="Packages missing: prosody.",
    )
    put(
        "onion-chat",
        enabled=True,
        observed=ObservedState.RUNNING,
        client_address=ONION,
    )
    services.request_activation(service_id="stream")  # generates its passwords
    put(
        "stream",
        observed=ObservedState.RUNNING,
        last_health_at=now,
        last_health_ok=True,
        last_health_message="It answers.",
    )


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_services_list_detail_and_confirm_pages(
    browser,  # noqa: F811
    live_server,
    https_side,  # noqa: F811
    viewport,
    monkeypatch,
):
    from services import selectors

    # This machine has prosody: the node in the pages has not.
    installed = selectors.installed_debian_packages() - {"prosody"}
    monkeypatch.setattr(selectors, "installed_debian_packages", lambda: installed)
    monkeypatch.setattr(
        selectors, "missing_packages", lambda entry, known=None: [
            name for name in entry.packages if name not in installed
        ],
    )  # fmt: skip
    _set_up_node_with_data()
    _services_in_every_state()
    admin = Session(browser, viewport=viewport, admin=True)
    _log_in(admin, live_server.url)
    page = admin.page

    page.goto(live_server.url + "/services/")
    text = page.inner_text("main")
    for words in ("running", "failing", "missing packages", "off"):
        assert words in text
    assert "apt-get install prosody" in text
    assert "Install the packages" in text  # not "Switch on", which would fail
    admin.assert_fits()
    admin.shot("services-list")

    page.goto(live_server.url + "/services/stream/")
    secrets = services.state_for("stream").secrets
    text = page.inner_text("main")
    assert secrets["source_password"] in text and secrets["admin_password"] in text
    assert secrets["relay_password"] not in text  # not one a person types
    for url in ("http://stream.riverside.mesh:8000/", "http://10.213.1.1:8000/"):
        assert url in text
    admin.assert_fits()
    admin.shot("services-detail-stream")
    page.click("text=I have noted them")
    assert secrets["source_password"] not in page.inner_text("main")

    page.goto(live_server.url + "/services/voice/")
    text = page.inner_text("main")
    assert "Withdrawn" in text
    assert "voice.riverside.mesh" in text and "64738" in text
    admin.assert_fits()
    admin.shot("services-detail-voice")
    page.click("text=Start it again")
    assert Job.objects.filter(
        kind="services.activate", arguments={"service_id": "voice"}
    ).exists()
    assert services.state_for("voice").observed == ObservedState.STARTING

    page.goto(live_server.url + "/services/xmpp/")
    text = page.inner_text("main")
    assert "apt-get install prosody" in text and "no uplink" in text
    assert "Switch on" not in text
    admin.assert_fits()
    admin.shot("services-detail-xmpp")

    page.goto(live_server.url + "/services/onion-chat/")
    text = page.inner_text("main")
    assert ONION in text and "onion-chat.riverside.mesh" not in text
    assert "Ports it listens on" not in text  # tor listens on none itself
    admin.assert_fits()
    admin.shot("services-detail-onion")

    page.goto(live_server.url + "/services/ircd/off/")
    assert "Chat reachable over Tor" in page.inner_text("main")
    admin.assert_fits()
    admin.shot("services-confirm-off")
    admin.close()
