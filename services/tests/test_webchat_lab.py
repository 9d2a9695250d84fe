"""The web chat in a lab node, used from a phone-sized browser on a client.

One lab (node n1, client c1) for the module. The web chat is switched on
through the framework's own job bodies, which pulls in the xmpp service
it needs. On c1, headless Chromium (Playwright, inside c1's namespace as a
phone on the node's client network) opens the announced URL twice, as two
people: each picks a nickname, one posts a line, the other sees it in the
shared room. No request of the pages may leave the node. Switching off
closes the web chat's ports and withdraws its announcement. When Prosody
dies, the web chat fails its health check (it goes through nginx to
Prosody) and is withdrawn; switching xmpp off takes the web chat along.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from captive.selectors import mesh_services
from portal.config import REPO_DIR
from services import services
from services.models import ObservedState, ServiceState

from . import test_real_services as real
from .test_real_services import (
    NODE,
    announced_ids,
    assert_refused,
    document_ids,
    fetch,
    switch_off,
    switch_on,
)

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

BROWSER_SCRIPT = Path(__file__).with_name("webchat_browser.py")
SCREENSHOT = REPO_DIR / "test-artifacts" / "webchat-360.png"
CHAT = f"http://{NODE}:8082"


# The real services' fixtures: the node certificate, the catalogue on n1.
certificate = real.certificate
node = real.node


@pytest.fixture(scope="module")
def lab(make_module_lab):
    """n1 runs the chat, c1 is a phone on its client network."""
    return make_module_lab(nodes=1, clients=1)


def test_two_people_chat_in_the_browser_then_it_is_withdrawn(node, client):
    started = time.monotonic()
    assert switch_on("webchat") == {"switched_on": ["xmpp", "webchat"]}
    healthy_s = time.monotonic() - started
    assert set(announced_ids()) == {"xmpp", "webchat"}
    assert "webchat" in document_ids(client)
    # The welcome page offers it as a link to the node's own page.
    here, _ = mesh_services()
    links = [entry.url for entry in here if entry.name == "Web chat (in the browser)"]
    # (the node's address as the portal settings of the test name it)
    assert len(links) == 1 and re.fullmatch(r"http://[0-9.]+:8082/", links[0]), links

    page = fetch(node, f"{CHAT}/", "-i")
    assert page.returncode == 0, page.stderr
    assert "converse.min.js" in page.stdout and "guest.n1.mesh" in page.stdout
    # The browser itself refuses anything from elsewhere.
    assert "Content-Security-Policy: default-src 'self';" in page.stdout
    tls = fetch(node, f"https://{NODE}:8445/converse/converse.min.css", "-k")
    assert tls.returncode == 0 and ".converse" in tls.stdout[:20000]

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    run = node.exec(
        "c1",
        [sys.executable, str(BROWSER_SCRIPT), f"{CHAT}/", str(SCREENSHOT)],
        capture=True,
        timeout=90,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["seen"] == "Water at the school until 18:00"
    assert "amira" in result["seen_from"]
    # Nothing from a CDN, a font service or anywhere but the node.
    outside = [
        url
        for url in result["requests"]
        if not url.startswith((f"{CHAT}/", f"ws://{NODE}:8082/", "data:", "blob:"))
    ]
    assert result["requests"] and outside == []
    assert any("/converse/chunkjs/locales/es-" in url for url in result["requests"])
    assert result["placeholder_es"] == "Mensaje"
    assert result["scroll_width"] <= 360  # no sideways scrolling on a phone
    print(f"webchat: healthy in {healthy_s:.1f} s, {result['steps']}")

    assert switch_off("webchat") == {"switched_off": ["webchat"]}
    assert_refused(node, 8082)
    assert_refused(node, 8445)
    assert "webchat" not in announced_ids()
    assert "webchat" not in document_ids(client)
    assert ServiceState.objects.get(service_id="xmpp").enabled
    switch_off("xmpp")


def test_without_prosody_the_web_chat_fails_until_the_check_restarts_it(node, client):
    """The health check goes through nginx to Prosody's WebSocket: a page
    whose chat server died fails its check, and the round that finds
    Prosody gone starts it again, so the page comes back by itself."""
    switch_on("webchat")
    prosody = real.daemon_pid(node, "xmpp", "prosody")
    os.kill(prosody, 9)
    deadline = time.monotonic() + 5
    while real.alive(prosody) and time.monotonic() < deadline:
        time.sleep(0.05)
    # nginx itself still runs: the page is there, its chat server is not.
    assert (
        fetch(
            node, f"{CHAT}/xmpp-websocket", "-o", "/dev/null", "-w", "%{http_code}"
        ).stdout
        == "502"
    )
    summary = services.run_health_checks()
    # "webchat" is checked before "xmpp": it fails, then Prosody is restarted.
    assert summary["checked"]["webchat"] is False
    assert summary["restarted"] == ["xmpp"]
    assert real.daemon_pid(node, "xmpp", "prosody") != prosody
    services.run_health_checks()
    row = ServiceState.objects.get(service_id="webchat")
    assert row.observed == ObservedState.RUNNING and not row.withdrawn
    assert "webchat" in announced_ids()
    assert "webchat" in document_ids(client)

    assert switch_off("xmpp") == {"switched_off": ["webchat", "xmpp"]}
    assert_refused(node, 8082)
    assert announced_ids() == []
