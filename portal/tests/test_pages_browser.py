"""The operator and public pages in a real headless Chromium.

A live server (pytest-django's, in this process) serves the pages; the
browser is Debian's /usr/bin/chromium driven by Playwright. The "admin"
browser context sends ``X-Forwarded-Proto: https`` as nginx would, with the
settings trusting that header, so the HTTPS side renders; the "public"
context sends nothing and sees the plain-HTTP side.

Every page is checked at a 360-px phone and a 1280-px desktop, in English
and in Arabic (right to left, mirrored), for horizontal overflow, and for
requests leaving localhost. The wizard, login and language switch are done
with JavaScript off. Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from portal import access
from portal.models import Job, NodeStatus
from portal.tests.access_helpers import ADMIN_PASSWORD, ADMIN_USERNAME
from portal.tests.test_dashboard import SNAPSHOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The innermost elements reaching past either edge of the viewport.
OVERFLOWING_ELEMENTS = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right <= width + 0.5 && box.left >= -0.5) continue;
    if ([...el.children].some(c => {
      const b = c.getBoundingClientRect();
      return b.right > width + 0.5 || b.left < -0.5;
    })) continue;
    out.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
      + " [" + Math.round(box.left) + ", " + Math.round(box.right) + "] "
      + JSON.stringify((el.textContent || "").trim().slice(0, 40)));
  }
  return out.slice(0, 8);
}"""
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's
    # own database calls are plain synchronous ones.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def https_side(settings, live_server):
    """Trust X-Forwarded-Proto as the dev and production settings do.

    The browser really speaks plain HTTP to the live server, so its Origin
    header says http://; behind nginx it says https:// and matches. Trusting
    the live server's origin stands in for that, nothing more.
    """
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    return settings


class Session:
    """One browser context, recording every request that left localhost."""

    def __init__(
        self, browser, *, viewport, admin: bool, javascript: bool = True, lang="en"
    ):
        headers = {"Accept-Language": lang}
        if admin:
            headers["X-Forwarded-Proto"] = "https"
        self.context = browser.new_context(
            viewport=viewport,
            java_script_enabled=javascript,
            extra_http_headers=headers,
            locale=lang,
        )
        self.context.set_default_timeout(15_000)
        self.escaped: list[str] = []
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.width = viewport["width"]

    def _guard(self, route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in LOCAL_HOSTS:
            route.continue_()
        else:
            self.escaped.append(route.request.url)
            route.abort()

    def shot(self, name: str) -> None:
        self.page.screenshot(
            path=str(SHOTS / f"{name}-{self.width}.png"), full_page=True
        )

    def assert_fits(self) -> None:
        # After a click that navigates, Playwright returns once the new page
        # is committed; its stylesheet may still be on the way, and the
        # unstyled table is wider than a phone.
        self.page.wait_for_load_state("load")
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth"
            " - document.documentElement.clientWidth"
        )
        culprits = []
        if overflow > 0:  # name the elements that stick out, for the fix
            culprits = self.page.evaluate(OVERFLOWING_ELEMENTS)
            self.shot("overflowing")
        assert overflow <= 0, (
            f"{self.page.url} overflows by {overflow}px at {self.width}: {culprits}"
        )

    def close(self) -> None:
        self.context.close()
        assert self.escaped == [], f"requests left localhost: {self.escaped}"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_setup_wizard_login_and_dashboard_without_javascript(
    browser, live_server, https_side, tmp_path, viewport
):
    secret = access.issue_setup_secret(tmp_path / "setup-secret")
    public = Session(browser, viewport=viewport, admin=False, javascript=False)
    page = public.page
    page.goto(live_server.url + "/")
    assert "a mesh network node" in page.inner_text("h1")
    assert page.locator("html").get_attribute("dir") == "ltr"
    public.assert_fits()
    public.shot("public-home-en")
    # The operator link on the HTTP side leads to HTTPS, never an HTTP admin page.
    assert page.locator("a.button").get_attribute("href").startswith("https://")
    public.close()

    admin = Session(browser, viewport=viewport, admin=True, javascript=False)
    page = admin.page
    page.goto(live_server.url + "/")
    assert page.url.endswith("/setup/")
    admin.assert_fits()
    admin.shot("setup-secret")
    page.fill("#id_secret", "WRONG-SECRET")
    page.click("button[type=submit] >> text=Continue")
    assert "not this node" in page.inner_text(".field__errors")
    admin.assert_fits()
    admin.shot("setup-secret-error")
    page.fill("#id_secret", secret.lower())
    page.click("button[type=submit] >> text=Continue")
    assert page.url.endswith("/setup/account/")
    page.fill("#id_username", ADMIN_USERNAME)
    page.fill("#id_password1", ADMIN_PASSWORD)
    page.fill("#id_password2", "not the same one")
    page.fill("#id_node_name", "bad name!")
    page.click("button[type=submit] >> text=Finish setup")
    assert page.locator(".field__errors").count() >= 2
    admin.assert_fits()
    admin.shot("setup-account-errors")
    page.fill("#id_password1", ADMIN_PASSWORD)
    page.fill("#id_password2", ADMIN_PASSWORD)
    page.fill("#id_node_name", "riverside")
    page.select_option("#id_language", "en")
    page.click("button[type=submit] >> text=Finish setup")
    assert urlsplit(page.url).path == "/"
    assert "This node is set up" in page.inner_text(".messages")
    assert "No status yet" in page.inner_text("main")
    admin.assert_fits()
    admin.shot("dashboard-empty")

    # Log out (a POST form) and back in, still without JavaScript.
    page.click(".logout-form button")
    assert urlsplit(page.url).path == "/login/"
    admin.assert_fits()
    admin.shot("login")
    page.fill("#id_username", ADMIN_USERNAME)
    page.fill("#id_password", "wrong password")
    page.click("main button[type=submit]")
    assert "correct username and password" in page.inner_text("main")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("main button[type=submit]")
    assert urlsplit(page.url).path == "/"
    admin.close()


def _set_up_node_with_data() -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from portal.models import NodeSettings

    get_user_model().objects.create_superuser(ADMIN_USERNAME, "", ADMIN_PASSWORD)
    node = NodeSettings.load()
    node.node_name = "riverside"
    node.setup_completed_at = timezone.now()
    node.save()
    NodeStatus.store(SNAPSHOT)
    for kind, status in [
        ("meshnet.apply_mesh", "completed"),
        ("gateway.share_uplink", "failed"),
        ("services.activate", "running"),
    ]:
        Job.objects.create(kind=kind, status=status)


def _log_in(session: Session, base: str) -> None:
    page = session.page
    page.goto(base + "/login/")
    page.fill("#id_username", ADMIN_USERNAME)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("main button[type=submit]")
    assert urlsplit(page.url).path == "/"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_dashboard_and_jobs_in_english_and_arabic(
    browser, live_server, https_side, viewport
):
    _set_up_node_with_data()
    admin = Session(browser, viewport=viewport, admin=True)
    page = admin.page
    _log_in(admin, live_server.url)
    assert "byz-n1-n2" in page.inner_text("main")
    assert "fe80::8013:1cff:fe86:7291" in page.inner_text("main")
    admin.assert_fits()
    admin.shot("dashboard-en")
    page.goto(live_server.url + "/jobs/")
    assert "gateway.share_uplink" in page.inner_text("main")
    admin.assert_fits()
    admin.shot("jobs-en")
    brand_ltr = page.locator(".brand").bounding_box()

    # Switch to Arabic with the language form (works without JavaScript).
    page.select_option("#language-select", "ar")
    page.click(".language-form button")
    html = page.locator("html")
    assert html.get_attribute("dir") == "rtl"
    assert html.get_attribute("lang") == "ar"
    assert urlsplit(page.url).path == "/jobs/"
    admin.assert_fits()
    admin.shot("jobs-ar")
    brand_rtl = page.locator(".brand").bounding_box()
    # Mirrored: the brand moves from the left edge to the right edge.
    assert brand_ltr["x"] < viewport["width"] / 2
    assert brand_rtl["x"] + brand_rtl["width"] > viewport["width"] / 2
    assert brand_rtl["x"] > brand_ltr["x"]
    page.goto(live_server.url + "/")
    assert html.get_attribute("dir") == "rtl"
    help_box = page.locator(".help").bounding_box()
    main_box = page.locator("main").bounding_box()
    if viewport is DESKTOP:
        # The help column sits at the inline end: left of the content in RTL.
        assert help_box["x"] < main_box["x"]
    admin.assert_fits()
    admin.shot("dashboard-ar")
    admin.close()

    public = Session(browser, viewport=viewport, admin=False, lang="ar")
    public.page.goto(live_server.url + "/")
    assert public.page.locator("html").get_attribute("dir") == "rtl"
    public.assert_fits()
    public.shot("public-home-ar")
    public.close()


def test_lockout_page_in_a_browser(browser, live_server, https_side):
    _set_up_node_with_data()
    admin = Session(browser, viewport=PHONE, admin=True, javascript=False)
    page = admin.page
    page.goto(live_server.url + "/login/")
    for _attempt in range(6):
        page.fill("#id_username", ADMIN_USERNAME)
        page.fill("#id_password", "wrong")
        page.click("main button[type=submit]")
        if "Too many attempts" in page.inner_text("main"):
            break
    assert "Too many attempts" in page.inner_text("h1")
    admin.assert_fits()
    admin.shot("locked-out")
    admin.close()


OPERATOR_PAGES = (
    ("/mesh/status/", "mesh-status"),
    ("/mesh/directory/", "mesh-directory"),
    ("/mesh/interfaces/", "mesh-interfaces"),
    ("/mesh/addresses/", "mesh-addresses"),
    ("/mesh/changes/", "mesh-changes"),
    ("/services/", "services"),
    ("/captive-portal/", "captive-operator"),
)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("lang", ["en", "ar"])
def test_every_operator_page_fits_and_renders(
    browser, live_server, https_side, viewport, lang
):
    """Each operator page of every app answers, fits the screen, and is
    mirrored in Arabic; the screenshots are there to be looked at."""
    from datetime import timedelta

    from django.utils import timezone

    from meshnet.models import DirectoryEntry

    _set_up_node_with_data()
    DirectoryEntry.objects.create(
        address="10.213.0.2",
        name="bravo",
        client_subnet="10.213.2.0/24",
        last_seen=timezone.now(),
        expires=timezone.now() + timedelta(minutes=2),
    )
    admin = Session(browser, viewport=viewport, admin=True, lang=lang)
    _log_in(admin, live_server.url)
    for path, name in OPERATOR_PAGES:
        response = admin.page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        assert admin.page.locator("html").get_attribute("dir") == (
            "rtl" if lang == "ar" else "ltr"
        )
        assert admin.page.inner_text("main").strip(), path
        admin.shot(f"{name}-{lang}")
        admin.assert_fits()
    admin.close()
