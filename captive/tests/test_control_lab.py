"""The captive jobs' work for real: a lab node, a client, an "Internet".

Uses the firewall engineer's lab equipment (:mod:`captive.firewall_lab`) and
drives the node only through :mod:`captive.control` (what the jobs run), so
the database and the kernel's sets are checked against each other: a tap
lets a new connection reach upstream, the neighbour table names the MAC,
sync copies counters back, a lost table (a restart) is rebuilt with the
sessions the database still counts, and a kick stops access.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from captive import control, firewall_ops
from captive.firewall_lab import INTERNET_HOSTS, ClientAgent, Upstream, remove_stale
from captive.models import (
    CaptiveSettings,
    ClientSession,
    EndReason,
    MacRule,
    PortalInterface,
    SessionState,
)
from portal.lab.pytest_plugin import labs_root

pytestmark = [pytest.mark.lab, pytest.mark.django_db]

HELD_PORT = 8081
HOST = INTERNET_HOSTS[0]


def served_by(answer: dict) -> str | None:
    if not answer["ok"]:
        return None
    return answer["body"].split("\r\n\r\n", 1)[1].split(" ", 1)[0]


@pytest.fixture(scope="module")
def lab_node(make_module_lab) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    remove_stale(labs_root())
    lab = make_module_lab(nodes=1, clients=1)
    upstream = Upstream(prefix=lab.prefix, node_namespace=lab.namespace("n1"))
    agent = None
    host = lab.node_host("n1")
    try:
        upstream.up()
        upstream.start_server(upstream.namespace, "upstream", (80,))
        upstream.start_server(lab.namespace("n1"), "portal", (HELD_PORT,))
        agent = ClientAgent(lab.namespace("c1"))
        links = json.loads(
            lab.exec("c1", ["ip", "-j", "address", "show", "eth0"], capture=True).stdout
        )
        mac = links[0]["address"]
        ip = next(a["local"] for a in links[0]["addr_info"] if a["family"] == "inet")
        yield {"lab": lab, "host": host, "agent": agent, "mac": mac, "ip": ip}
    finally:
        if agent is not None:
            agent.close()
        firewall_ops.disable(host)
        upstream.down()


@pytest.fixture
def node(lab_node, settings):  # type: ignore[no-untyped-def]
    settings.CAPTIVE_HELD_PORT = HELD_PORT
    PortalInterface.objects.create(name="br-lan", enabled=True)
    row = CaptiveSettings.load()
    row.session_timeout, row.idle_timeout = 3600, 600
    row.save()
    firewall_ops.disable(lab_node["host"])
    control.apply_portal(lab_node["host"])
    return lab_node


def tap(node) -> ClientSession:  # type: ignore[no-untyped-def]
    # The web process records the tap with the phone's IP only.
    session = ClientSession.objects.create(
        ip=node["ip"], mac="", expires_at=ClientSession.ends_after(3600)
    )
    control.authorise_client(node["host"], session.pk)
    session.refresh_from_db()
    return session


def test_tap_lets_a_new_connection_reach_upstream_and_records_the_mac(node):  # type: ignore[no-untyped-def]
    import time

    assert served_by(node["agent"].http_get(HOST)) == "portal"
    started = time.perf_counter()
    session = tap(node)
    # The job's own work (neighbour lookup, nft batch, conntrack) is a small
    # part of the 200 ms budget of a tap.
    assert time.perf_counter() - started < 0.15
    assert session.state == SessionState.ACTIVE
    assert session.mac == node["mac"]
    assert served_by(node["agent"].http_get(HOST)) == "upstream"


def test_offline_probe_address_is_on_the_node(node):  # type: ignore[no-untyped-def]
    out = node["lab"].exec(
        "n1", ["ip", "-j", "address", "show", "dev", "lo"], capture=True
    )
    assert "198.18.0.1" in out.stdout
    hosts = node["host"].files.read_text("/etc/byzantium/captive-probe-hosts")
    assert "198.18.0.1 connectivitycheck.gstatic.com" in hosts


def test_sync_copies_counters_and_a_restart_keeps_the_session(node):  # type: ignore[no-untyped-def]
    session = tap(node)
    node["agent"].http_get(HOST, path="/bytes/20000")
    control.sync_clients(node["host"])
    session.refresh_from_db()
    assert session.bytes_down > 20000 and session.bytes_up > 0
    # A restart: the kernel's table is gone, the database remembers.
    firewall_ops.disable(node["host"])
    result = control.sync_clients(node["host"])
    assert result["restored"] == 1
    state = firewall_ops.read_state(node["host"])
    assert [(s.mac, s.ip) for s in state.authorised] == [(node["mac"], node["ip"])]
    assert served_by(node["agent"].http_get(HOST)) == "upstream"


def test_restart_without_restore_sends_everyone_back(node):  # type: ignore[no-untyped-def]
    session = tap(node)
    row = CaptiveSettings.load()
    row.restore_after_restart = False
    row.save()
    firewall_ops.disable(node["host"])
    control.sync_clients(node["host"])
    session.refresh_from_db()
    assert session.state == SessionState.ENDED and session.end_reason == EndReason.LOST
    assert served_by(node["agent"].http_get(HOST)) == "portal"


def test_kick_sends_the_phone_back_to_the_portal(node):  # type: ignore[no-untyped-def]
    session = tap(node)
    control.deauthorise_client(node["host"], session.pk, EndReason.KICKED)
    session.refresh_from_db()
    assert session.state == SessionState.ENDED
    assert served_by(node["agent"].http_get(HOST)) == "portal"


def test_blocked_mac_cannot_be_let_through(node):  # type: ignore[no-untyped-def]
    MacRule.objects.create(mac=node["mac"], kind="blocked")
    control.update_mac_rules(node["host"])
    session = ClientSession.objects.create(
        ip=node["ip"], mac="", expires_at=ClientSession.ends_after(3600)
    )
    from portal.jobqueue.errors import JobFailed

    with pytest.raises(JobFailed):
        control.authorise_client(node["host"], session.pk)
    session.refresh_from_db()
    assert session.end_reason == EndReason.BLOCKED
    assert served_by(node["agent"].http_get(HOST)) == "portal"
