"""Directory sync with recorded commands: the fetch plan, checks, names, expiry."""

# ruff: noqa: E501 (a recorded babeld dump has long lines)

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from meshnet import directory
from meshnet.models import DirectoryEntry
from meshnet.node_document import (
    MAX_DOCUMENT_BYTES,
    ServiceOffer,
    build_node_document,
)
from portal.host.babel import parse_dump
from portal.host.builders import curl
from portal.host.commands import Command, CommandResult
from portal.host.errors import CommandNotAllowed, InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner

DUMP = """BABEL 1.0
version babeld-1.12.1
host n1
my-id 60:a6:96:93:1d:58:de:a6
ok
add interface to-n2 up true ipv6 fe80::1
add neighbour 55dd address fe80::2 if to-n2 reach ffff ureach 0000 rxcost 96 txcost 96 cost 96
add xroute 10.5.0.1/32-0.0.0.0/0 prefix 10.5.0.1/32 from 0.0.0.0/0 metric 0
add route a1 prefix 10.5.0.2/32 from 0.0.0.0/0 installed yes id 02:02 metric 96 refmetric 0 via fe80::2 if to-n2
add route a2 prefix 10.5.2.0/24 from 0.0.0.0/0 installed yes id 02:02 metric 96 refmetric 0 via fe80::2 if to-n2
add route a3 prefix 10.5.0.3/32 from 0.0.0.0/0 installed yes id 03:03 metric 192 refmetric 96 via fe80::2 if to-n2
add route a4 prefix 10.5.0.4/32 from 0.0.0.0/0 installed no id 04:04 metric 300 refmetric 96 via fe80::2 if to-n2
add route a5 prefix 0.0.0.0/0 from 0.0.0.0/0 installed yes id 03:03 metric 192 refmetric 96 via fe80::2 if to-n2
ok
"""

ROUTES = json.dumps(
    [
        {"dst": "10.5.0.2", "gateway": "10.5.0.2", "dev": "to-n2", "protocol": "babel"},
        {"dst": "10.5.0.3", "dev": "to-n2", "protocol": "babel", "flags": ["onlink"]},
        {"dst": "10.5.2.0/24", "dev": "to-n2", "protocol": "babel"},
        {"dst": "10.5.1.0/24", "dev": "br-lan", "protocol": "kernel"},
        {"dst": "10.5.0.9", "dev": "eth9", "protocol": "static"},
    ]
)


def _doc(node_name: str, address: str, **extra) -> str:
    data = build_node_document(
        name=node_name,
        mesh_address=address,
        client_subnet=f"10.5.{address.rsplit('.', 1)[1]}.0/24",
        gateway=False,
        version="0.1.0",
    ).to_json()
    data.update(extra)
    return json.dumps(data)


def _own(name: str = "alpha", address: str = "10.5.0.1") -> directory.OwnNode:
    return directory.OwnNode(
        document=build_node_document(
            name=name,
            mesh_address=address,
            client_subnet="10.5.1.0/24",
            gateway=False,
            services=[ServiceOffer(id="chat", name="Chat", port=8065)],
        ),
        domain="mesh",
    )


def _host(tmp_path: Path, answers: dict[str, CommandResult | str]) -> Host:
    def respond(command: Command) -> CommandResult | None:
        if command.argv[0] != "curl":
            return None
        address = command.argv[-1].split("//", 1)[1].split(":", 1)[0]
        answer = answers.get(address)
        if answer is None:
            return CommandResult(
                argv=command.argv,
                returncode=7,
                stderr="curl: (7) Failed to connect: Connection refused",
            )
        if isinstance(answer, str):
            return CommandResult(argv=command.argv, returncode=0, stdout=answer)
        return answer

    runner = RecordingRunner(responders=[respond])
    runner.answer(("ip", "-j", "route", "show"), stdout=ROUTES)
    return Host(mode="dry-run", runner=runner, files=FileStore(tmp_path))


# -- the curl builder ------------------------------------------------------------


def test_fetch_plan_pins_every_safety_option() -> None:
    command = curl.fetch_http("10.5.0.2", "/api/v1/node", max_bytes=32768)
    assert command.argv == (
        "curl",
        "-q",
        "--silent",
        "--show-error",
        "--fail",
        "--globoff",
        "--noproxy",
        "*",
        "--proto",
        "=http",
        "--max-redirs",
        "0",
        "--connect-timeout",
        "2",
        "--max-time",
        "4",
        "--max-filesize",
        "32768",
        "--header",
        "Accept: application/json",
        "--user-agent",
        "byzantium-directory/1",
        "--output",
        "-",
        "http://10.5.0.2:80/api/v1/node",
    )
    assert command.argv[1] == "-q"  # curl reads no config file only if -q is first
    assert command.output_cap == 32769
    assert command.timeout == 6
    assert command.check is False


def test_fetch_plan_brackets_ipv6_addresses() -> None:
    command = curl.fetch_http("fe80::1", "/x")
    assert command.argv[-1] == "http://[fe80::1]:80/x"


@pytest.mark.parametrize(
    "address, path",
    [
        ("10.0.0.1; reboot", "/api"),
        ("$(id)", "/api"),
        ("10.0.0.1", "api"),
        ("10.0.0.1", "/api?x=1"),
        ("10.0.0.1", "/a b"),
        ("10.0.0.1", "/\nHost: evil"),
        ("example.org", "/api"),
    ],
)
def test_fetch_plan_refuses_anything_but_an_address_and_a_plain_path(
    address: str, path: str
) -> None:
    with pytest.raises(InvalidValue):
        curl.fetch_http(address, path)


def test_curl_is_allow_listed_but_only_as_a_program_name() -> None:
    Command(("curl", "-q", "http://10.0.0.1/"))
    with pytest.raises(CommandNotAllowed):
        Command(("/usr/bin/curl", "-q"))


# -- discovery -----------------------------------------------------------------


def test_candidates_are_the_installed_host_routes_of_other_nodes() -> None:
    found = directory.candidates_from_dump(parse_dump(DUMP), own=["10.5.0.1"])
    assert [c.address for c in found] == ["10.5.0.2", "10.5.0.3"]
    assert found[1].router_id == "03:03"


def test_kernel_babel_routes_are_the_fallback(tmp_path: Path) -> None:
    host = _host(tmp_path, {})
    found, source = directory.discover(host, babel_socket=tmp_path / "nothing.sock")
    assert source == "kernel"
    assert [c.address for c in found] == ["10.5.0.2", "10.5.0.3"]
    assert host.runner.argvs == [("ip", "-j", "route", "show")]


# -- names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, label",
    [
        ("library-2", "library-2"),
        ("Café Ñandú", "cafe-nandu"),
        ("<script>alert(1)</script>", "script-alert-1-script"),
        ("a;b $(c)", "a-b-c"),
        ("---", "node"),
        ("x" * 80, "x" * 63),
    ],
)
def test_dns_label_sanitises_names(name: str, label: str) -> None:
    assert directory.dns_label(name) == label


def test_duplicate_names_are_resolved_by_lowest_address_everywhere() -> None:
    nodes = [
        directory.NamedNode("cafe", "10.5.0.9"),
        directory.NamedNode("cafe", "10.5.0.10"),
        directory.NamedNode("cafe", "10.5.0.2"),
    ]
    first = directory.render_hosts(nodes, domain="mesh")
    again = directory.render_hosts(list(reversed(nodes)), domain="mesh")
    assert first == again
    assert "10.5.0.2 cafe.mesh\n" in first
    assert "10.5.0.9 cafe-10-5-0-9.mesh\n" in first
    assert "10.5.0.10 cafe-10-5-0-10.mesh\n" in first


def test_hosts_file_has_node_and_service_names() -> None:
    text = directory.render_hosts(
        [directory.NamedNode("alpha", "10.5.0.1", (ServiceOffer("chat", "Chat"),))],
        domain="freifunk",
    )
    assert text.splitlines()[1:] == [
        "10.5.0.1 alpha.freifunk",
        "10.5.0.1 chat.alpha.freifunk",
    ]


# -- fetching and the sync -----------------------------------------------------


def test_oversized_answer_is_refused(tmp_path: Path) -> None:
    big = CommandResult(
        argv=("curl",),
        returncode=0,
        stdout="x" * (MAX_DOCUMENT_BYTES + 1),
        truncated=True,
    )
    outcome = directory.fetch_document(_host(tmp_path, {"10.5.0.2": big}), "10.5.0.2")
    assert outcome.document is None
    assert "larger than" in outcome.error


def test_document_claiming_another_address_is_refused(tmp_path: Path) -> None:
    host = _host(tmp_path, {"10.5.0.2": _doc("bravo", "10.5.0.3")})
    outcome = directory.fetch_document(host, "10.5.0.2")
    assert outcome.document is None
    assert "claims the address 10.5.0.3" in outcome.error


@pytest.mark.django_db
def test_sync_keeps_valid_nodes_ignores_and_logs_bad_ones_and_writes_names(
    tmp_path: Path,
) -> None:
    host = _host(
        tmp_path,
        {
            "10.5.0.2": _doc("bravo", "10.5.0.2"),
            "10.5.0.3": _doc("bravo", "10.5.0.3", name="<script>x</script>"),
        },
    )
    notes: list[str] = []
    result = directory.sync_directory(
        host, own=_own(), babel_socket=None, log=notes.append
    )
    assert result.source == "kernel"
    assert result.seen == ["10.5.0.2"]
    assert list(result.refused) == ["10.5.0.3"]
    assert any("10.5.0.3: document ignored" in line for line in notes)
    entry = DirectoryEntry.objects.get()
    assert (entry.name, entry.address, entry.client_subnet) == (
        "bravo",
        "10.5.0.2",
        "10.5.2.0/24",
    )
    hosts = (tmp_path / "etc/byzantium/mesh-hosts").read_text()
    assert "10.5.0.2 bravo.mesh\n" in hosts
    assert "10.5.0.1 alpha.mesh\n" in hosts
    assert "10.5.0.1 chat.alpha.mesh\n" in hosts
    assert "script" not in hosts
    node_json = json.loads((tmp_path / "run/byzantium/node.json").read_text())
    assert node_json["name"] == "alpha"
    # the fetch plan: one curl per candidate, from the node's own network
    curls = [argv for argv in host.runner.argvs if argv[0] == "curl"]
    assert [argv[-1] for argv in curls] == [
        "http://10.5.0.2:80/api/v1/node",
        "http://10.5.0.3:80/api/v1/node",
    ]


@pytest.mark.django_db
def test_an_unseen_node_expires_after_its_periods(tmp_path: Path) -> None:
    answers: dict = {"10.5.0.2": _doc("bravo", "10.5.0.2")}
    host = _host(tmp_path, answers)
    start = timezone.now()
    directory.sync_directory(
        host,
        own=_own(),
        babel_socket=None,
        period=10,
        expire_after_periods=3,
        now=start,
    )
    answers.clear()  # bravo stops answering
    for periods in (1, 2):
        result = directory.sync_directory(
            host,
            own=_own(),
            babel_socket=None,
            period=10,
            expire_after_periods=3,
            now=start + timedelta(seconds=10 * periods),
        )
        assert result.expired == []
        assert "10.5.0.2" in result.unreachable
    assert DirectoryEntry.objects.filter(address="10.5.0.2").exists()
    result = directory.sync_directory(
        host,
        own=_own(),
        babel_socket=None,
        period=10,
        expire_after_periods=3,
        now=start + timedelta(seconds=30),
    )
    assert result.expired == ["10.5.0.2"]
    assert not DirectoryEntry.objects.exists()
    assert "bravo" not in (tmp_path / "etc/byzantium/mesh-hosts").read_text()


@pytest.mark.django_db
def test_unchanged_names_do_not_reload_dnsmasq(tmp_path: Path) -> None:
    host = _host(tmp_path, {"10.5.0.2": _doc("bravo", "10.5.0.2")})
    first = directory.sync_directory(host, own=_own(), babel_socket=None)
    second = directory.sync_directory(host, own=_own(), babel_socket=None)
    assert first.hosts_changed is True
    assert second.hosts_changed is False
    assert not any(argv[0] == "kill" for argv in host.runner.argvs)


def test_dnsmasq_reload_signals_only_a_dnsmasq_named_by_the_pid_file(
    tmp_path: Path,
) -> None:
    import os

    host = _host(tmp_path, {})
    assert directory.reload_dnsmasq(host) is False  # no pid file
    host.files.write(directory.DNSMASQ_PID_FILE, f"{os.getpid()}\n")
    assert directory.reload_dnsmasq(host) is False  # pytest is not dnsmasq
    assert host.runner.argvs == []
