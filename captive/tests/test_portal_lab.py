"""The real captive portal over the wire: a phone in a client namespace.

One lab per module: node ``n1`` with its client ``c1`` and an "Internet"
namespace (:class:`captive.firewall_lab.Upstream`, documentation addresses
only, nothing routed anywhere real). The portal runs as ``make run`` runs
it: the real worker (lab host mode, its captive lane included), gunicorn
with the test settings on a Unix socket, and nginx *inside* the node's
namespace from the configuration ``runnode`` renders
(:func:`render_nginx_conf` with ``lab_node=True``). The firewall is the one
the worker's ``captive.apply_portal`` installs. Every request comes from the
client namespace: the agent of :mod:`captive.firewall_lab` for raw sockets,
``curl`` for forms and ``dhclient`` for DHCP.

What the firewall alone decides (443 refused at once, idle and hard timers,
IPv6, spoofed pairs at the kernel) is covered by ``test_firewall_lab.py``;
here each point goes through the real portal where the portal matters.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from captive import firewall_ops, probes
from captive.firewall_lab import INTERNET_HOSTS, ClientAgent, Upstream, remove_stale
from captive.portal_lab import HELD_PORT, NODE, RealPortal, seed_database, wait_for
from portal.lab.pytest_plugin import labs_root

pytestmark = [pytest.mark.lab, pytest.mark.redis]

INTERNET = INTERNET_HOSTS[0]


@pytest.fixture(scope="module")
def portal(  # type: ignore[no-untyped-def]
    make_module_lab, redis_server, django_db_setup, django_db_blocker
) -> Iterator[dict[str, Any]]:
    from django.conf import settings

    from captive.queue import enqueue_captive_job

    remove_stale(labs_root())
    lab = make_module_lab(nodes=1, clients=1)
    upstream = Upstream(prefix=lab.prefix, node_namespace=lab.namespace("n1"))
    workdir = Path(tempfile.mkdtemp(prefix="byz-portal-lab-"))
    workdir.chmod(0o755)
    real = RealPortal(lab=lab, redis=redis_server, workdir=workdir)
    agent = None
    queues = settings.RQ_QUEUES
    try:
        settings.RQ_QUEUES = {
            name: {**config, "URL": redis_server.url} for name, config in queues.items()
        }
        upstream.up()
        upstream.start_server(upstream.namespace, "upstream", (80,))
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
            seed_database(lab)
            real.start_worker()
            real.start_web()
            real.start_nginx()
            job = enqueue_captive_job(kind="captive.apply_portal")
            wait_job(job, real)
        agent = ClientAgent(lab.namespace("c1"))
        wait_for(
            lambda: agent.http_get(NODE, HELD_PORT, "/captive/api/")["ok"],
            20,
            "nginx in the node",
        )
        yield {"lab": lab, "agent": agent, "real": real, "blocker": django_db_blocker}
    finally:
        # Each step runs even when one before it fails (a lab torn down
        # under the test must not leave processes or the folder behind).
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
            cleanup.callback(setattr, settings, "RQ_QUEUES", queues)
            cleanup.callback(flush_database, django_db_blocker)
            cleanup.callback(upstream.down)
            cleanup.callback(disable_quietly, lab)
            cleanup.callback(real.stop)
            if agent is not None:
                cleanup.callback(agent.close)


def flush_database(blocker: Any) -> None:
    with blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


def disable_quietly(lab: Any) -> None:
    """Delete the portal's table, unless the node is already gone."""
    from portal.host.errors import HostError

    with contextlib.suppress(HostError):
        firewall_ops.disable(lab.node_host("n1"))


@pytest.fixture(autouse=True)
def seeded(portal):  # type: ignore[no-untyped-def]
    """The data again after pytest-django emptied the tables (it runs the
    module's one database-marked test first and flushes after it)."""
    from captive.models import PortalInterface
    from captive.queue import enqueue_captive_job

    with portal["blocker"].unblock():
        if not PortalInterface.objects.exists():
            seed_database(portal["lab"])
            wait_job(enqueue_captive_job(kind="captive.apply_portal"), portal["real"])
    return portal


def wait_job(job: Any, real: RealPortal, timeout: float = 30) -> Any:
    from portal.models import Job, JobStatus

    row = wait_for(
        lambda: Job.objects.filter(pk=job.pk, status__in=JobStatus.finished()).first(),
        timeout,
        f"job {job.kind}\n{real.log()}",
    )
    assert row.status == JobStatus.COMPLETED, (row.kind, row.error, row.log)
    return row


def curl(lab: Any, *args: str, timeout: float = 5) -> subprocess.CompletedProcess:
    """curl in the client namespace; the output is decoded by hand, because
    ``text=True`` would turn the header's CRLF into LF and the head would
    never split from the body."""
    result = subprocess.run(
        ["ip", "netns", "exec", lab.namespace("c1"), "curl", "-q", "-s",
         "--max-time", str(timeout), *args],
        capture_output=True,
        timeout=timeout + 5,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def head_and_body(raw: str) -> tuple[str, str]:
    head, _sep, body = raw.partition("\r\n\r\n")
    return head, body


def status(head: str) -> int:
    return int(head.split(" ", 2)[1])


def held_answer_is_the_portal(head: str, body: str) -> None:
    """Never the online answer: the portal, no-store, Connection: close."""
    code = status(head)
    lowered = head.lower()
    assert "cache-control: no-store" in lowered, head
    assert "connection: close" in lowered, head
    if code == 302:
        assert f"location: http://{NODE}/captive/" in lowered, head
    else:
        assert code == 200 and len(body) > 4, head


PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204"),
    ("anything.example", "/generate_204"),
    ("captive.apple.com", "/hotspot-detect.html"),
    ("www.msftconnecttest.com", "/connecttest.txt"),
    ("www.msftconnecttest.com", "/redirect"),
    ("detectportal.firefox.com", "/canonical.html"),
    ("detectportal.firefox.com", "/success.txt"),
    ("nmcheck.gnome.org", "/check_network_status.txt"),
    ("fedoraproject.org", "/static/hotspot.txt"),
]


def session_of(portal: dict[str, Any]) -> Any:
    from captive.models import ClientSession, SessionState

    with portal["blocker"].unblock():
        return ClientSession.objects.filter(
            state=SessionState.ACTIVE, ip=client_ip(portal)
        ).first()


def client_ip(portal: dict[str, Any]) -> str:
    links = json.loads(
        portal["lab"]
        .exec("c1", ["ip", "-j", "address", "show", "eth0"], capture=True)
        .stdout
    )
    return next(
        a["local"]
        for a in links[0]["addr_info"]
        if a["family"] == "inet" and not a.get("secondary")
    )


def kick_everyone(portal: dict[str, Any]) -> None:
    from captive import services
    from captive.models import ClientSession, SessionState

    with portal["blocker"].unblock():
        for row in ClientSession.objects.filter(state=SessionState.ACTIVE):
            wait_job(services.client_kick(session_id=row.pk), portal["real"])


def tap(portal: dict[str, Any]) -> float:
    """The phone's Continue, as a browser does it: GET the page, POST the
    form; returns seconds from the POST to the first packet upstream."""
    lab, agent = portal["lab"], portal["agent"]
    page = curl(lab, "-L", f"http://{INTERNET}/some/page").stdout
    token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
    action = page.split('<form method="post" action="', 1)[1].split('"', 1)[0]
    started = time.monotonic()
    posted = curl(
        lab, "-i", "-X", "POST", "--data-urlencode", f"token={token}",
        f"http://{NODE}{action.replace('&amp;', '&')}",
    ).stdout  # fmt: skip
    head, _body = head_and_body(posted)
    assert status(head) == 302, posted
    assert "/captive/venue/" in head
    wait_for(
        lambda: "upstream" in agent.http_get(INTERNET, timeout=0.5).get("body", ""),
        5,
        "upstream after the tap",
        interval=0.01,
    )
    elapsed = time.monotonic() - started
    # The job records the session right after the kernel let the phone
    # through (the kernel first, so the row never claims more than is true).
    wait_for(lambda: session_of(portal), 5, "the session row after the tap")
    return elapsed


# -- before the tap -----------------------------------------------------------


def test_http_to_any_host_gets_the_real_portal_page(portal):  # type: ignore[no-untyped-def]
    kick_everyone(portal)
    for host in (INTERNET, "192.0.2.99"):
        answer = portal["agent"].http_get(host, path="/news/today")
        head, body = head_and_body(answer["body"])
        held_answer_is_the_portal(head, body)
    page = curl(portal["lab"], "-L", f"http://{INTERNET}/").stdout
    assert "<form" in page and "Continue" in page and "n1" not in page[:0]


@pytest.mark.parametrize(("host", "path"), PROBES)
def test_each_probe_before_the_tap_gets_the_portal_never_online(  # type: ignore[no-untyped-def]
    portal, host, path
):
    kick_everyone(portal)
    result = curl(
        portal["lab"], "-i", "-H", f"Host: {host}", f"http://{INTERNET}{path}"
    )
    head, body = head_and_body(result.stdout)
    held_answer_is_the_portal(head, body)
    online = probes.probe_for(host, path)
    if isinstance(online, probes.OnlineReply):
        assert body.encode() != online.body or status(head) != online.status


def test_the_held_port_really_closes_the_connection(portal):  # type: ignore[no-untyped-def]
    kick_everyone(portal)
    agent = portal["agent"]
    assert agent.call("open", name="once", host=INTERNET, port=80)["ok"]
    first = agent.call("request", name="once", host=INTERNET, path="/")
    assert first["ok"] and "302" in first["body"].split("\r\n", 1)[0]
    again = agent.call("request", name="once", host=INTERNET, path="/", timeout=1)
    assert not again["ok"] or again["body"] == ""


def test_https_and_dns_over_tls_fail_fast_before_the_tap(portal):  # type: ignore[no-untyped-def]
    kick_everyone(portal)
    for port in (443, 853):
        answer = portal["agent"].call("connect", host=INTERNET, port=port, timeout=3)
        assert not answer["ok"] and "ConnectionRefused" in answer["error"], answer
        assert answer["elapsed"] < 0.5


def test_ipv6_never_walks_round_the_portal_before_or_after_the_tap(portal):  # type: ignore[no-untyped-def]
    from captive.firewall_lab import NODE_LAN6, UPSTREAM_ADDRESS6

    lab, agent = portal["lab"], portal["agent"]
    lab.exec(
        "c1", ["ip", "address", "add", "2001:db8:1::c1/64", "dev", "eth0", "nodad"]
    )
    lab.exec("c1", ["ip", "-6", "route", "replace", "default", "via", NODE_LAN6])
    try:
        kick_everyone(portal)
        for through in (False, True):
            # Refused by the portal's table (a reset), not unroutable: the
            # lab routes IPv6 to the upstream (test_firewall_lab's control).
            for host, port in ((UPSTREAM_ADDRESS6, 80), (NODE_LAN6, HELD_PORT)):
                answer = agent.http_get(host, port=port, timeout=3)
                assert not answer["ok"], (through, host, answer)
                assert "ConnectionRefused" in answer["error"], (through, answer)
                assert answer["elapsed"] < 0.5, (through, answer)
            if not through:
                tap(portal)
    finally:
        lab.exec("c1", ["ip", "address", "del", "2001:db8:1::c1/64", "dev", "eth0"])


def test_dns_before_the_tap_and_probe_hosts_resolve_to_the_node_not_private(portal):  # type: ignore[no-untyped-def]
    kick_everyone(portal)
    answer = portal["lab"].exec(
        "c1", ["getent", "ahostsv4", "connectivitycheck.gstatic.com"], capture=True
    )
    address = answer.stdout.split()[0]
    assert address == probes.OFFLINE_ADDRESS
    import ipaddress

    assert not ipaddress.ip_address(address).is_private or address.startswith("198.18.")
    assert not address.startswith(("10.", "192.168.", "172."))


def test_rfc_8908_api_before_the_tap_says_captive(portal):  # type: ignore[no-untyped-def]
    kick_everyone(portal)
    result = curl(portal["lab"], "-i", f"http://{NODE}/captive/api/")
    head, body = head_and_body(result.stdout)
    assert "content-type: application/captive+json" in head.lower(), head
    data = json.loads(body) if body else {"head": head}
    assert data.get("captive") is True, data
    assert data["user-portal-url"].startswith(f"http://{NODE}/captive/")


def test_dhcp_option_114_reaches_a_real_dhcp_client(portal, tmp_path):  # type: ignore[no-untyped-def]
    conf = tmp_path / "dhclient.conf"
    conf.write_text(
        "option captive-portal code 114 = text;\n"
        "request subnet-mask, routers, domain-name-servers, captive-portal;\n"
    )
    leases, pid = tmp_path / "leases", tmp_path / "pid"
    subprocess.run(
        [
            "ip", "netns", "exec", portal["lab"].namespace("c1"), "dhclient", "-1",
            "-cf", str(conf), "-lf", str(leases), "-pf", str(pid),
            "-sf", "/bin/true", "eth0",
        ],
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    try:
        text = leases.read_text()
    finally:
        if pid.exists() and pid.read_text().strip().isdigit():
            subprocess.run(["kill", pid.read_text().strip()], check=False)
    assert f'option captive-portal "http://{NODE}/captive/api/";' in text


# -- the tap and after ---------------------------------------------------------


def test_tap_lets_a_new_connection_reach_upstream_and_an_old_one_never_gets_the_portal(  # type: ignore[no-untyped-def]
    portal,
):
    kick_everyone(portal)
    agent = portal["agent"]
    assert agent.call("open", name="before", host=INTERNET, port=80)["ok"]
    elapsed = tap(portal)
    assert elapsed < 2.0
    later = agent.call("request", name="before", host=INTERNET, path="/", timeout=2)
    assert "portal" not in later.get("body", "").lower()
    assert "/captive/" not in later.get("body", "")
    assert session_of(portal) is not None


def test_offline_probes_after_the_tap_get_the_exact_online_answers_from_the_node(  # type: ignore[no-untyped-def]
    portal,
):
    if session_of(portal) is None:
        tap(portal)
    answered = 0
    for host, path in PROBES:
        online = probes.probe_for(host, path)
        # Offline, the node's DNS knows only the systems' own probe hosts;
        # a made-up host (anything.example) resolves nowhere, as it should.
        if not isinstance(online, probes.OnlineReply) or host not in probes.PROBE_HOSTS:
            continue
        # The phone resolves the probe host through the node's DNS.
        result = curl(portal["lab"], "-i", f"http://{host}{path}")
        head, body = head_and_body(result.stdout)
        assert status(head) == online.status, (host, path, result.stdout)
        assert body.encode() == online.body, (host, path)
        for name, value in online.headers:
            assert f"{name}: {value}".lower() in head.lower(), (host, path, head)
        answered += 1
    assert answered == 7


def test_with_an_uplink_probes_get_the_portal_before_and_the_internet_after(portal):  # type: ignore[no-untyped-def]
    from captive import services

    with portal["blocker"].unblock():
        job = services.uplink_state_set(online=True)
        wait_job(job, portal["real"])
    try:
        hosts_file = portal["lab"].node_path("n1", probes.HOSTS_FILE).read_text()
        assert probes.OFFLINE_ADDRESS not in hosts_file
        kick_everyone(portal)
        for host, path in PROBES:
            held = curl(
                portal["lab"], "-i", "-H", f"Host: {host}", f"http://{INTERNET}{path}"
            )
            held_answer_is_the_portal(*head_and_body(held.stdout))
        tap(portal)
        for host, path in PROBES:
            result = curl(
                portal["lab"], "-i", "-H", f"Host: {host}", f"http://{INTERNET}{path}"
            )
            head, body = head_and_body(result.stdout)
            assert status(head) == 200, (host, path, head)
            assert body == f"upstream host={host} path={path}\n", (host, path)
    finally:
        with portal["blocker"].unblock():
            wait_job(services.uplink_state_set(online=False), portal["real"])


def test_rfc_8908_api_after_the_tap_says_not_captive_with_time_left(portal):  # type: ignore[no-untyped-def]
    if session_of(portal) is None:
        tap(portal)
    body = curl(portal["lab"], f"http://{NODE}/captive/api/").stdout
    data = json.loads(body)
    assert data["captive"] is False
    assert 0 < data["seconds-remaining"] <= 3600
    assert data["can-extend-session"] is False
    assert data["user-portal-url"] == f"http://{NODE}/captive/"
    assert data["venue-info-url"] == f"http://{NODE}/captive/venue/"
    venue = curl(portal["lab"], "-i", data["venue-info-url"]).stdout
    assert status(head_and_body(venue)[0]) == 200


def test_another_address_of_the_same_phone_still_gets_the_portal(portal):  # type: ignore[no-untyped-def]
    if session_of(portal) is None:
        tap(portal)
    lab = portal["lab"]
    lab.exec("c1", ["ip", "address", "add", "10.213.1.250/24", "dev", "eth0"])
    try:
        answer = portal["agent"].call(
            "get", host=INTERNET, port=80, path="/", source="10.213.1.250"
        )
        head, body = head_and_body(answer["body"])
        held_answer_is_the_portal(head, body)
    finally:
        lab.exec("c1", ["ip", "address", "del", "10.213.1.250/24", "dev", "eth0"])


def test_another_mac_with_the_authorised_address_gets_the_portal(portal):  # type: ignore[no-untyped-def]
    if session_of(portal) is None:
        tap(portal)
    lab = portal["lab"]
    links = json.loads(
        lab.exec("c1", ["ip", "-j", "link", "show", "eth0"], capture=True).stdout
    )
    real_mac = links[0]["address"]
    lab.exec("c1", ["ip", "link", "set", "eth0", "address", "02:00:5e:00:99:01"])
    try:
        lab.exec("n1", ["ip", "neigh", "flush", "dev", "br-lan"])
        head, body = head_and_body(portal["agent"].http_get(INTERNET)["body"])
        held_answer_is_the_portal(head, body)
    finally:
        lab.exec("c1", ["ip", "link", "set", "eth0", "address", real_mac])
        lab.exec("n1", ["ip", "neigh", "flush", "dev", "br-lan"])
    assert "upstream" in portal["agent"].http_get(INTERNET)["body"]


def _timed_session(portal: dict[str, Any], *, session: int, idle: int) -> None:
    """The portal's timeouts set as the operator sets them, then applied."""
    from captive.models import CaptiveSettings
    from captive.queue import enqueue_captive_job
    from captive.selectors import invalidate_pages

    with portal["blocker"].unblock():
        row = CaptiveSettings.load()
        row.session_timeout, row.idle_timeout = session, idle
        row.save()
        invalidate_pages()
        wait_job(enqueue_captive_job(kind="captive.apply_portal"), portal["real"])


def _ended_as(portal: dict[str, Any], ip: str) -> str:
    from captive.models import ClientSession
    from captive.queue import enqueue_captive_job

    with portal["blocker"].unblock():
        wait_job(enqueue_captive_job(kind="captive.sync_clients"), portal["real"])
        row = ClientSession.objects.filter(ip=ip).order_by("-pk").first()
        return f"{row.state}/{row.end_reason}"


def test_idle_and_hard_timeouts_in_seconds_end_access_and_the_session(portal):  # type: ignore[no-untyped-def]
    agent = portal["agent"]
    ip = client_ip(portal)
    kick_everyone(portal)
    try:
        # Idle: 2 s without a packet and the kernel lets the phone go.
        _timed_session(portal, session=3600, idle=2)
        tap(portal)
        for _ in range(3):  # busy for 3 s: each request refreshes the timer
            assert "upstream" in agent.http_get(INTERNET)["body"]
            time.sleep(1)
        time.sleep(3)
        held_answer_is_the_portal(*head_and_body(agent.http_get(INTERNET)["body"]))
        assert _ended_as(portal, ip) == "ended/idle"
        # Hard: 3 s of session however busy the phone is.
        _timed_session(portal, session=3, idle=600)
        tap(portal)
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            assert "upstream" in agent.http_get(INTERNET)["body"]
            time.sleep(0.25)
        time.sleep(1.8)
        held_answer_is_the_portal(*head_and_body(agent.http_get(INTERNET)["body"]))
        assert _ended_as(portal, ip) == "ended/expired"
    finally:
        _timed_session(portal, session=3600, idle=600)


def test_operator_kick_stops_a_live_flow_through_the_worker(portal):  # type: ignore[no-untyped-def]
    if session_of(portal) is None:
        tap(portal)
    agent = portal["agent"]
    assert agent.call("stream", name="live", host=INTERNET, port=80)["ok"]
    wait_for(lambda: agent.call("stream_status", name="live")["bytes"] > 0, 5, "stream")
    kick_everyone(portal)
    time.sleep(1.0)
    before = agent.call("stream_status", name="live")["bytes"]
    time.sleep(1.0)
    state = agent.call("stream_status", name="live")
    assert state["bytes"] == before or state["error"]
    head, body = head_and_body(agent.http_get(INTERNET)["body"])
    held_answer_is_the_portal(head, body)


def test_restart_of_web_and_worker_keeps_the_phone_through(portal):  # type: ignore[no-untyped-def]
    if session_of(portal) is None:
        tap(portal)
    real = portal["real"]
    real.stop_web_and_worker()
    with portal["blocker"].unblock():
        real.start_worker()
        real.start_web()
        from captive.queue import enqueue_captive_job

        wait_job(enqueue_captive_job(kind="captive.apply_portal"), real)
    assert "upstream" in portal["agent"].http_get(INTERNET)["body"]
    assert session_of(portal) is not None


# The one test marked for the database (pytest-django sets the test database
# up only for a session that holds such a test); it empties the tables when
# it ends, and ``seeded`` writes them again for the next test.
@pytest.mark.django_db(transaction=True)
def test_switching_the_portal_off_removes_option_114_and_the_probe_hosts(portal):  # type: ignore[no-untyped-def]
    from captive.models import PortalInterface
    from captive.queue import enqueue_captive_job

    lab, real = portal["lab"], portal["real"]
    conf = lab.node_path("n1", "/etc/byzantium/dnsmasq.conf")
    assert 'dhcp-option=114,"' in conf.read_text()
    with portal["blocker"].unblock():
        PortalInterface.objects.filter(name="br-lan").update(enabled=False)
        from captive.selectors import invalidate_pages

        invalidate_pages()
        wait_job(enqueue_captive_job(kind="captive.apply_portal"), real)
    try:
        text = conf.read_text()
        assert "114" not in text and "captive-probe-hosts" not in text
        assert not firewall_ops.is_enabled(lab.node_host("n1"))
    finally:
        with portal["blocker"].unblock():
            PortalInterface.objects.filter(name="br-lan").update(enabled=True)
            invalidate_pages()
            wait_job(enqueue_captive_job(kind="captive.apply_portal"), real)
