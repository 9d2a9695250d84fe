"""The interface pages in headless Chromium at phone and desktop width.

Same harness as ``portal/tests/test_pages_browser.py``: a live server, the
admin context sending ``X-Forwarded-Proto: https``, no request may leave
localhost, no horizontal overflow. The form is used with JavaScript off.
Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest

from meshnet.models import MeshInterface, PendingChange
from meshnet.tests.test_interfaces import build_snapshot
from portal.models import NodeStatus
from portal.tests import test_pages_browser as pages
from portal.tests.test_pages_browser import DESKTOP, PHONE, Session, _log_in

# The page tests' fixtures, shared: Chromium once per module, HTTPS side.
browser = pages.browser
https_side = pages.https_side

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _set_up(tmp_path) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from portal.models import NodeSettings
    from portal.tests.access_helpers import ADMIN_PASSWORD, ADMIN_USERNAME

    get_user_model().objects.create_superuser(ADMIN_USERNAME, "", ADMIN_PASSWORD)
    node = NodeSettings.load()
    node.node_name = "riverside"
    node.setup_completed_at = timezone.now()
    node.save()
    NodeStatus.store(build_snapshot(tmp_path))


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_interface_pages_fit_and_the_form_works_without_javascript(
    browser,
    live_server,
    https_side,
    tmp_path,
    viewport,
):
    _set_up(tmp_path)
    admin = Session(browser, viewport=viewport, admin=True, javascript=False)
    page = admin.page
    _log_in(admin, live_server.url)
    page.goto(live_server.url + "/mesh/interfaces/")
    main = page.inner_text("main")
    assert "wlan0" in main and "ath9k" in main and "e1000e" in main
    admin.assert_fits()
    admin.shot("interfaces-list")

    page.goto(live_server.url + "/mesh/interfaces/wlan0/")
    assert "Channels of this radio" in page.inner_text("main")
    admin.assert_fits()
    admin.shot("interface-wlan0")

    # A hostile name is refused on the page.
    page.check("input[value='mesh:ibss']")
    page.fill("#id_essid", "a;reboot")
    page.click("main form.form button[type=submit]")
    assert "not accepted as a network name" in page.inner_text("main")
    assert not MeshInterface.objects.exists()
    admin.assert_fits()
    admin.shot("interface-wlan0-error")

    page.fill("#id_essid", "riverside")
    page.select_option("#id_channel", "36")
    page.click("main form.form button[type=submit]")
    change = PendingChange.objects.get()
    assert page.url.endswith(change.get_absolute_url())
    assert MeshInterface.objects.get().essid == "riverside"
    admin.close()
