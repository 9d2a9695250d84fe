"""The phone's welcome and venue pages in a real headless Chromium.

As :mod:`portal.tests.test_pages_browser` does for the other pages: the
live server of pytest-django, Debian's Chromium through Playwright, a
360-px phone and a 1280-px desktop, English and Arabic (right to left),
JavaScript off (a phone's captive sheet is a limited browser). The browser
sends ``X-Forwarded-Port: 8081`` as nginx does on the held port, so the
live server answers as to a held phone. The page carries what a real node
shows: a long emergency message, services with long names and addresses,
from this node and from another node of the mesh. Screenshots land in
test-artifacts/screenshots/.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache

from captive.models import CaptiveSettings, PortalInterface
from captive.selectors import invalidate_pages
from portal.tests.test_pages_browser import DESKTOP, PHONE, Session, browser  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MESSAGE = (
    "Flood warning: the bridge on Riverside Road is closed. Drinking water "
    "and phone charging at the town hall from 8:00 to 20:00; first aid at the "
    "school gym. Contact: https://townhall.example/emergency-information-page"
)


def _offers():  # type: ignore[no-untyped-def]
    from meshnet.node_document import ServiceOffer

    return [
        ServiceOffer(
            id="library",
            name="Offline library (Wikipedia, medical guides, maps)",
            port=8080,
            purpose="Read encyclopaedia articles and first-aid guides without Internet",
        ),
        ServiceOffer(id="voice", name="Voice", port=64738, protocol="mumble"),
    ]


@pytest.fixture
def welcome_data(settings):  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from meshnet import node_document
    from meshnet.models import DirectoryEntry, MeshSettings

    settings.CAPTIVE_HELD_PORT = 8081
    cache.clear()
    MeshSettings.objects.update_or_create(
        pk=1, defaults={"client_subnet": "10.213.1.0/24"}
    )
    PortalInterface.objects.create(name="br-lan", enabled=True)
    row = CaptiveSettings.load()
    row.message = MESSAGE
    row.save()
    DirectoryEntry.objects.create(
        address="10.213.2.1",
        name="school-gymnasium-relief-station",
        services=[
            {
                "id": "chat",
                "name": "Neighbourhood chat for volunteers and families",
                "protocol": "http",
                "port": 8065,
                "url": "http://10.213.2.1:8065/channels/volunteers-and-families",
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
    node_document.register_service_provider(_offers)
    invalidate_pages()
    yield
    node_document.unregister_service_provider(_offers)
    invalidate_pages()
    cache.clear()


def _held(chromium, viewport, lang):  # type: ignore[no-untyped-def]
    session = Session(
        chromium, viewport=viewport, admin=False, javascript=False, lang=lang
    )
    session.context.set_extra_http_headers(
        {"Accept-Language": lang, "X-Forwarded-Port": "8081"}
    )
    return session


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("lang", ["en", "ar"])
def test_welcome_and_venue_pages_fit_a_phone_in_english_and_arabic(  # type: ignore[no-untyped-def]
    browser,  # noqa: F811
    live_server,
    welcome_data,
    viewport,
    lang,
):
    session = _held(browser, viewport, lang)
    page = session.page
    for path, name in (
        ("/captive/", "captive-welcome"),
        ("/captive/venue/", "captive-venue"),
    ):
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        assert page.locator("html").get_attribute("dir") == (
            "rtl" if lang == "ar" else "ltr"
        )
        text = page.inner_text("body")
        assert "Riverside Road" in text
        # A web service of this node is a link, not "use an app for http".
        assert page.locator('a[href="http://10.213.1.1:8080/"]').count() == 1
        assert "Use an app for http " not in text
        if lang == "ar":  # the page is translated, not only its button
            assert "Elsewhere on the mesh" not in text
            assert "Use an app for" not in text
        # An address never breaks across lines.
        assert (
            page.locator(".addr").first.evaluate("e => getComputedStyle(e).whiteSpace")
            == "nowrap"
        )
        session.shot(f"{name}-{lang}")
        session.assert_fits()
    session.close()
