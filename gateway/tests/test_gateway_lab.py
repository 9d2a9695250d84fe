"""The gateway in a real lab: NAT, failover between two gateways, DNS, removal.

Five nodes in a line (n1 - n2 - n3 - n4 - n5), a client on n3, and an
"Internet" namespace (:mod:`portal.lab.internet`) behind the uplinks of n1
and n5. The gateways are configured by the gateway app's own
:func:`gateway.apply.apply_gateway` and checked by its own uplink check
loop (:class:`gateway.lab_internet.GatewayNode`); everything stays inside
the lab's namespaces.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from gateway import nat
from gateway.lab_internet import GatewayNode
from meshnet import apply as mesh_apply
from meshnet import babel_config, dnsmasq_config
from portal.lab.internet import (
    DNS_ADDRESS,
    TEST_NAME,
    UPLINK,
    WEB_ADDRESS,
    Internet,
    resolve_in,
    uplink_address,
)

pytestmark = [pytest.mark.lab]

# Seconds from the cut to the route's withdrawal: the check's own arithmetic
# (3 failures of at most 1 s each, 0.3 s apart), with room for a busy CI.
WITHDRAW_BOUND = 6.0
# Seconds from the cut to the client's traffic through n5: the withdrawal,
# then babel's reconvergence (about half a second in the lab, measured in
# bench/README.md), with room for a busy CI.
FAILOVER_BOUND = 10.0
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
N1_PEER = uplink_address(1).split("/")[0]
N5_PEER = uplink_address(5).split("/")[0]


@pytest.fixture(scope="module")
def mesh(make_module_lab):
    from captive.firewall_lab import ClientAgent

    lab = make_module_lab(nodes=5, topology="line", clients=3)
    internet = Internet(
        lab.prefix,
        lab.base_dir / "inet",
        {"n1": lab.namespace("n1"), "n5": lab.namespace("n5")},
        dhcp_nodes=("n5",),
    )
    agent = None
    gateways = {}
    try:
        internet.up()
        gateways = {name: GatewayNode(lab, name) for name in ("n1", "n5")}
        agent = ClientAgent(lab.namespace("c3"))
        yield {"lab": lab, "internet": internet, "gw": gateways, "c3": agent}
    finally:
        for node in gateways.values():
            node.stop()
        if agent is not None:
            agent.close()
        internet.down()


def _peer(agent, timeout=0.6):
    answer = agent.http_get(WEB_ADDRESS, timeout=timeout)
    body = answer.get("body", "") if answer.get("ok") else ""
    for word in body.split():
        if word.startswith("peer="):
            return word[5:]
    return None


def _wait_peer(agent, wanted, timeout=20.0):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = _peer(agent)
        if seen == wanted:
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"traffic did not go through {wanted} (last seen: {seen})")


def _nft_tables(lab, node):
    result = subprocess.run(
        ["ip", "netns", "exec", lab.namespace(node), "nft", "-j", "list", "tables"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {
        (item["table"]["family"], item["table"]["name"])
        for item in json.loads(result.stdout)["nftables"]
        if "table" in item
    }


def _default_routes(lab, node):
    result = subprocess.run(
        ["ip", "-n", lab.namespace(node), "-j", "-4", "route", "show", "default"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout or "[]")


def _wait_default_dev(lab, node, dev, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if [r.get("dev") for r in _default_routes(lab, node)] == [dev]:
            return
        time.sleep(0.1)
    raise AssertionError(f"{node} does not route the default through {dev}")


def _node_file(lab, node, path):
    return lab.node_path(node, path).read_text()


def _set_mesh_dns(lab, node, servers):
    from dataclasses import replace

    state = replace(lab.node_state(node), upstream_servers=tuple(servers))
    mesh_apply.refresh_dnsmasq(lab.node_host(node), state)


def test_a_client_two_hops_away_fetches_a_page_through_node_1s_nat(mesh):
    lab, n1, agent = mesh["lab"], mesh["gw"]["n1"], mesh["c3"]
    assert _peer(agent) is None  # no way out yet
    report = n1.apply(online=True)
    assert any("NAT" in step for step in report.steps)
    assert ("ip", nat.TABLE) in _nft_tables(lab, "n1")
    assert "redistribute ip 0.0.0.0/0 le 0 allow" in _node_file(
        lab, "n1", babel_config.CONFIG
    )
    _wait_peer(agent, N1_PEER)
    # n3 -> n2 -> n1 -> Internet: n3's default route points at n2, and the
    # Internet saw n1's uplink address (it has no route to the mesh at all).
    (route,) = _default_routes(lab, "n3")
    assert route["dev"] == "to-n2" and route["protocol"] == "babel"
    (route,) = _default_routes(lab, "n2")
    assert route["dev"] == "to-n1"
    # Applying the same plan again changes nothing.
    assert n1.apply().steps == []


def test_dns_resolves_internet_names_through_the_gateway(mesh):
    lab, agent = mesh["lab"], mesh["c3"]
    assert f"server={DNS_ADDRESS}" in _node_file(lab, "n1", dnsmasq_config.CONFIG)
    # n3 is no gateway: its dnsmasq forwards to the gateways' client-side
    # addresses across the mesh.
    _set_mesh_dns(lab, "n3", ["10.213.1.1", "10.213.5.1"])
    assert agent is not None
    answer = resolve_in(lab.namespace("c3"), TEST_NAME, "10.213.3.1")
    assert answer == WEB_ADDRESS
    assert resolve_in(lab.namespace("c3"), "nothing.example.test", "10.213.3.1") == ""


def test_a_cut_uplink_withdraws_its_route_and_traffic_moves_to_node_5(mesh):
    lab, internet, agent = mesh["lab"], mesh["internet"], mesh["c3"]
    n1, n5 = mesh["gw"]["n1"], mesh["gw"]["n5"]
    n5.apply(online=True)
    # Both announce now: wait until n5's neighbour uses n5's route (the
    # failover is timed from a settled mesh); babeld keeps n3 on n1's.
    _wait_default_dev(lab, "n4", "to-n5")
    assert _peer(agent) == N1_PEER
    n1.start()
    n5.start()
    time.sleep(1)
    assert n1.changes == [] and n5.changes == []
    cut_at = time.monotonic()
    internet.cut("n1")
    moved_at = _wait_peer(agent, N5_PEER, timeout=FAILOVER_BOUND + 10)
    seconds = moved_at - cut_at
    withdrawn_at = n1.changes[0][0] if n1.changes else None
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "gateway-failover.json").write_text(
        json.dumps(
            {
                "failover_seconds": round(seconds, 2),
                "withdrawn_after_seconds": round(withdrawn_at - cut_at, 2)
                if withdrawn_at
                else None,
            }
        )
        + "\n"
    )
    print(f"failover: traffic through n5 {seconds:.2f} s after the cut")
    assert n1.errors == [] and n5.errors == []
    assert [online for _, online in n1.changes] == [False]
    assert withdrawn_at - cut_at < WITHDRAW_BOUND
    assert seconds < FAILOVER_BOUND
    # Withdrawn by the check, not by the kernel: n1 still has its own
    # default route through the uplink, babeld no longer announces it.
    assert any(r.get("dev") == UPLINK for r in _default_routes(lab, "n1"))
    assert "0.0.0.0/0" not in _node_file(lab, "n1", babel_config.CONFIG)
    (route,) = _default_routes(lab, "n3")
    assert route["dev"] == "to-n4"
    # The uplink comes back: announced again after the passes it needs.
    internet.mend()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(n1.changes) < 2:
        time.sleep(0.1)
    n1.stop()
    n5.stop()
    assert [online for _, online in n1.changes] == [False, True]
    assert n5.changes == []
    assert "0.0.0.0/0 le 0 allow" in _node_file(lab, "n1", babel_config.CONFIG)


def test_turning_sharing_off_removes_the_table_the_route_and_the_upstreams(mesh):
    lab, n1, n5 = mesh["lab"], mesh["gw"]["n1"], mesh["gw"]["n5"]
    report = n1.apply(sharing=False, upstream_servers=())
    assert any("NAT" in step for step in report.steps)
    assert ("ip", nat.TABLE) not in _nft_tables(lab, "n1")
    assert "0.0.0.0/0" not in _node_file(lab, "n1", babel_config.CONFIG)
    assert "server=" not in _node_file(lab, "n1", dnsmasq_config.CONFIG)
    # The uplink itself stays configured (it is the node's own way out).
    assert any(r.get("dev") == UPLINK for r in _default_routes(lab, "n1"))
    # Forgetting the gateway entirely removes the uplink address too.
    n5.remove()
    assert ("ip", nat.TABLE) not in _nft_tables(lab, "n5")
    assert "0.0.0.0/0" not in _node_file(lab, "n5", babel_config.CONFIG)
    addresses = subprocess.run(
        ["ip", "-n", lab.namespace("n5"), "-j", "-4", "address", "show", UPLINK],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert uplink_address(5).split("/")[0] not in addresses
    assert (
        not lab.node_path("n5", "/var/lib/byzantium/gateway-applied.json")
        .read_text()
        .count("nat")
    )


def test_a_dhcp_uplink_gets_its_address_route_and_resolvers_from_the_lease(mesh):
    from dataclasses import replace

    from gateway import apply as gateway_apply
    from gateway import uplink
    from gateway.apply import UplinkConfig

    lab, n5, agent = mesh["lab"], mesh["gw"]["n5"], mesh["c3"]
    host = lab.node_host("n5")
    n5.plan = replace(n5.plan, uplink=UplinkConfig(UPLINK))
    report = n5.apply(sharing=True, online=True)
    assert "asked for an address on up0 by DHCP" in report.steps
    routes = _default_routes(lab, "n5")
    assert any(
        r.get("dev") == UPLINK and r.get("metric") == gateway_apply.UPLINK_ROUTE_METRIC
        for r in routes
    ), routes
    lease = uplink.parse_dhclient_leases(gateway_apply.lease_file_text(host, UPLINK))
    assert lease.interface == UPLINK and lease.address == N5_PEER
    assert lease.dns_servers == (DNS_ADDRESS,)
    assert gateway_apply.dhclient_pid(host, UPLINK) is not None
    # The hook never touched a resolv.conf of the machine or the namespace.
    assert lab.node_path("n5", gateway_apply.DHCP_RESOLV).read_text().count(DNS_ADDRESS)
    _wait_peer(agent, N5_PEER)  # the only gateway left: n1 shares no more
    # Forgetting the gateway stops dhclient and takes the address back.
    pid = gateway_apply.dhclient_pid(host, UPLINK)
    n5.remove()
    time.sleep(0.3)
    assert gateway_apply.dhclient_pid(host, UPLINK) is None
    addresses = subprocess.run(
        ["ip", "-n", lab.namespace("n5"), "-j", "-4", "address", "show", UPLINK],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert N5_PEER not in addresses and pid


def test_tor_mode_through_the_gateway_app_and_back_to_direct(mesh):
    """The gateway app's own apply switches Tor mode on (the real tor in
    n1's namespace, its table instead of the NAT) and off again."""
    from gateway import dns, tor

    lab, n1, agent = mesh["lab"], mesh["gw"]["n1"], mesh["c3"]
    host = lab.node_host("n1")
    # The upstreams the app chooses in Tor mode (gateway.selectors does this
    # from the settings): Tor's DNSPort on the node's client-side address.
    upstreams = dns.choose_upstreams(
        sharing=True, online=True, tor=True, mode=dns.DnsMode.UPLINK,
        lease_servers=(DNS_ADDRESS,), tor_listen="10.213.1.1",
    )  # fmt: skip
    report = n1.apply(sharing=True, online=True, tor=True, upstream_servers=upstreams)
    assert "started Tor mode" in report.steps
    tables = _nft_tables(lab, "n1")
    assert ("inet", "byz_tor") in tables and ("ip", nat.TABLE) not in tables
    status = tor.tor_status(host)
    assert status.running and status.firewall_loaded
    assert "10.213.1.1#9053" in _node_file(lab, "n1", dnsmasq_config.CONFIG)
    # The client two hops away never reaches the Internet directly: its
    # connection ends at tor, which has no Internet to build circuits on.
    _wait_default_dev(lab, "n3", "to-n2")
    assert _peer(agent, timeout=1.5) is None

    report = n1.apply(tor=False, upstream_servers=(DNS_ADDRESS,))
    assert "stopped Tor mode" in report.steps
    tables = _nft_tables(lab, "n1")
    assert ("inet", "byz_tor") not in tables and ("ip", nat.TABLE) in tables
    assert not tor.tor_status(host).running
    _wait_peer(agent, N1_PEER)  # direct again, through n1's NAT
    n1.remove()
    assert ("ip", nat.TABLE) not in _nft_tables(lab, "n1")
