"""Readers: ``ip -j`` output into dataclasses, from recorded real output."""

from __future__ import annotations

import json

import pytest

from portal.host.errors import HostError
from portal.host.readers import (
    InterfaceAddress,
    parse_ip_addr,
    parse_ip_route,
    wireless_interfaces,
)

# Recorded from `ip -j -s -d addr show` in a namespace with a veth and babeld.
IP_ADDR = (
    '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qd'
    'isc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type"'
    ':"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","promi'
    'scuity":0,"allmulti":0,"min_mtu":0,"max_mtu":0,"num_tx_queues":1,"num_rx_queues"'
    ':1,"gso_max_size":65536,"gso_max_segs":65535,"tso_max_size":524280,"tso_max_segs'
    '":65535,"gro_max_size":65536,"addr_info":[{"family":"inet","local":"127.0.0.1","'
    'prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred'
    '_life_time":4294967295},{"family":"inet","local":"10.99.0.1","prefixlen":32,"sco'
    'pe":"global","label":"lo","valid_life_time":4294967295,"preferred_life_time":429'
    '4967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_l'
    'ife_time":4294967295,"preferred_life_time":4294967295}],"stats64":{"rx":{"bytes"'
    ':0,"packets":0,"errors":0,"dropped":0,"over_errors":0,"multicast":0},"tx":{"byte'
    's":0,"packets":0,"errors":0,"dropped":0,"carrier_errors":0,"collisions":0}}},{"i'
    'findex":6,"link_index":5,"ifname":"byzh-va","flags":["BROADCAST","MULTICAST","UP'
    '","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","t'
    'xqlen":1000,"link_type":"ether","address":"ee:b4:ce:4a:1d:58","broadcast":"ff:ff'
    ':ff:ff:ff:ff","link_netnsid":1,"promiscuity":0,"allmulti":0,"min_mtu":68,"max_mt'
    'u":65535,"linkinfo":{"info_kind":"veth"},"num_tx_queues":2,"num_rx_queues":2,"gs'
    'o_max_size":65536,"gso_max_segs":65535,"tso_max_size":524280,"tso_max_segs":6553'
    '5,"gro_max_size":65536,"addr_info":[{"family":"inet","local":"10.98.0.1","prefix'
    'len":24,"scope":"global","label":"byzh-va","valid_life_time":4294967295,"preferr'
    'ed_life_time":4294967295},{"family":"inet6","local":"fe80::ecb4:ceff:fe4a:1d58",'
    '"prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time"'
    ':4294967295}],"stats64":{"rx":{"bytes":12334,"packets":133,"errors":0,"dropped":'
    '0,"over_errors":0,"multicast":0},"tx":{"bytes":12760,"packets":138,"errors":0,"d'
    'ropped":0,"carrier_errors":0,"collisions":0}}}]'
)
IP_LINK = (
    '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qd'
    'isc":"noqueue","operstate":"UNKNOWN","linkmode":"DEFAULT","group":"default","txq'
    'len":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:0'
    '0:00:00:00:00"},{"ifindex":6,"link_index":5,"ifname":"byzh-va","flags":["BROADCA'
    'ST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","'
    'linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address'
    '":"ee:b4:ce:4a:1d:58","broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":1}]'
)
IP_ROUTE = (
    '[{"dst":"10.98.0.0/24","dev":"byzh-va","protocol":"kernel","scope":"link","prefs'
    'rc":"10.98.0.1","flags":[]},{"dst":"10.99.0.2","gateway":"10.98.0.2","dev":"byzh'
    '-va","protocol":"babel","flags":["onlink"]}]'
)
IP_ROUTE6 = (
    '[{"dst":"fe80::/64","dev":"byzh-va","protocol":"kernel","metric":256,"flags":[],'
    '"pref":"medium"}]'
)


def test_parse_ip_addr_reads_recorded_output():
    lo, veth = parse_ip_addr(IP_ADDR)
    assert lo.name == "lo" and lo.kind == "loopback" and lo.index == 1
    assert lo.mtu == 65536 and lo.operstate == "UNKNOWN" and lo.is_up
    assert InterfaceAddress("inet", "10.99.0.1", 32, "global") in lo.addresses
    assert veth.name == "byzh-va" and veth.kind == "veth"
    assert veth.mac == "ee:b4:ce:4a:1d:58" and veth.operstate == "UP"
    assert veth.flags == ("BROADCAST", "MULTICAST", "UP", "LOWER_UP")
    assert veth.addresses == (
        InterfaceAddress("inet", "10.98.0.1", 24, "global"),
        InterfaceAddress("inet6", "fe80::ecb4:ceff:fe4a:1d58", 64, "link"),
    )
    assert (veth.rx_bytes, veth.tx_bytes) == (12334, 12760)
    assert (veth.rx_packets, veth.tx_packets) == (133, 138)
    assert veth.addresses_of("inet")[0].with_prefix == "10.98.0.1/24"


def test_parse_ip_addr_reads_link_output_without_addresses():
    interfaces = parse_ip_addr(IP_LINK)
    assert [i.name for i in interfaces] == ["lo", "byzh-va"]
    assert interfaces[1].addresses == () and interfaces[1].rx_bytes == 0
    # Without -d there is no linkinfo: a veth then reads as ethernet.
    assert interfaces[1].kind == "ethernet"


def test_wireless_names_come_from_the_caller():
    entry = {"ifname": "wlan0", "link_type": "ether", "address": "02:00:00:00:00:01"}
    (plain,) = parse_ip_addr(json.dumps([entry]))
    (radio,) = parse_ip_addr(json.dumps([entry]), wireless={"wlan0"})
    assert plain.kind == "ethernet" and radio.kind == "wireless"


@pytest.mark.parametrize(
    ("link_type", "info_kind", "kind"),
    [
        ("ether", "bridge", "bridge"),
        ("ether", "vlan", "vlan"),
        ("ether", "batadv", "batman"),
        ("none", "wireguard", "wireguard"),
        ("none", "tun", "tunnel"),
        ("ether", "macvlan", "virtual"),
        ("ether", None, "ethernet"),
        ("ieee802.11/radiotap", None, "other"),
        (None, None, "virtual"),
    ],
)
def test_interface_kind_from_link_type_and_info_kind(link_type, info_kind, kind):
    entry: dict = {"ifname": "x0"}
    if link_type:
        entry["link_type"] = link_type
    if info_kind:
        entry["linkinfo"] = {"info_kind": info_kind}
    assert parse_ip_addr(json.dumps([entry]))[0].kind == kind


def test_parse_ip_addr_tolerates_missing_and_odd_keys():
    text = json.dumps(
        [
            {"ifname": "dummy0"},
            {"ifindex": 9},  # no name: skipped
            "garbage",
            {
                "ifname": "eth0",
                "mtu": "bad",
                "flags": "UP",
                "addr_info": [
                    {"family": "inet"},
                    {"family": "packet", "local": "x"},
                    5,
                ],
                "stats64": {"rx": {"bytes": True}},
            },
        ]
    )
    dummy, eth = parse_ip_addr(text)
    assert dummy.mac is None and dummy.operstate == "UNKNOWN" and dummy.addresses == ()
    assert (
        eth.mtu == 0 and eth.flags == () and eth.addresses == () and eth.rx_bytes == 0
    )


@pytest.mark.parametrize(
    "text", ["", "not json", "{}", '{"ifname": "lo"}', "[", "null"]
)
def test_readers_reject_non_json_or_non_list(text):
    with pytest.raises(HostError):
        parse_ip_addr(text)
    with pytest.raises(HostError):
        parse_ip_route(text)


def test_parse_ip_route_reads_recorded_output():
    connected, babel = parse_ip_route(IP_ROUTE)
    assert connected.destination == "10.98.0.0/24" and connected.gateway is None
    assert connected.device == "byzh-va" and connected.scope == "link"
    assert connected.preferred_source == "10.98.0.1" and connected.family == "inet"
    assert babel.destination == "10.99.0.2" and babel.gateway == "10.98.0.2"
    assert babel.protocol == "babel" and babel.flags == ("onlink",)
    assert babel.type == "unicast" and not babel.is_default


def test_parse_ip_route_ipv6_and_fallback_family():
    (link_local,) = parse_ip_route(IP_ROUTE6, family="inet6")
    assert link_local.family == "inet6" and link_local.metric == 256
    text = json.dumps(
        [
            {"dst": "default", "dev": "wg0", "table": "main"},
            {"type": "unreachable", "dst": "10.0.0.0/8", "metric": 4278198272},
            {
                "dst": "10.1.0.0/16",
                "via": {"family": "inet6", "host": "fe80::1"},
                "dev": "m0",
            },
            {"gateway": "10.0.0.1"},  # no destination: skipped
        ]
    )
    default, unreachable, v4_via_v6 = parse_ip_route(text, family="inet6")
    assert default.is_default and default.family == "inet6" and default.table == "main"
    assert unreachable.type == "unreachable" and unreachable.metric == 4278198272
    assert v4_via_v6.gateway == "fe80::1" and v4_via_v6.family == "inet"


def test_wireless_interfaces_reads_sysfs_layout(tmp_path):
    (tmp_path / "wlan0" / "wireless").mkdir(parents=True)
    (tmp_path / "eth0").mkdir()
    assert wireless_interfaces(tmp_path) == {"wlan0"}
    assert wireless_interfaces(tmp_path / "missing") == frozenset()
