"""The captive firewall without a kernel: rendered text, parsed state, plans.

The nft text is pinned where it carries the design (the two-set
authorisation, the guarded refresh, the refusals, the IPv6 rule), and the
command plans of the ops module are pinned as exact argv with a strict
recording runner. The lab tests (``test_firewall_lab.py``) show that the
same text does what it says in a real kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from captive import firewall_ops
from captive.firewall import (
    Client,
    ClientSession,
    FirewallConfig,
    FirewallState,
    parse_state,
    render_authorise,
    render_deauthorise,
    render_mac_lists,
    render_ruleset,
)
from portal.host.builders import conntrack
from portal.host.commands import CommandResult
from portal.host.errors import CommandFailed, HostError, InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner

MAC1, IP1 = "02:00:00:00:00:01", "10.213.1.101"
MAC2, IP2 = "02:00:00:00:00:02", "10.213.1.102"

CONFIG = FirewallConfig(
    interfaces=("br-lan", "wlan0"),
    portal_port=8080,
    session_timeout=3600,
    idle_timeout=600,
)
KEY = "ether saddr . ip saddr"


def chain(text: str, name: str) -> list[str]:
    """The rule lines of one chain of a rendered table."""
    lines = text.splitlines()
    start = lines.index(f"\tchain {name} {{")
    body = []
    for line in lines[start + 1 :]:
        if line == "\t}":
            return body
        body.append(line.strip())
    raise AssertionError(f"chain {name} not closed")


def test_ruleset_replaces_the_table_in_one_file():
    text = render_ruleset(CONFIG)
    assert text.splitlines()[1:4] == [
        "table inet byz_captive {}",
        "delete table inet byz_captive",
        "table inet byz_captive {",
    ]
    assert text.endswith("}\n")


def test_ruleset_authorises_only_clients_in_both_sets_and_refreshes_idle():
    text = render_ruleset(CONFIG)
    authorised = (
        f"{KEY} @session {KEY} @active update @active {{ {KEY} timeout 600s }} "
        f"{KEY} @traffic_up accept"
    )
    assert chain(text, "from_client") == [
        "meta nfproto ipv6 goto refuse",
        "ether saddr @blocked_macs goto refuse",
        "ether saddr @allowed_macs accept",
        authorised,
        "goto refuse",
    ]
    assert chain(text, "to_node") == [
        "meta nfproto ipv6 goto ipv6_to_node",
        "ether saddr @blocked_macs goto held_to_node",
        "ether saddr @allowed_macs accept",
        authorised,
        "goto held_to_node",
    ]


def test_ruleset_resets_redirected_flows_of_let_through_clients():
    text = render_ruleset(CONFIG)
    assert chain(text, "held_flows") == [
        "type filter hook prerouting priority -150; policy accept;",
        'iifname != { "br-lan", "wlan0" } return',
        "meta nfproto ipv4 meta l4proto tcp ct direction original ct status dnat "
        "ct reply proto-src 8080 jump redirected_flow",
    ]
    assert chain(text, "redirected_flow") == [
        "ether saddr @blocked_macs return",
        "ether saddr @allowed_macs reject with tcp reset",
        f"{KEY} @session {KEY} @active reject with tcp reset",
    ]


def test_ruleset_redirects_dns_and_http_of_held_clients():
    text = render_ruleset(CONFIG)
    assert chain(text, "prerouting") == [
        "type nat hook prerouting priority dstnat; policy accept;",
        'iifname != { "br-lan", "wlan0" } return',
        "meta nfproto ipv4 meta l4proto { tcp, udp } th dport 53 redirect to :53",
        "ether saddr @blocked_macs goto held_nat",
        "ether saddr @allowed_macs return",
        f"{KEY} @session {KEY} @active return",
        "goto held_nat",
    ]
    assert chain(text, "held_nat") == [
        "meta nfproto ipv4 tcp dport 80 redirect to :8080"
    ]


def test_dns_of_authorised_clients_can_be_left_alone():
    config = FirewallConfig(
        interfaces=("br-lan",),
        portal_port=80,
        resolver_port=5353,
        redirect_dns_of_authorised=False,
    )
    text = render_ruleset(config)
    dns = "meta nfproto ipv4 meta l4proto { tcp, udp } th dport 53 redirect to :5353"
    assert dns not in chain(text, "prerouting")
    assert chain(text, "held_nat")[0] == dns
    assert "meta l4proto { tcp, udp } th dport 5353 accept" in chain(
        text, "held_to_node"
    )


def test_held_clients_reach_only_dhcp_dns_and_the_portal_and_the_rest_is_rejected():
    text = render_ruleset(CONFIG)
    assert chain(text, "held_to_node") == [
        "udp dport 67 accept",
        "meta l4proto { tcp, udp } th dport 53 accept",
        "tcp dport 8080 accept",
        "icmp type echo-request accept",
        "goto refuse",
    ]
    assert chain(text, "refuse") == [
        "meta l4proto tcp reject with tcp reset",
        "reject with icmpx admin-prohibited",
    ]
    rules = [line for line in text.splitlines() if not line.strip().startswith("#")]
    assert not [line for line in rules if "drop" in line.split()]


def test_ipv6_to_the_node_is_neighbour_discovery_only():
    assert chain(render_ruleset(CONFIG), "ipv6_to_node") == [
        "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
        "mld-listener-report, mld2-listener-report } accept",
        "goto refuse",
    ]


def test_download_counter_is_looked_up_on_the_way_to_clients():
    assert chain(render_ruleset(CONFIG), "forward") == [
        "type filter hook forward priority filter; policy accept;",
        'iifname { "br-lan", "wlan0" } jump from_client',
        'oifname { "br-lan", "wlan0" } ip daddr @traffic_down',
    ]


def test_ruleset_sets_have_timeouts_counters_and_no_elements_when_empty():
    text = render_ruleset(CONFIG)
    assert "\tset session {\n\t\ttype ether_addr . ipv4_addr\n\t\tsize 65536\n" in text
    assert "\t\tflags dynamic, timeout\n" in text
    assert text.count("\t\tcounter\n") == 2
    assert "elements" not in text


def test_ruleset_carries_clients_over_with_the_time_they_had_left():
    state = FirewallState(
        sessions=(
            ClientSession(
                mac=MAC1,
                ip=IP1,
                session_timeout=7200,
                session_left=1234.9,
                idle_left=99.5,
                bytes_up=10,
                packets_up=2,
                bytes_down=3000,
                packets_down=4,
            ),
            # Idle timer run out: kept in the session, not in active.
            ClientSession(mac=MAC2, ip=IP2, session_timeout=60, session_left=30),
            # Spent: not carried.
            ClientSession(mac="02:00:00:00:00:03", ip="10.213.1.3", session_left=0.4),
        ),
        allowed_macs=frozenset({"02:00:00:00:0A:01"}),
        blocked_macs=frozenset({"02:00:00:00:0b:01"}),
    )
    text = render_ruleset(CONFIG, state)
    assert f"{MAC1} . {IP1} timeout 7200s expires 1234s,\n" in text
    assert f"{MAC2} . {IP2} timeout 60s expires 30s\n" in text
    assert f"{MAC1} . {IP1} timeout 600s expires 99s\n" in text
    assert f"{MAC1} . {IP1} counter packets 2 bytes 10 timeout 7200s expires 1234s" in (
        text
    )
    assert f"{IP1} counter packets 4 bytes 3000 timeout 7200s expires 1234s" in text
    assert "10.213.1.3" not in text
    assert "02:00:00:00:0a:01" in text and "02:00:00:00:0b:01" in text
    active = text.split("\tset active {")[1].split("\t}")[0]
    assert MAC2 not in active


def test_authorise_batch_replaces_elements_with_fresh_timeouts():
    text = render_authorise(CONFIG, [Client(MAC1, IP1)], session_timeout=120)
    key = f"{MAC1} . {IP1}"
    assert text == (
        "# authorise\n"
        f"add element inet byz_captive session {{\n\t{key} timeout 120s\n}}\n"
        f"delete element inet byz_captive session {{\n\t{key}\n}}\n"
        f"add element inet byz_captive session {{\n\t{key} timeout 120s\n}}\n"
        f"add element inet byz_captive active {{\n\t{key} timeout 600s\n}}\n"
        f"delete element inet byz_captive active {{\n\t{key}\n}}\n"
        f"add element inet byz_captive active {{\n\t{key} timeout 600s\n}}\n"
        f"add element inet byz_captive traffic_up {{\n\t{key} timeout 120s\n}}\n"
        f"delete element inet byz_captive traffic_up {{\n\t{key}\n}}\n"
        f"add element inet byz_captive traffic_up {{\n\t{key} timeout 120s\n}}\n"
        f"add element inet byz_captive traffic_down {{\n\t{IP1} timeout 120s\n}}\n"
        f"delete element inet byz_captive traffic_down {{\n\t{IP1}\n}}\n"
        f"add element inet byz_captive traffic_down {{\n\t{IP1} timeout 120s\n}}\n"
    )


def test_authorise_many_clients_is_still_twelve_statements():
    clients = [
        Client(
            f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", f"10.1.{i // 256}.{i % 256}"
        )
        for i in range(2, 5002)
    ]
    text = render_authorise(CONFIG, clients)
    assert text.count("element inet byz_captive") == 12
    assert text.count("10.1.19.137 timeout 3600s") == 6


def test_deauthorise_batch_deletes_whether_present_or_not():
    text = render_deauthorise(CONFIG, [Client(MAC1, IP1)])
    key = f"{MAC1} . {IP1}"
    assert text.splitlines()[1:5] == [
        "add element inet byz_captive session {",
        f"\t{key}",
        "}",
        "delete element inet byz_captive session {",
    ]
    assert text.count("delete element") == 4
    assert "timeout" not in text


def test_a_batch_refuses_one_ip_for_two_macs():
    with pytest.raises(InvalidValue):
        render_authorise(CONFIG, [Client(MAC1, IP1), Client(MAC2, IP1)])
    # The same client twice is harmless.
    text = render_authorise(CONFIG, [Client(MAC1, IP1), Client(MAC1, IP1)])
    assert text.count(f"{MAC1} . {IP1} timeout 3600s") == 4


def test_empty_batches_render_nothing():
    assert render_authorise(CONFIG, []) == ""
    assert render_deauthorise(CONFIG, []) == ""
    assert render_mac_lists(CONFIG) == ""


def test_mac_lists_batch():
    text = render_mac_lists(CONFIG, allow=["02-00-00-00-0A-01"], unblock=[MAC2])
    assert text == (
        "add element inet byz_captive allowed_macs {\n\t02:00:00:00:0a:01\n}\n"
        f"add element inet byz_captive blocked_macs {{\n\t{MAC2}\n}}\n"
        f"delete element inet byz_captive blocked_macs {{\n\t{MAC2}\n}}\n"
    )


@pytest.mark.parametrize(
    "mac, ip",
    [
        ("02:00:00:00:00:01; flush ruleset", IP1),
        (MAC1, "10.213.1.1 }; flush ruleset"),
        (MAC1, "2001:db8::1"),
        ("not a mac", IP1),
        (MAC1, "10.213.1.256"),
    ],
)
def test_bad_client_values_are_refused(mac, ip):
    with pytest.raises(InvalidValue):
        Client(mac, ip)


@pytest.mark.parametrize(
    "changes",
    [
        {"interfaces": ()},
        {"interfaces": ("br-lan", "br-lan")},
        {"interfaces": ('br-lan" accept',)},
        {"portal_port": 0},
        {"portal_port": 70000},
        {"session_timeout": 0},
        {"idle_timeout": -5},
        {"idle_timeout": 1.5},
        {"session_timeout": 31 * 86400},
        {"table": "byz captive"},
    ],
)
def test_bad_config_values_are_refused(changes):
    values = {
        "interfaces": ("br-lan",),
        "portal_port": 8080,
        "session_timeout": 3600,
        "idle_timeout": 600,
    }
    values.update(changes)
    with pytest.raises(InvalidValue):
        FirewallConfig(**values)


def test_bad_mac_in_lists_is_refused():
    with pytest.raises(InvalidValue):
        render_mac_lists(CONFIG, block=["02:00:00:00:00:01 }"])


# -- reading ------------------------------------------------------------------


def nft_json(**elements: list) -> str:
    """A ``nft -j list table`` answer with the given set elements."""
    objects: list[dict] = [{"metainfo": {"version": "1.0.6"}}]
    objects.append({"table": {"family": "inet", "name": "byz_captive"}})
    for name in (
        "session",
        "active",
        "traffic_up",
        "traffic_down",
        "allowed_macs",
        "blocked_macs",
    ):
        found: dict = {"family": "inet", "name": name, "table": "byz_captive"}
        if elements.get(name):
            found["elem"] = elements[name]
        objects.append({"set": found})
    return json.dumps({"nftables": objects})


def element(value, **attrs) -> dict:
    return {"elem": {"val": value, **attrs}}


def test_parse_state_reads_sessions_timers_and_counters():
    text = nft_json(
        session=[
            element({"concat": [MAC1, IP1]}, timeout=3600, expires=1199),
            element({"concat": [MAC2, IP2]}, timeout=60, expires=10),
        ],
        active=[
            element({"concat": [MAC1, IP1]}, timeout=600, expires=599),
            # A stray idle element without a session grants nothing.
            element({"concat": ["02:00:00:00:00:09", "10.0.0.9"]}, expires=5),
        ],
        traffic_up=[
            element(
                {"concat": [MAC1, IP1]},
                counter={"packets": 3, "bytes": 252},
                expires=1199,
            )
        ],
        traffic_down=[
            element(IP1, counter={"packets": 9, "bytes": 9000}, expires=1199)
        ],
        allowed_macs=["02:00:00:00:0a:01"],
        blocked_macs=["02:00:00:00:0b:01"],
    )
    state = parse_state(text)
    assert state.sessions == (
        ClientSession(
            mac=MAC1,
            ip=IP1,
            session_timeout=3600,
            session_left=1199.0,
            idle_left=599.0,
            bytes_up=252,
            packets_up=3,
            bytes_down=9000,
            packets_down=9,
        ),
        ClientSession(
            mac=MAC2, ip=IP2, session_timeout=60, session_left=10.0, idle_left=None
        ),
    )
    assert [entry.mac for entry in state.authorised] == [MAC1]
    assert state.allowed_macs == {"02:00:00:00:0a:01"}
    assert state.blocked_macs == {"02:00:00:00:0b:01"}


def test_parse_state_refuses_a_table_that_is_not_ours():
    foreign = json.dumps(
        {"nftables": [{"set": {"name": "x", "table": "byz_captive", "family": "inet"}}]}
    )
    with pytest.raises(HostError):
        parse_state(foreign)
    with pytest.raises(HostError):
        parse_state("")


# -- command plans ------------------------------------------------------------


def host(tmp_path: Path, runner: RecordingRunner, mode: str = "lab") -> Host:
    return Host(mode=mode, runner=runner, files=FileStore(tmp_path))


def test_enable_writes_checks_then_applies_the_file(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("nft", "-j", "list", "table"), stdout=nft_json())
    runner.answer(("nft", "-c", "-f"))
    runner.answer(("nft", "-f"))
    firewall_ops.enable(host(tmp_path, runner), CONFIG)
    path = str(tmp_path / "etc/byzantium/captive.nft")
    assert runner.argvs == [
        ("nft", "-j", "list", "table", "inet", "byz_captive"),
        ("nft", "-c", "-f", path),
        ("nft", "-f", path),
    ]
    assert (tmp_path / "etc/byzantium/captive.nft").read_text() == render_ruleset(
        CONFIG, FirewallState()
    )


def test_enable_on_a_node_without_the_table_starts_empty(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(
        ("nft", "-j", "list", "table"),
        returncode=1,
        stderr="Error: No such file or directory\nlist table inet byz_captive",
    )
    runner.answer(("nft", "-c", "-f"))
    runner.answer(("nft", "-f"))
    assert firewall_ops.enable(host(tmp_path, runner), CONFIG) is None


def test_enable_stops_when_the_check_fails(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("nft", "-c", "-f"), returncode=1, stderr="Error: syntax error")
    with pytest.raises(CommandFailed):
        firewall_ops.enable(host(tmp_path, runner), CONFIG, keep_clients=False)
    assert runner.argvs[-1][:3] == ("nft", "-c", "-f")


def test_enable_in_dry_run_mode(tmp_path):
    runner = RecordingRunner()
    firewall_ops.enable(host(tmp_path, runner, mode="dry-run"), CONFIG)
    assert [argv[:3] for argv in runner.argvs] == [
        ("nft", "-j", "list"),
        ("nft", "-c", "-f"),
        ("nft", "-f", str(tmp_path / "etc/byzantium/captive.nft")),
    ]


def test_authorise_is_one_batch_then_the_clients_flows_are_forgotten(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("nft", "-f", "-"))
    runner.answer(
        ("conntrack", "-D"),
        returncode=1,
        stderr="conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.",
    )
    runner.answer(
        ("conntrack", "-D", "-f", "ipv4", "-s", IP1),
        stderr="conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.",
    )
    clients = [Client(MAC1, IP1), Client(MAC2, IP2)]
    forgotten = firewall_ops.authorise(host(tmp_path, runner), CONFIG, clients)
    assert forgotten == 2
    assert runner.argvs == [
        ("nft", "-f", "-"),
        ("conntrack", "-D", "-f", "ipv4", "-s", IP1),
        ("conntrack", "-D", "-f", "ipv4", "-s", IP2),
    ]
    assert runner.commands[0].stdin == render_authorise(CONFIG, clients).encode()


def test_deauthorise_forgets_flows_both_ways(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("nft", "-f", "-"))
    runner.answer(
        ("conntrack", "-D"),
        returncode=1,
        stderr="0 flow entries have been deleted.",
    )
    firewall_ops.deauthorise(host(tmp_path, runner), CONFIG, [Client(MAC1, IP1)])
    assert runner.argvs == [
        ("nft", "-f", "-"),
        ("conntrack", "-D", "-f", "ipv4", "-s", IP1),
        ("conntrack", "-D", "-f", "ipv4", "-d", IP1),
    ]


def test_restoring_many_clients_skips_conntrack(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("nft", "-f", "-"))
    firewall_ops.authorise(
        host(tmp_path, runner), CONFIG, [Client(MAC1, IP1)], forget_flows=False
    )
    assert runner.argvs == [("nft", "-f", "-")]


def test_a_failed_batch_raises_and_forgets_nothing(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("nft", "-f", "-"), returncode=1, stderr="Error: No such file")
    with pytest.raises(CommandFailed):
        firewall_ops.authorise(host(tmp_path, runner), CONFIG, [Client(MAC1, IP1)])
    assert runner.argvs == [("nft", "-f", "-")]


def test_disable_deletes_the_table_and_says_whether_there_was_one(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("nft", "delete", "table", "inet", "byz_captive"), once=True)
    runner.answer(
        ("nft", "delete", "table", "inet", "byz_captive"),
        returncode=1,
        stderr="Error: No such file or directory",
    )
    node = host(tmp_path, runner)
    assert firewall_ops.disable(node) is True
    assert firewall_ops.disable(node) is False
    assert runner.argvs == [("nft", "delete", "table", "inet", "byz_captive")] * 2


def test_disable_raises_on_other_errors(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(
        ("nft", "delete"), returncode=1, stderr="Error: Operation not permitted"
    )
    with pytest.raises(CommandFailed):
        firewall_ops.disable(host(tmp_path, runner))


def test_read_state_reads_one_table_listing(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("nft", "-j", "list", "table"), stdout=nft_json())
    state = firewall_ops.read_state(host(tmp_path, runner))
    assert state == FirewallState()
    assert runner.commands[0].output_cap == 16 * 1024 * 1024


def test_nft_batch_reads_standard_input():
    command = firewall_ops.nft_batch("add table inet x\n")
    assert command.argv == ("nft", "-f", "-")
    assert command.stdin == b"add table inet x\n"
    assert firewall_ops.nft_batch("x", check_only=True).argv == ("nft", "-c", "-f", "-")


# -- conntrack builder --------------------------------------------------------


def test_conntrack_argv():
    assert conntrack.delete_from(IP1).argv == (
        "conntrack",
        "-D",
        "-f",
        "ipv4",
        "-s",
        IP1,
    )
    assert conntrack.delete_to(IP1).argv == ("conntrack", "-D", "-f", "ipv4", "-d", IP1)
    assert conntrack.delete_from("2001:db8::1").argv == (
        "conntrack",
        "-D",
        "-f",
        "ipv6",
        "-s",
        "2001:db8::1",
    )
    assert conntrack.list_from(IP1).argv == ("conntrack", "-L", "-f", "ipv4", "-s", IP1)
    assert conntrack.delete_from(IP1).check is False


@pytest.mark.parametrize(
    "value", ["10.0.0.1; reboot", "-F", "", "10.0.0.0/24", "fe80::1%eth0"]
)
def test_conntrack_refuses_bad_addresses(value):
    with pytest.raises(InvalidValue):
        conntrack.delete_from(value)


def result(returncode: int, stderr: str, timed_out: bool = False) -> CommandResult:
    return CommandResult(
        argv=("conntrack", "-D"),
        returncode=returncode,
        stderr=stderr,
        timed_out=timed_out,
    )


def test_conntrack_deleted_count_reads_the_message():
    assert conntrack.deleted_count(result(0, "3 flow entries have been deleted.")) == 3
    assert conntrack.deleted_count(result(1, "0 flow entries have been deleted.")) == 0
    assert conntrack.deleted_count(result(0, "")) == 0  # dry-run
    for bad in (
        result(1, "conntrack v1.4.7: Operation failed: invalid parameters"),
        result(2, "0 flow entries have been deleted."),
        result(0, "", timed_out=True),
    ):
        with pytest.raises(CommandFailed):
            conntrack.deleted_count(bad)
