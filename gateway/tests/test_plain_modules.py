"""The gateway's plain modules: uplink candidates, NAT ruleset, hysteresis,
upstream DNS. No Django models, no network; the ruleset is checked by the
real ``nft -c`` (parsed and validated by the kernel, nothing committed)."""

import json
import os
import subprocess

import pytest

from gateway import dns, health, nat, uplink
from portal.host.builders import ping
from portal.host.errors import InvalidValue
from portal.host.readers import parse_ip_addr, parse_ip_route

ADDR = json.dumps(
    [
        {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"],
         "link_type": "loopback", "operstate": "UNKNOWN", "addr_info": []},
        {"ifindex": 2, "ifname": "eth0", "flags": ["BROADCAST", "UP", "LOWER_UP"],
         "link_type": "ether", "operstate": "UP", "address": "02:00:00:00:00:01",
         "addr_info": [{"family": "inet", "local": "192.168.1.20", "prefixlen": 24,
                        "scope": "global"}]},
        {"ifindex": 3, "ifname": "usb0", "flags": ["BROADCAST", "UP", "LOWER_UP"],
         "link_type": "ether", "operstate": "UP", "addr_info": []},
        {"ifindex": 4, "ifname": "eth1", "flags": ["BROADCAST", "NO-CARRIER", "UP"],
         "link_type": "ether", "operstate": "DOWN", "addr_info": []},
        {"ifindex": 5, "ifname": "wlan0", "flags": ["BROADCAST", "UP", "LOWER_UP"],
         "link_type": "ether", "operstate": "UP", "addr_info": []},
        {"ifindex": 6, "ifname": "br-lan", "flags": ["BROADCAST", "UP", "LOWER_UP"],
         "link_type": "ether", "operstate": "UP", "linkinfo": {"info_kind": "bridge"},
         "addr_info": []},
        {"ifindex": 7, "ifname": "eth2", "flags": ["BROADCAST"],
         "link_type": "ether", "operstate": "DOWN", "addr_info": []},
    ]
)  # fmt: skip
ROUTES = json.dumps(
    [
        {"dst": "default", "gateway": "192.168.1.1", "dev": "eth0", "protocol": "dhcp"},
        {"dst": "192.168.1.0/24", "dev": "eth0", "protocol": "kernel"},
    ]
)

LEASES = """\
lease {
  interface "usb0";
  fixed-address 192.168.42.17;
  option subnet-mask 255.255.255.0;
  option routers 192.168.42.129;
  option domain-name-servers 192.168.42.129, 1.1.1.1, $(reboot);
  renew 4 2026/12/03 10:00:00;
}
lease {
  interface "usb0";
  fixed-address 192.168.42.18;
  option routers 192.168.42.129;
  option domain-name-servers 192.168.42.1;
}
"""


# -- uplink candidates ------------------------------------------------------


def test_candidates_are_interfaces_with_a_route_a_lease_or_a_carrier_best_first():
    found = uplink.candidates(
        parse_ip_addr(ADDR),
        parse_ip_route(ROUTES),
        leased=["usb0"],
        mesh_interfaces=["wlan0"],
    )
    assert [c.name for c in found] == ["eth0", "usb0", "eth2"]
    eth0, usb0, eth2 = found
    assert eth0.default_route and eth0.gateway == "192.168.1.1" and eth0.carrier
    assert eth0.addresses == ("192.168.1.20/24",)
    assert usb0.lease and not usb0.default_route
    # Switched off: its cable is unknown until it is up, so it is offered last.
    assert eth2.switched_off and not eth2.carrier and eth2.score == 0
    assert not (eth0.switched_off or usb0.switched_off)


def test_mesh_interfaces_bridges_loopback_and_dead_links_are_never_candidates():
    names = {c.name for c in uplink.candidates(parse_ip_addr(ADDR), [])}
    assert "lo" not in names and "br-lan" not in names
    assert "eth1" not in names  # up, no carrier (no cable), no lease, no route
    assert "eth2" in names  # switched off: its cable is unknown
    down_bridge = json.dumps(
        [{"ifindex": 9, "ifname": "br-x", "flags": ["BROADCAST"], "link_type": "ether",
          "operstate": "DOWN", "linkinfo": {"info_kind": "bridge"}, "addr_info": []},
         {"ifindex": 10, "ifname": "dummy0", "flags": ["BROADCAST"],
          "link_type": "ether", "operstate": "DOWN",
          "linkinfo": {"info_kind": "dummy"}, "addr_info": []}]
    )  # fmt: skip
    assert uplink.candidates(parse_ip_addr(down_bridge), []) == []
    names = {
        c.name
        for c in uplink.candidates(parse_ip_addr(ADDR), [], mesh_interfaces=["eth0"])
    }
    assert "eth0" not in names


def test_the_newest_lease_is_read_and_only_addresses_survive():
    lease = uplink.parse_dhclient_leases(LEASES)
    assert lease.interface == "usb0"
    assert lease.address == "192.168.42.18"
    assert lease.dns_servers == ("192.168.42.1",)
    first = uplink.parse_dhclient_leases(LEASES.rsplit("lease {", 1)[0])
    assert first.dns_servers == ("192.168.42.129", "1.1.1.1")
    assert first.subnet_mask == "255.255.255.0"
    assert uplink.parse_dhclient_leases("garbage") is None
    assert uplink.parse_dhclient_leases("") is None


# -- NAT ruleset ------------------------------------------------------------


def _nft_check(tmp_path, text):
    path = tmp_path / "gateway.nft"
    path.write_text(text)
    return subprocess.run(
        ["nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False
    )


def test_source_networks_are_the_client_subnet_and_the_mesh_without_repeats():
    assert nat.source_networks("10.213.1.0/24") == ("10.0.0.0/8",)
    assert nat.source_networks("192.168.7.0/24") == ("192.168.7.0/24", "10.0.0.0/8")
    assert nat.source_networks("", ["172.16.0.0/12", "172.16.1.0/24"]) == (
        "10.0.0.0/8",
        "172.16.0.0/12",
    )
    with pytest.raises(InvalidValue):
        nat.source_networks("0.0.0.0/0")
    with pytest.raises(InvalidValue):
        nat.source_networks("10.1.2.3/24")


@pytest.mark.skipif(os.geteuid() != 0, reason="nft -c needs CAP_NET_ADMIN")
def test_the_ruleset_masquerades_the_mesh_out_of_the_uplink_and_nft_accepts_it(
    tmp_path,
):
    text = nat.render(nat.NatPlan("up0", nat.source_networks("192.168.7.0/24")))
    assert "table ip byz_gateway {" in text
    assert 'oifname "up0" ip saddr @mesh_networks masquerade' in text
    assert "192.168.7.0/24, 10.0.0.0/8" in text
    assert 'iifname "up0" drop' in text
    # replaces the table in one transaction: create, delete, create
    assert text.index("delete table ip byz_gateway") < text.index("byz_gateway {")
    result = _nft_check(tmp_path, text)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="nft -c needs CAP_NET_ADMIN")
def test_nft_would_refuse_a_broken_ruleset(tmp_path):
    text = nat.render(nat.NatPlan("up0", ("10.0.0.0/8",))).replace("masquerade", "masq")
    assert _nft_check(tmp_path, text).returncode != 0


@pytest.mark.parametrize(
    "name", ["up0; drop", 'a"b', "$(reboot)", "eth0\nflush", "ünï", "x" * 16, ""]
)
def test_hostile_uplink_names_render_nothing(name):
    with pytest.raises(InvalidValue):
        nat.render(nat.NatPlan(name, ("10.0.0.0/8",)))


@pytest.mark.parametrize("network", ["10.0.0.0/8 }", "0.0.0.0/0", "::/0", "x"])
def test_hostile_networks_render_nothing(network):
    with pytest.raises(InvalidValue):
        nat.render(nat.NatPlan("up0", (network,)))


# -- hysteresis -------------------------------------------------------------


def _run(results, health_value=None, **thresholds):
    value = health_value or health.UplinkHealth()
    changes = []
    for passed in results:
        value, changed = health.observe(value, passed, **thresholds)
        changes.append(value.online if changed else None)
    return value, changes


def test_the_route_is_announced_after_m_passes_and_withdrawn_after_n_failures():
    value, changes = _run(
        [True, True, False, False, False], fail_threshold=3, pass_threshold=2
    )
    assert changes == [None, True, None, None, False]
    assert not value.online and value.failures == 3


def test_a_flapping_uplink_does_not_flap_the_route():
    online = health.UplinkHealth(online=True)
    value, changes = _run([False, True] * 20 + [False, False, True] * 10, online)
    assert changes == [None] * 70
    assert value.online
    offline = health.UplinkHealth(online=False)
    value, changes = _run([True, False] * 20, offline)
    assert not value.online and set(changes) == {None}


def test_stored_health_is_read_defensively():
    assert health.UplinkHealth.from_dict({"online": "yes", "passes": -3}) == (
        health.UplinkHealth()
    )
    value = health.UplinkHealth(online=True, passes=4)
    assert health.UplinkHealth.from_dict(value.to_dict()) == value
    assert health.UplinkHealth.from_dict(None) == health.UplinkHealth()


def test_the_check_pings_through_the_uplink_and_any_answer_passes():
    from portal.host.node import Host
    from portal.host.runner import RecordingRunner

    runner = RecordingRunner(strict=True)
    runner.answer(("ping", "-n", "-q", "-c", "1", "-W", "1", "-I", "up0", "192.0.2.1"),
                  returncode=1)  # fmt: skip
    runner.answer(("ping", "-n", "-q", "-c", "1", "-W", "1", "-I", "up0", "192.0.2.2"))
    host = Host(mode="dry-run", runner=runner, files=None)
    assert health.check_uplink(host, "up0", ("192.0.2.1", "192.0.2.2", "192.0.2.3"))
    assert [argv[-1] for argv in runner.argvs] == ["192.0.2.1", "192.0.2.2"]
    runner.answer(("ping",), returncode=1)
    runner.answer(("ping", "-n", "-q", "-c", "1", "-W", "1", "-I", "up0", "192.0.2.2"),
                  returncode=1)  # fmt: skip
    assert not health.check_uplink(host, "up0", ("192.0.2.1", "192.0.2.2"))


@pytest.mark.parametrize("target", ["example.org", "192.0.2.1; reboot", "::1", ""])
def test_check_targets_are_ipv4_addresses_only(target):
    with pytest.raises(InvalidValue):
        ping.echo_via(target, "up0")


# -- upstream DNS -----------------------------------------------------------


def test_a_working_gateway_uses_its_lease_custom_or_public_resolvers():
    lease = ("192.168.42.1",)
    assert (
        dns.choose_upstreams(
            sharing=True, online=True, tor=False, mode="uplink", lease_servers=lease
        )
        == lease
    )
    assert (
        dns.choose_upstreams(sharing=True, online=True, tor=False, mode="uplink")
        == dns.PUBLIC_RESOLVERS
    )
    assert dns.choose_upstreams(
        sharing=True,
        online=True,
        tor=False,
        mode="custom",
        custom=["9.9.9.9", "9.9.9.9"],
    ) == ("9.9.9.9",)
    assert (
        dns.choose_upstreams(
            sharing=True, online=True, tor=False, mode="public", lease_servers=lease
        )
        == dns.PUBLIC_RESOLVERS
    )


def test_other_nodes_resolve_through_the_mesh_gateways_never_themselves():
    gateways = ["10.213.1.1", "10.213.5.1", "10.213.3.1", "junk"]
    assert dns.choose_upstreams(
        sharing=False, online=False, tor=False, mode="uplink",
        mesh_gateways=gateways, own_addresses=["10.213.3.1"],
    ) == ("10.213.1.1", "10.213.5.1")  # fmt: skip
    # a gateway whose uplink failed its check also falls back to the mesh
    assert dns.choose_upstreams(
        sharing=True, online=False, tor=False, mode="public", mesh_gateways=gateways[:1]
    ) == ("10.213.1.1",)


def test_tor_mode_forwards_only_to_tors_dns_port():
    assert dns.choose_upstreams(
        sharing=True, online=True, tor=True, mode="public",
        tor_listen="10.213.1.1", tor_dns_port=9053,
    ) == ("10.213.1.1#9053",)  # fmt: skip
