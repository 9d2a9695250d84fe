"""Address choice without a network: candidates, checks and their plan.

The system is a RecordingRunner answering with recorded ``ip -j`` output
and arping statistics, and babeld is a Unix socket answering a recorded
``dump``, so every check runs through the same code as on a node.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meshnet import addressing
from meshnet.addressing import (
    AVOIDED_BLOCKS,
    CHECK_ARPING,
    CHECK_KERNEL,
    CHECK_MESH_ROUTES,
    AddressCandidate,
    AddressCheckError,
    AddressInputError,
    candidate_for,
    choose_addresses,
    node_seed,
    parse_manual_addresses,
    seeded_candidates,
)
from portal.host.babel import parse_dump
from portal.host.commands import Command, CommandResult
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.readers import parse_ip_addr, parse_ip_route
from portal.host.runner import RecordingRunner

SEED = "mac:52:54:00:12:34:56"

HEADER = (
    "BABEL 1.0\nversion babeld-1.12.1\nhost n2\nmy-id 02:00:00:00:00:00:00:02\nok\n"
)


def babel_text(routes: list[tuple[str, str]], xroutes: list[str]) -> str:
    """A dump as babeld 1.12 writes it: (prefix, router id) routes, xroutes."""
    lines = [
        "add interface to-n1 up true ipv6 fe80::1c2d:3eff:fe4f:5061",
        "add interface wlan9 up false",
        "add neighbour 55ddeb663eb0 address fe80::8013:1cff:fe86:7291 if to-n1 "
        "reach ffff ureach 0000 rxcost 96 txcost 96 cost 96",
    ]
    for prefix in xroutes:
        lines.append(
            f"add xroute {prefix}-0.0.0.0/0 prefix {prefix} from 0.0.0.0/0 metric 0"
        )
    for number, (prefix, router) in enumerate(routes):
        lines.append(
            f"add route 55ddeb6644{number:02x} prefix {prefix} from 0.0.0.0/0 "
            f"installed yes id {router} metric 96 refmetric 0 "
            "via fe80::8013:1cff:fe86:7291 if to-n1"
        )
    return "\n".join(lines) + "\nok\n"


class FakeBabeld:
    """A Unix socket that greets and answers ``dump`` like babeld 1.12."""

    def __init__(self, path: Path, answer: str) -> None:
        self.path = path
        self.answer = answer.encode()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(HEADER.encode())
                request = b""
                while not request.endswith(b"\n"):
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    request += chunk
                if request == b"dump\n":
                    conn.sendall(self.answer)

    def close(self) -> None:
        self.server.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def babeld_socket() -> Iterator[Callable[[str], Path]]:
    """Start fake babelds answering a given dump; all closed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="byz-addr-"))
    servers: list[FakeBabeld] = []

    def start(answer: str) -> Path:
        path = folder / f"babeld-{len(servers)}.sock"
        servers.append(FakeBabeld(path, answer))
        return path

    try:
        yield start
    finally:
        for server in servers:
            server.close()
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()


def interface(
    name: str,
    *,
    mac: str | None = "02:00:00:00:00:01",
    up: bool = True,
    addresses: tuple[str, ...] = (),
    link_type: str = "ether",
    info_kind: str | None = "veth",
) -> dict[str, object]:
    entry: dict[str, object] = {
        "ifname": name,
        "ifindex": 1,
        "flags": ["BROADCAST", "UP", "LOWER_UP"] if up else ["BROADCAST"],
        "operstate": "UP" if up else "DOWN",
        "mtu": 1500,
        "link_type": link_type,
        "address": mac,
        "addr_info": [
            {
                "family": "inet6" if ":" in a else "inet",
                "local": a.split("/")[0],
                "prefixlen": int(a.split("/")[1]),
                "scope": "global",
            }
            for a in addresses
        ],
    }
    if info_kind:
        entry["linkinfo"] = {"info_kind": info_kind}
    return entry


NODE_INTERFACES = [
    interface("lo", mac="00:00:00:00:00:00", link_type="loopback", info_kind=None,
              addresses=("127.0.0.1/8", "10.213.0.2/32")),
    interface("to-n1", mac="be:ef:00:00:00:02"),
    interface("eth0", mac="52:54:00:12:34:56", info_kind=None,
              addresses=("192.168.1.20/24",)),
    interface("br-lan", mac="be:ef:00:00:00:99", info_kind="bridge",
              addresses=("10.213.2.1/24",)),
]  # fmt: skip
NODE_ROUTES = [
    {"dst": "default", "gateway": "192.168.1.1", "dev": "eth0", "protocol": "dhcp"},
    {"dst": "192.168.1.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link"},
    {"dst": "10.213.2.0/24", "dev": "br-lan", "protocol": "kernel", "scope": "link"},
    {"dst": "10.213.0.1", "via": {"family": "inet6", "host": "fe80::1"},
     "dev": "to-n1", "protocol": "babel"},
    {"dst": "10.213.1.0/24", "via": {"family": "inet6", "host": "fe80::1"},
     "dev": "to-n1", "protocol": "babel"},
]  # fmt: skip

STATISTICS_FREE = (
    "ARPING {address}\nTimeout\n\n--- {address} statistics ---\n"
    "1 packets transmitted, 0 packets received, 100% unanswered (0 extra)\n"
)
STATISTICS_TAKEN = (
    "ARPING {address}\n42 bytes from 3e:a1:a9:9a:89:22 ({address}): index=0 "
    "time=10.736 usec\n\n--- {address} statistics ---\n"
    "1 packets transmitted, 1 packets received,   0% unanswered (0 extra)\n"
)


def node_host(
    tmp_path: Path,
    *,
    interfaces: list[dict[str, object]] | None = None,
    routes: list[dict[str, object]] | None = None,
    answering: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[Host, RecordingRunner]:
    """A host whose ``ip`` answers are recorded and whose link answers ARP
    probes for the addresses in ``answering``."""
    runner = RecordingRunner(strict=True)
    listing = json.dumps(NODE_INTERFACES if interfaces is None else interfaces)
    runner.answer(("ip", "-j", "-s", "-d", "addr", "show"), stdout=listing)
    runner.answer(("ip", "-j", "link", "show"), stdout=listing)
    runner.answer(
        ("ip", "-j", "route", "show"),
        stdout=json.dumps(NODE_ROUTES if routes is None else routes),
    )

    def arping_answer(command: Command) -> CommandResult | None:
        if command.argv[0] != "arping":
            return None
        address = command.argv[-1]
        taken = address in answering
        template = STATISTICS_TAKEN if taken else STATISTICS_FREE
        return CommandResult(
            argv=command.argv,
            returncode=0 if taken else 1,
            stdout=template.format(address=address),
        )

    runner.responders.append(arping_answer)
    return Host(mode="dry-run", runner=runner, files=FileStore(tmp_path)), runner


def forced(*pairs: tuple[str, str]) -> Callable[[int], AddressCandidate]:
    """A candidate source that returns the given pairs in order."""

    def source(attempt: int) -> AddressCandidate:
        mesh, subnet = pairs[attempt]
        return AddressCandidate(
            ipaddress.IPv4Address(mesh), ipaddress.IPv4Network(subnet), attempt
        )

    return source


# -- candidates --


def test_same_seed_and_attempt_give_the_same_candidate():
    assert candidate_for(SEED, 0) == candidate_for(SEED, 0)
    assert candidate_for(SEED, 3) == candidate_for(SEED, 3)


def test_each_attempt_and_each_seed_give_another_candidate():
    by_attempt = {candidate_for(SEED, attempt) for attempt in range(20)}
    assert len({c.client_subnet for c in by_attempt}) == 20
    by_seed = {candidate_for(f"mac:02:00:00:00:00:{n:02x}", 0) for n in range(50)}
    assert len({c.client_subnet for c in by_seed}) == 50


def test_candidates_stay_in_10_8_out_of_avoided_blocks_and_never_network_or_broadcast():
    ten = ipaddress.IPv4Network("10.0.0.0/8")
    for number in range(400):
        candidate = candidate_for(f"seed-{number}", number % 5)
        assert candidate.client_subnet.subnet_of(ten)
        assert candidate.client_subnet.prefixlen == 24
        assert candidate.mesh_address in ten
        assert int(candidate.mesh_address) & 0xFF not in (0, 255)
        assert candidate.mesh_address not in candidate.client_subnet
        for block, _reason in AVOIDED_BLOCKS:
            assert not candidate.client_subnet.overlaps(block)
            assert candidate.mesh_address not in block
        assert str(candidate.client_gateway).endswith(".1")


def test_lab_block_is_avoided():
    assert addressing.is_avoided(ipaddress.IPv4Network("10.213.7.0/24"))
    assert not addressing.is_avoided(ipaddress.IPv4Network("10.77.7.0/24"))


def test_node_seed_prefers_lowest_hardware_mac_then_machine_id_then_name():
    interfaces = parse_ip_addr(json.dumps(NODE_INTERFACES))
    # Only eth0 is a plain Ethernet card here (veths and bridges are not).
    assert node_seed(interfaces, "0" * 32, "n2") == "mac:52:54:00:12:34:56"
    virtual_only = [i for i in interfaces if i.name != "eth0"]
    machine_id = "4f0c8a3e2b1d4c5e9f8a7b6c5d4e3f21"
    assert (
        node_seed(virtual_only, machine_id + "\n", "n2") == f"machine-id:{machine_id}"
    )
    assert node_seed(virtual_only, "uninitialized\n", "n2") == "name:n2"
    assert node_seed(virtual_only, None, "n2") == "name:n2"


def test_read_node_seed_uses_the_hosts_links_and_machine_id(tmp_path):
    host, runner = node_host(tmp_path, interfaces=NODE_INTERFACES[:2])
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "machine-id").write_text("ab" * 16 + "\n")
    assert addressing.read_node_seed(host, "n2") == "machine-id:" + "ab" * 16
    assert runner.argvs == [("ip", "-j", "link", "show")]


# -- what the node knows --


def test_babel_routes_count_own_xroutes_and_default_routes_do_not():
    dump = parse_dump(
        HEADER
        + babel_text(
            routes=[
                ("10.213.0.1/32", "aa:00:00:00:00:00:00:01"),
                ("10.44.5.0/24", "aa:00:00:00:00:00:00:01"),
                ("0.0.0.0/0", "aa:00:00:00:00:00:00:03"),
                ("fd00::/64", "aa:00:00:00:00:00:00:03"),
                # a route another node announces for our own current subnet
                ("10.60.1.0/24", "aa:00:00:00:00:00:00:04"),
            ],
            xroutes=["10.60.0.9/32", "10.60.1.0/24", "10.99.9.0/24"],
        )
    )
    own = AddressCandidate(
        ipaddress.IPv4Address("10.60.0.9"), ipaddress.IPv4Network("10.60.1.0/24")
    )
    known = addressing.prefixes_from_babel(dump, own=own)
    prefixes = sorted(str(k.prefix) for k in known)
    assert prefixes == ["10.213.0.1/32", "10.44.5.0/24", "10.60.1.0/24", "10.99.9.0/24"]
    assert all(k.check == CHECK_MESH_ROUTES for k in known)
    clash = next(k for k in known if str(k.prefix) == "10.44.5.0/24")
    assert "aa:00:00:00:00:00:00:01" in clash.detail and "to-n1" in clash.detail


def test_kernel_prefixes_skip_default_and_own_but_keep_babel_routes():
    routes = parse_ip_route(json.dumps(NODE_ROUTES))
    interfaces = parse_ip_addr(json.dumps(NODE_INTERFACES))
    own = AddressCandidate(
        ipaddress.IPv4Address("10.213.0.2"), ipaddress.IPv4Network("10.213.2.0/24")
    )
    known = addressing.prefixes_from_kernel(routes, interfaces, own=own)
    prefixes = {str(k.prefix) for k in known}
    assert prefixes == {"192.168.1.0/24", "10.213.0.1/32", "10.213.1.0/24"}
    assert all(k.check == CHECK_KERNEL for k in known)
    without_own = addressing.prefixes_from_kernel(routes, interfaces, own=None)
    assert {"10.213.2.0/24", "10.213.0.2/32"} <= {str(k.prefix) for k in without_own}


def test_mesh_links_are_configured_or_babel_interfaces_that_are_up():
    interfaces = parse_ip_addr(
        json.dumps([*NODE_INTERFACES, interface("wlan0", up=False)])
    )
    dump = parse_dump(HEADER + babel_text([], []))
    assert addressing.mesh_links(["wlan0", "mesh9"], dump, interfaces) == ("to-n1",)
    assert addressing.mesh_links(["eth0"], None, interfaces) == ("eth0",)


# -- choosing --


def test_free_first_candidate_is_chosen_after_probes_on_every_mesh_link(
    tmp_path, babeld_socket
):
    host, runner = node_host(tmp_path)
    path = babeld_socket(HEADER + babel_text([], []))
    choice = choose_addresses(
        host,
        candidates=seeded_candidates(SEED),
        babel_socket=path,
        configured_links=["eth0"],
        probe_count=1,
        probe_wait=1,
    )
    first = candidate_for(SEED, 0)
    assert choice.chosen == first
    assert [c.candidate for c in choice.checks] == [first]
    probes = [argv for argv in runner.argvs if argv[0] == "arping"]
    assert probes == [
        ("arping", "-0", "-C", "1", "-c", "1", "-w", "1", "-i", link, str(address))
        for link in ("eth0", "to-n1")
        for address in (first.mesh_address, first.client_gateway)
    ]
    assert "free" in choice.explain()[-1]


def test_candidate_announced_in_the_mesh_is_refused_and_the_next_one_taken(
    tmp_path, babeld_socket
):
    first, second = candidate_for(SEED, 0), candidate_for(SEED, 1)
    path = babeld_socket(
        HEADER + babel_text([(str(first.client_subnet), "aa:00:00:00:00:00:00:07")], [])
    )
    host, runner = node_host(tmp_path)
    choice = choose_addresses(
        host, candidates=seeded_candidates(SEED), babel_socket=path, probe_wait=1
    )
    assert choice.chosen == second
    refused = choice.checks[0]
    assert refused.failed_check == CHECK_MESH_ROUTES
    assert refused.clashes[0].ours == str(first.client_subnet)
    text = refused.explain()
    assert str(first.client_subnet) in text and "aa:00:00:00:00:00:00:07" in text
    # The refused candidate was never probed: the routes already told.
    probed = {argv[-1] for argv in runner.argvs if argv[0] == "arping"}
    assert str(first.mesh_address) not in probed
    assert str(second.mesh_address) in probed


def test_overlapping_prefix_counts_as_taken(tmp_path, babeld_socket):
    first = candidate_for(SEED, 0)
    wider = ipaddress.IPv4Network(f"{first.mesh_address}/16", strict=False)
    path = babeld_socket(HEADER + babel_text([(str(wider), "aa:01")], []))
    host, _runner = node_host(tmp_path)
    choice = choose_addresses(
        host, candidates=seeded_candidates(SEED), babel_socket=path, probe_wait=1
    )
    assert choice.checks[0].failed_check == CHECK_MESH_ROUTES
    assert choice.checks[0].clashes[0].ours == str(first.mesh_address)
    assert choice.chosen == candidate_for(SEED, 1)


def test_candidate_in_a_kernel_route_is_refused(tmp_path):
    host, _runner = node_host(tmp_path)
    choice = choose_addresses(
        host,
        candidates=forced(
            ("10.50.0.7", "192.168.1.0/24"), ("10.50.0.7", "10.51.0.0/24")
        ),
        babel_socket=tmp_path / "nothing.sock",
        probe_wait=1,
    )
    assert choice.checks[0].failed_check == CHECK_KERNEL
    assert "eth0" in choice.checks[0].explain()
    assert str(choice.chosen.client_subnet) == "10.51.0.0/24"


def test_address_answering_an_arp_probe_is_refused_and_the_next_candidate_taken(
    tmp_path, babeld_socket
):
    first, second = candidate_for(SEED, 0), candidate_for(SEED, 1)
    path = babeld_socket(HEADER + babel_text([], []))
    host, _runner = node_host(tmp_path, answering={str(first.client_gateway)})
    choice = choose_addresses(
        host, candidates=seeded_candidates(SEED), babel_socket=path, probe_wait=1
    )
    assert choice.chosen == second
    clash = choice.checks[0].clashes[0]
    assert clash.check == CHECK_ARPING and clash.ours == str(first.client_gateway)
    assert "to-n1" in clash.detail and "3e:a1:a9:9a:89:22" in clash.detail


def test_retries_are_bounded_and_end_with_a_clear_failure(tmp_path, babeld_socket):
    path = babeld_socket(HEADER + babel_text([("10.0.0.0/8", "aa:02")], []))
    host, _runner = node_host(tmp_path)
    choice = choose_addresses(
        host,
        candidates=seeded_candidates(SEED),
        babel_socket=path,
        max_attempts=4,
        probe_wait=1,
    )
    assert choice.chosen is None and not choice.ok
    assert [c.candidate.attempt for c in choice.checks] == [0, 1, 2, 3]
    lines = choice.explain()
    assert len(lines) == 5
    for attempt, line in enumerate(lines[:4]):
        assert str(candidate_for(SEED, attempt).client_subnet) in line
        assert "10.0.0.0/8" in line
    assert "4" in lines[-1] and "taken" in lines[-1]
    with pytest.raises(ValueError):
        choose_addresses(host, candidates=seeded_candidates(SEED), babel_socket=path,
                         max_attempts=0)  # fmt: skip


def test_babeld_not_running_is_reported_not_fatal(tmp_path):
    host, _runner = node_host(tmp_path)
    choice = choose_addresses(
        host,
        candidates=seeded_candidates(SEED),
        babel_socket=tmp_path / "absent.sock",
        configured_links=["eth0"],
        probe_wait=1,
    )
    assert choice.chosen == candidate_for(SEED, 0)
    assert "babeld is not running" in choice.explain()[0]


def test_unreadable_routes_stop_the_choice(tmp_path):
    host, runner = node_host(tmp_path)
    runner.answer(("ip", "-j", "route", "show"), stdout="not json")
    with pytest.raises(AddressCheckError, match="routes"):
        choose_addresses(host, candidates=seeded_candidates(SEED), babel_socket=None)


def test_a_probe_that_cannot_run_stops_the_choice(tmp_path):
    host, runner = node_host(tmp_path)
    runner.responders.insert(
        0,
        lambda command: (
            CommandResult(
                argv=command.argv,
                returncode=1,
                stderr="arping: libnet_init(): no such device",
            )
            if command.argv[0] == "arping"
            else None
        ),
    )
    with pytest.raises(AddressCheckError, match="no such device"):
        choose_addresses(
            host, candidates=seeded_candidates(SEED), babel_socket=None,
            configured_links=["eth0"], probe_wait=1,
        )  # fmt: skip


def test_own_current_addresses_are_not_a_clash_with_itself(tmp_path, babeld_socket):
    first = candidate_for(SEED, 0)
    path = babeld_socket(
        HEADER + babel_text([], [f"{first.mesh_address}/32", str(first.client_subnet)])
    )
    routes = [*NODE_ROUTES, {"dst": str(first.client_subnet), "dev": "br-lan",
                              "protocol": "kernel", "scope": "link"}]  # fmt: skip
    interfaces = [
        *NODE_INTERFACES,
        interface("dummy0", addresses=(f"{first.client_gateway}/24",)),
    ]
    host, _runner = node_host(tmp_path, routes=routes, interfaces=interfaces)
    again = choose_addresses(
        host,
        candidates=seeded_candidates(SEED),
        babel_socket=path,
        own=first,
        probe_wait=1,
    )
    assert again.chosen == first
    other = choose_addresses(
        host, candidates=seeded_candidates(SEED), babel_socket=path, probe_wait=1
    )
    assert other.checks[0].failed_check == CHECK_MESH_ROUTES


# -- manual input --


def test_manual_addresses_accept_private_ranges_and_canonicalise():
    assert parse_manual_addresses("10.42.7.99", "10.42.8.0/24") == (
        ipaddress.IPv4Address("10.42.7.99"),
        ipaddress.IPv4Network("10.42.8.0/24"),
    )
    assert (
        parse_manual_addresses("172.20.0.5/32", "192.168.77.16/28")[1].prefixlen == 28
    )


HOSTILE = [
    ("10.42.7.99 ", "mesh_address"),
    (" 10.42.7.99", "mesh_address"),
    ("10.42.7.99;reboot", "mesh_address"),
    ("$(reboot)", "mesh_address"),
    ("`reboot`", "mesh_address"),
    ("10.42.7.99\n", "mesh_address"),
    ("10.42.7.99\nreboot", "mesh_address"),
    ("10.42.7.99\x00", "mesh_address"),
    ("1" * 500, "mesh_address"),
    ("１0.42.7.99", "mesh_address"),
    ("10.42.7.９9", "mesh_address"),
    ("fd00::1", "mesh_address"),
    ("::ffff:10.42.7.99", "mesh_address"),
    ("8.8.8.8", "mesh_address"),
    ("100.64.0.1", "mesh_address"),
    ("127.0.0.1", "mesh_address"),
    ("169.254.0.9", "mesh_address"),
    ("224.0.0.9", "mesh_address"),
    ("10.42.7.0", "mesh_address"),
    ("10.42.7.255", "mesh_address"),
    ("10.42.7.256", "mesh_address"),
    ("10.042.7.9", "mesh_address"),
    ("10.42.7.9/24", "mesh_address"),
    ("", "mesh_address"),
]


@pytest.mark.parametrize(("value", "field"), HOSTILE, ids=repr)
def test_hostile_mesh_address_is_refused_with_a_message(value, field):
    with pytest.raises(AddressInputError) as caught:
        parse_manual_addresses(value, "10.42.8.0/24")
    assert caught.value.field == field
    assert caught.value.message and "\n" not in caught.value.message


HOSTILE_SUBNETS = [
    "10.42.8.0/24;reboot",
    "$(reboot)/24",
    "10.42.8.0/24\n",
    "10.42.8.0 /24",
    "10.42.8.0",
    "10.42.8.1/24",
    "10.42.0.0/16",
    "10.42.8.0/30",
    "10.42.8.0/33",
    "8.8.8.0/24",
    "fd00::/64",
    "１0.42.8.0/24",
    "10.42.8.0/24" + "0" * 300,
    "10.42.7.0/24",  # holds the mesh address
]


@pytest.mark.parametrize("value", HOSTILE_SUBNETS, ids=repr)
def test_bad_client_subnet_is_refused_with_a_message(value):
    with pytest.raises(AddressInputError) as caught:
        parse_manual_addresses("10.42.7.99", value)
    assert caught.value.field == "client_subnet"
    assert caught.value.message


def test_manual_messages_say_what_to_do():
    with pytest.raises(AddressInputError, match="did you mean 10.42.8.0/24"):
        parse_manual_addresses("10.42.7.99", "10.42.8.1/24")
    with pytest.raises(AddressInputError, match="IPv6"):
        parse_manual_addresses("fd00::1", "10.42.8.0/24")
    with pytest.raises(AddressInputError, match="private"):
        parse_manual_addresses("8.8.8.8", "10.42.8.0/24")
    with pytest.raises(AddressInputError, match="must not overlap"):
        parse_manual_addresses("10.42.8.99", "10.42.8.0/24")


def test_manual_candidate_with_a_clash_is_explained(tmp_path, babeld_socket):
    path = babeld_socket(HEADER + babel_text([("10.42.8.0/25", "aa:09")], []))
    host, _runner = node_host(tmp_path)
    mesh, subnet = parse_manual_addresses("10.42.7.99", "10.42.8.0/24")
    choice = addressing.check_addresses(
        host, AddressCandidate(mesh, subnet), babel_socket=path, probe_wait=1
    )
    assert choice.chosen is None
    (clash,) = choice.checks[0].clashes
    assert clash.ours == "10.42.8.0/24" and clash.theirs == "10.42.8.0/25"
    assert "10.42.8.0/25" in clash.explain()
