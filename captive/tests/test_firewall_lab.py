"""The captive firewall for real: a node holding two clients, an "Internet".

One lab per module: node n1 with clients c1 and c2 on its bridge, plus an
"upstream" namespace linked to n1 (:mod:`captive.firewall_lab`) answering
HTTP on 80, 443 and 853 at a few documentation addresses, and the portal's
HTTP server in n1's namespace on ``PORTAL_PORT``. Each test starts from a
freshly applied table with no client in it and forgets every tracked flow,
so the tests do not depend on each other's order.

Every assertion is about what a client really gets over the wire: which
server answered, how fast a refusal came, whether a connection survives.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from captive import firewall_ops
from captive.firewall import Client, FirewallConfig, render_ruleset
from captive.firewall_lab import (
    INTERNET_HOSTS,
    NOWHERE,
    UPSTREAM_ADDRESS6,
    ClientAgent,
    Upstream,
    remove_stale,
)
from portal.host.builders import nft
from portal.host.node import Host
from portal.lab.pytest_plugin import labs_root

pytestmark = pytest.mark.lab

PORTAL_PORT = 8080
HOST = INTERNET_HOSTS[0]
# A refusal must come back in well under a second; a timeout would take 3 s.
FAST = 0.5


class Bench:
    """Everything a test needs: the lab, the node's host, the clients."""

    def __init__(self, lab, upstream: Upstream) -> None:
        self.lab = lab
        self.upstream = upstream
        self.host: Host = lab.node_host("n1")
        self.config = FirewallConfig(
            interfaces=("br-lan",),
            portal_port=PORTAL_PORT,
            session_timeout=3600,
            idle_timeout=600,
        )
        self.agents = {name: ClientAgent(lab.namespace(name)) for name in ("c1", "c2")}
        self.clients = {name: self._client(name) for name in ("c1", "c2")}

    def _client(self, name: str) -> Client:
        links = json.loads(self.exec(name, "ip", "-j", "address", "show", "eth0"))
        mac = links[0]["address"]
        ipv4 = [a["local"] for a in links[0]["addr_info"] if a["family"] == "inet"]
        return Client(mac=mac, ip=ipv4[0])

    def exec(self, member: str, *argv: str) -> str:
        result = self.lab.exec(member, list(argv), capture=True, timeout=10)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def node(self, *argv: str) -> str:
        namespace = self.lab.namespace("n1")
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, *argv],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def fresh(self, config: FirewallConfig | None = None) -> None:
        """A new table with no client, and no tracked flow anywhere."""
        firewall_ops.enable(self.host, config or self.config, keep_clients=False)
        subprocess.run(
            ["ip", "netns", "exec", self.lab.namespace("n1"), "conntrack", "-F"],
            capture_output=True,
        )

    def get(self, client: str, host: str = HOST, **kwargs) -> dict:
        return self.agents[client].http_get(host, **kwargs)

    def close(self) -> None:
        for agent in self.agents.values():
            agent.close()


def served_by(answer: dict) -> str | None:
    """Which server answered a GET: ``portal``, ``upstream`` or None."""
    if not answer["ok"]:
        return None
    body = answer["body"].split("\r\n\r\n", 1)[1]
    return body.split(" ", 1)[0]


@pytest.fixture(scope="module")
def bench(make_module_lab) -> Iterator[Bench]:
    remove_stale(labs_root())
    lab = make_module_lab(nodes=1, clients=2)
    upstream = Upstream(prefix=lab.prefix, node_namespace=lab.namespace("n1"))
    setup = None
    try:
        upstream.up()
        upstream.start_server(upstream.namespace, "upstream", (80, 443, 853))
        upstream.start_server(lab.namespace("n1"), "portal", (PORTAL_PORT,))
        setup = Bench(lab, upstream)
        yield setup
    finally:
        if setup is not None:
            setup.close()
            firewall_ops.disable(setup.host)
        upstream.down()


@pytest.fixture
def fw(bench: Bench) -> Bench:
    bench.fresh()
    return bench


def test_rendered_ruleset_passes_nft_check_with_clients_and_lists(fw):
    text = render_ruleset(fw.config, firewall_ops.read_state(fw.host))
    fw.host.files.write("/tmp/captive-check.nft", text)
    result = fw.host.runner.run(
        nft.check_file(str(fw.host.files.path("/tmp/captive-check.nft")))
    )
    assert result.ok
    firewall_ops.authorise(fw.host, fw.config, [fw.clients["c1"]])
    firewall_ops.update_mac_lists(
        fw.host, fw.config, allow=["02:00:00:00:0a:01"], block=["02:00:00:00:0b:01"]
    )
    state = firewall_ops.read_state(fw.host)
    text = render_ruleset(fw.config, state)
    fw.host.files.write("/tmp/captive-check.nft", text)
    assert fw.host.runner.run(
        nft.check_file(str(fw.host.files.path("/tmp/captive-check.nft")))
    ).ok


def test_http_to_any_host_lands_on_the_portal(fw):
    for host in (*INTERNET_HOSTS, NOWHERE):
        answer = fw.get("c1", host)
        assert served_by(answer) == "portal", (host, answer)
        assert f"host={host}" in answer["body"]


def test_without_the_table_the_client_reaches_upstream(fw):
    """Control: the lab routes to upstream, so the other tests mean something."""
    firewall_ops.disable(fw.host)
    assert served_by(fw.get("c1")) == "upstream"
    assert fw.agents["c1"].call("connect", host=HOST, port=443)["ok"]


def test_https_fails_fast_while_held(fw):
    for host in (HOST, NOWHERE):
        answer = fw.agents["c1"].call("connect", host=host, port=443, timeout=3)
        assert not answer["ok"]
        assert "ConnectionRefused" in answer["error"], answer
        assert answer["elapsed"] < FAST


def test_other_udp_is_refused_fast_while_held(fw):
    answer = fw.agents["c1"].call("udp", host=HOST, port=443, timeout=3)
    assert not answer["ok"]
    assert "timed out" not in answer["error"]
    assert answer["elapsed"] < FAST


def test_dns_to_any_address_is_answered_by_the_node(fw):
    # Nothing answers DNS upstream: any answer comes from the node's dnsmasq.
    for host in (HOST, NOWHERE, "10.213.1.1"):
        answer = fw.agents["c1"].call("dns", host=host, name="n1.mesh", timeout=2)
        assert answer["ok"], (host, answer)
        assert answer["id"] == "1234"
    dnsmasq = fw.node("ss", "-Hunlp", "sport", "=", ":53")
    assert "dnsmasq" in dnsmasq


def test_dns_over_tls_is_refused_fast(fw):
    answer = fw.agents["c1"].call("connect", host=HOST, port=853, timeout=3)
    assert not answer["ok"]
    assert "ConnectionRefused" in answer["error"]
    assert answer["elapsed"] < FAST


def test_authorise_lets_a_new_connection_reach_upstream(fw):
    c1 = fw.clients["c1"]
    firewall_ops.authorise(fw.host, fw.config, [c1])
    assert served_by(fw.get("c1")) == "upstream"
    assert fw.agents["c1"].call("connect", host=HOST, port=443)["ok"]
    assert fw.agents["c1"].call("connect", host=HOST, port=853)["ok"]
    # The other client is still held.
    assert served_by(fw.get("c2")) == "portal"
    state = firewall_ops.read_state(fw.host)
    assert [s.client for s in state.authorised] == [c1]


def test_kept_alive_connection_never_gets_the_portal_after_authorise(fw):
    agent = fw.agents["c1"]
    assert agent.call("open", name="kept", host=HOST, port=80)["ok"]
    first = agent.call("request", name="kept", host=HOST)
    assert served_by(first) == "portal"
    second = agent.call("request", name="kept", host=HOST)
    assert served_by(second) == "portal"  # really kept alive

    forgotten = firewall_ops.authorise(fw.host, fw.config, [fw.clients["c1"]])

    assert forgotten >= 1
    after = agent.call("request", name="kept", host=HOST, timeout=2)
    assert served_by(after) != "portal", after
    assert served_by(fw.get("c1")) == "upstream"


def test_kept_alive_connection_is_reset_before_its_flow_is_forgotten(fw):
    """The sets change a moment before conntrack forgets the old flows; in
    that moment the old connection must not get the portal either."""
    agent = fw.agents["c1"]
    assert agent.call("open", name="gap", host=HOST, port=80)["ok"]
    assert served_by(agent.call("request", name="gap", host=HOST)) == "portal"

    assert (
        firewall_ops.authorise(
            fw.host, fw.config, [fw.clients["c1"]], forget_flows=False
        )
        == 0
    )

    after = agent.call("request", name="gap", host=HOST, timeout=2)
    assert not after["ok"] and "Reset" in after["error"], after
    assert after["elapsed"] < FAST
    assert served_by(fw.get("c1")) == "upstream"


def test_idle_client_expires_by_kernel_timer(fw):
    fw.fresh(replace(fw.config, idle_timeout=2))
    firewall_ops.authorise(fw.host, fw.config, [fw.clients["c1"]])
    # Traffic keeps it: each request refreshes the idle timer.
    for _ in range(4):
        assert served_by(fw.get("c1")) == "upstream"
        time.sleep(1)
    time.sleep(2.5)  # silent for longer than the idle timeout
    assert served_by(fw.get("c1")) == "portal"
    state = firewall_ops.read_state(fw.host)
    assert not state.authorised


def test_hard_timeout_expires_a_busy_client(fw):
    firewall_ops.authorise(fw.host, fw.config, [fw.clients["c1"]], session_timeout=3)
    started = time.monotonic()
    seen = []
    while time.monotonic() - started < 5:
        seen.append((time.monotonic() - started, served_by(fw.get("c1"))))
        time.sleep(0.25)
    before = [who for at, who in seen if at < 2.5]
    after = [who for at, who in seen if at > 3.5]
    assert before and set(before) == {"upstream"}
    assert after and set(after) == {"portal"}


def test_deauthorise_stops_a_live_flow(fw):
    firewall_ops.authorise(fw.host, fw.config, [fw.clients["c1"]])
    agent = fw.agents["c1"]
    assert agent.call("stream", name="live", host=HOST, port=80)["ok"]
    time.sleep(0.5)
    flowing = agent.call("stream_status", name="live")
    assert flowing["bytes"] > 10_000 and flowing["error"] is None

    firewall_ops.deauthorise(fw.host, fw.config, [fw.clients["c1"]])
    kicked = time.monotonic()

    deadline = kicked + 3
    status = agent.call("stream_status", name="live")
    while status["error"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
        status = agent.call("stream_status", name="live")
    assert status["error"] is not None, status
    assert "Reset" in status["error"]
    assert time.monotonic() - kicked < 1.0
    assert served_by(fw.get("c1")) == "portal"


def test_another_mac_with_an_authorised_ip_gets_the_portal(fw):
    c1, c2 = fw.clients["c1"], fw.clients["c2"]
    firewall_ops.authorise(fw.host, fw.config, [c1])
    # Client 1 leaves; client 2 takes its address with its own MAC.
    fw.exec("c1", "ip", "link", "set", "eth0", "down")
    try:
        fw.exec("c2", "ip", "address", "add", f"{c1.ip}/32", "dev", "eth0")
        fw.node("ip", "neigh", "flush", "dev", "br-lan")
        answer = fw.agents["c2"].call("get", host=HOST, port=80, source=c1.ip)
        assert served_by(answer) == "portal", answer
        https = fw.agents["c2"].call("connect", host=HOST, port=443, source=c1.ip)
        assert not https["ok"] and https["elapsed"] < FAST
    finally:
        fw.exec("c2", "ip", "address", "del", f"{c1.ip}/32", "dev", "eth0")
        fw.exec("c1", "ip", "link", "set", "eth0", "up")
        # The link going down took client 1's default route with it.
        fw.exec("c1", "ip", "route", "replace", "default", "via", "10.213.1.1")
        fw.node("ip", "neigh", "flush", "dev", "br-lan")
    assert c2.mac != c1.mac


def test_an_authorised_mac_with_another_ip_gets_the_portal(fw):
    c1 = fw.clients["c1"]
    firewall_ops.authorise(fw.host, fw.config, [c1])
    other = "10.213.1.50"
    fw.exec("c1", "ip", "address", "add", f"{other}/32", "dev", "eth0")
    try:
        answer = fw.agents["c1"].call("get", host=HOST, port=80, source=other)
        assert served_by(answer) == "portal", answer
        assert served_by(fw.get("c1")) == "upstream"  # its real address passes
    finally:
        fw.exec("c1", "ip", "address", "del", f"{other}/32", "dev", "eth0")


def test_ipv6_cannot_bypass_the_portal(fw):
    c1 = fw.clients["c1"]
    address = "2001:db8:1::c1"
    fw.exec("c1", "ip", "address", "add", f"{address}/64", "dev", "eth0", "nodad")
    fw.exec("c1", "ip", "-6", "route", "replace", "default", "via", "2001:db8:1::1")
    try:
        firewall_ops.disable(fw.host)
        # Control: without the table, IPv6 reaches upstream.
        assert served_by(fw.get("c1", UPSTREAM_ADDRESS6)) == "upstream"
        fw.fresh()
        for authorised in (False, True):
            if authorised:
                firewall_ops.authorise(fw.host, fw.config, [c1])
                firewall_ops.update_mac_lists(fw.host, fw.config, allow=[c1.mac])
            answer = fw.get("c1", UPSTREAM_ADDRESS6, timeout=3)
            assert not answer["ok"], answer
            assert answer["elapsed"] < FAST
            udp = fw.agents["c1"].call("udp", host=UPSTREAM_ADDRESS6, port=53)
            assert not udp["ok"] and udp["elapsed"] < FAST
            # Nor the node itself, beyond neighbour discovery.
            node = fw.get("c1", "2001:db8:1::1", port=PORTAL_PORT, timeout=3)
            assert not node["ok"] and node["elapsed"] < FAST
    finally:
        fw.exec("c1", "ip", "address", "del", f"{address}/64", "dev", "eth0")


def test_byte_counters_count_both_ways(fw):
    c1 = fw.clients["c1"]
    firewall_ops.authorise(fw.host, fw.config, [c1])
    before = firewall_ops.read_state(fw.host).session(c1.mac, c1.ip)
    assert before is not None and before.bytes_down == 0
    answer = fw.get("c1", path="/bytes/200000", timeout=5)
    assert served_by(answer) == "upstream"
    after = firewall_ops.read_state(fw.host).session(c1.mac, c1.ip)
    assert after.bytes_down >= 200_000
    assert after.bytes_up > before.bytes_up
    assert after.packets_up > 0 and after.packets_down > 0


def test_blocked_mac_is_never_authorised_and_allowed_mac_always_is(fw):
    c1, c2 = fw.clients["c1"], fw.clients["c2"]
    firewall_ops.update_mac_lists(fw.host, fw.config, block=[c1.mac], allow=[c2.mac])
    firewall_ops.authorise(fw.host, fw.config, [c1])
    assert served_by(fw.get("c1")) == "portal"
    assert served_by(fw.get("c2")) == "upstream"
    firewall_ops.update_mac_lists(fw.host, fw.config, unblock=[c1.mac])
    assert served_by(fw.get("c1")) == "upstream"


def test_reapplying_the_table_keeps_clients_and_their_timers(fw):
    c1 = fw.clients["c1"]
    firewall_ops.authorise(fw.host, fw.config, [c1], session_timeout=1000)
    fw.get("c1", path="/bytes/50000")
    before = firewall_ops.read_state(fw.host).session(c1.mac, c1.ip)
    carried = firewall_ops.enable(fw.host, replace(fw.config, idle_timeout=300))
    assert carried is not None and carried.session(c1.mac, c1.ip) is not None
    after = firewall_ops.read_state(fw.host).session(c1.mac, c1.ip)
    assert after.authorised
    assert after.session_timeout == 1000
    assert after.session_left <= before.session_left
    assert after.bytes_down >= before.bytes_down >= 50_000
    assert served_by(fw.get("c1")) == "upstream"


def test_turning_off_removes_exactly_the_table(fw):
    firewall_ops.disable(fw.host)
    fw.host.runner.run(
        firewall_ops.nft_batch(
            "table inet lab_neighbour {\n\tset keep {\n\t\ttype ipv4_addr\n\t}\n}\n"
        )
    )
    try:
        before = fw.node("nft", "list", "ruleset")
        firewall_ops.enable(fw.host, fw.config)
        assert firewall_ops.is_enabled(fw.host)
        assert fw.node("nft", "list", "ruleset") != before
        assert firewall_ops.disable(fw.host) is True
        assert fw.node("nft", "list", "ruleset") == before
        assert firewall_ops.disable(fw.host) is False
        assert not firewall_ops.is_enabled(fw.host)
    finally:
        fw.host.runner.run(nft.delete_table("lab_neighbour", missing_ok=True))
