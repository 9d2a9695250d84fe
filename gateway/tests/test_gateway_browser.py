"""The gateway page and the dashboard's Internet tile in headless Chromium,
at phone and desktop width, in English and Arabic (right to left).

Same harness as ``portal/tests/test_pages_browser.py``: a live server, the
admin context sending ``X-Forwarded-Proto: https``, no request may leave
localhost, no horizontal overflow; the form is used with JavaScript off.
Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest

from gateway.models import GatewaySettings
from portal.models import Job
from portal.tests import test_pages_browser as pages
from portal.tests.test_pages_browser import DESKTOP, PHONE, Session, _log_in

browser = pages.browser
https_side = pages.https_side

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _set_up() -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from portal.models import NodeSettings
    from portal.tests.access_helpers import ADMIN_PASSWORD, ADMIN_USERNAME

    get_user_model().objects.create_superuser(ADMIN_USERNAME, "", ADMIN_PASSWORD)
    node = NodeSettings.load()
    node.node_name = "riverside"
    node.setup_completed_at = timezone.now()
    node.save()
    row = GatewaySettings.load()
    row.candidates = [
        {"name": "eth0", "kind": "ether", "carrier": True,
         "addresses": ["192.168.1.20/24"], "default_route": True,
         "gateway": "192.168.1.1", "lease": True},
        {"name": "enx00e04c680001", "kind": "ether", "carrier": True,
         "addresses": [], "default_route": False, "gateway": None, "lease": False},
    ]  # fmt: skip
    row.scanned_at = timezone.now()
    row.save()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_gateway_page_fits_and_its_form_works_without_javascript(
    browser, live_server, https_side, viewport
):
    _set_up()
    admin = Session(browser, viewport=viewport, admin=True, javascript=False)
    page = admin.page
    _log_in(admin, live_server.url)
    page.goto(live_server.url + "/")
    assert "No uplink chosen." in page.inner_text("main")
    admin.assert_fits()
    page.goto(live_server.url + "/gateway/")
    main = page.inner_text("main")
    assert "eth0" in main and "192.168.1.20/24" in main and "default route" in main
    admin.assert_fits()
    admin.shot("gateway")

    page.fill("#id_uplink_interface", "eth0; reboot")
    page.check("#id_sharing")
    page.click("main form.form button[type=submit]")
    assert "not an interface name" in page.inner_text("main")
    assert GatewaySettings.load().uplink_interface == ""
    admin.assert_fits()
    admin.shot("gateway-error")

    page.fill("#id_uplink_interface", "eth0")
    page.click("main form.form button[type=submit]")
    job = Job.objects.get(kind="gateway.apply")
    assert page.url.endswith(job.get_absolute_url())
    assert GatewaySettings.load().sharing
    admin.close()


def test_gateway_page_in_arabic_reads_right_to_left(browser, live_server, https_side):
    _set_up()
    admin = Session(browser, viewport=PHONE, admin=True, javascript=False, lang="ar")
    _log_in(admin, live_server.url)
    admin.page.goto(live_server.url + "/gateway/")
    assert admin.page.locator("html").get_attribute("dir") == "rtl"
    assert "الوصلة الصاعدة" in admin.page.inner_text("main")
    admin.assert_fits()
    admin.shot("gateway-ar")
    admin.close()
