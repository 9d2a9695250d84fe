"""Unit tests of the mDNS responder: records, folder reading, command plans.

No network and no root: records are parsed from bytes, folders are
temporary, commands are pinned with the recording runner.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from django.conf import settings

from portal.host.allowlist import PORTAL_DAEMON_SCRIPTS
from portal.host.builders import mdns as builders
from portal.host.errors import InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner
from services import mdns, mdns_daemon
from services.context import NodeNetwork
from services.mdns_daemon import Record, RecordRefused, parse_record, read_records

GOOD = {
    "id": "irc",
    "name": "Text chat (n1)",
    "type": "_irc._tcp",
    "port": 6667,
    "addresses": ["10.213.1.1"],
}


def raw(**changes) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def test_a_record_as_the_component_writes_it_is_published():
    assert parse_record(raw(), "irc") == Record(
        id="irc", name="Text chat (n1)", type="_irc._tcp", port=6667, txt=()
    )


def test_a_url_record_carries_url_and_http_path_in_txt():
    record = parse_record(
        raw(type="_http._tcp", url="http://10.213.1.1:8090/doku.php"), "irc"
    )
    assert dict(record.txt) == {
        "url": "http://10.213.1.1:8090/doku.php",
        "path": "/doku.php",
    }
    assert record.fqdn_type == "_http._tcp.local."


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe\x00 not utf-8", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"[" * 100_000, "larger than"),
        (raw(port="6667"), "port is not a number"),
        (raw(port=True), "port is not a number"),
        (raw(port=0), "port is not a number"),
        (raw(port=70000), "port is not a number"),
        (raw(type="irc"), "type is not a DNS-SD type"),
        (raw(type=["_irc._tcp"]), "type is not a DNS-SD type"),
        (raw(type="_irc._tcp.evil.example"), "type is not a DNS-SD type"),
        (raw(id="../etc"), "id is not a catalogue id"),
        (raw(id="other"), "id does not match the file name"),
        (raw(name=42), "name is not text"),
        (raw(name=""), "name is empty"),
        (raw(name="x" * 300), "name is longer than"),
        (raw(name="chat\nnews"), "control characters"),
        (raw(url="javascript:alert(1)"), r"url is not an http\(s\) address"),
        (raw(path="no-slash"), "path does not start with /"),
        (raw(path=7), "path is not text"),
    ],
)
def test_a_hostile_record_is_refused_with_its_reason(data: bytes, reason: str):
    with pytest.raises(RecordRefused, match=reason):
        parse_record(data, "irc")


def test_a_long_name_is_cut_to_one_dns_label_at_a_character_boundary():
    record = parse_record(raw(name="Голосовой чат узла " * 3), "irc")
    encoded = record.name.encode("utf-8")
    assert len(encoded) <= 63
    assert record.name.startswith("Голосовой чат узла")
    encoded.decode("utf-8")  # a whole number of characters


def test_reading_a_folder_keeps_the_good_records_and_logs_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    (tmp_path / "irc.json").write_bytes(raw())
    (tmp_path / "voice.json").write_bytes(
        raw(id="voice", name="Voice", type="_mumble._tcp", port=64738)
    )
    (tmp_path / "broken.json").write_bytes(b"\xff\xfe")
    (tmp_path / "twin.json").write_bytes(raw(id="twin", name="TEXT CHAT (n1)"))
    (tmp_path / "notes.txt").write_text("not a record")
    (tmp_path / ".byz-tmp-irc.json").write_bytes(raw())
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "link.json").symlink_to(tmp_path / "irc.json")
    with caplog.at_level(logging.WARNING, logger="byzantium.mdns"):
        records = read_records(tmp_path)
    assert sorted(records) == ["irc", "voice"]
    assert "ignoring record 'broken.json': not UTF-8" in caplog.text
    assert "ignoring record 'twin.json': another record has the same name" in (
        caplog.text
    )


def test_a_missing_folder_announces_nothing(tmp_path: Path):
    assert read_records(tmp_path / "absent") == {}
    assert mdns_daemon.folder_signature(tmp_path / "absent") == ()


def test_the_folder_signature_changes_when_a_record_changes_or_goes(tmp_path: Path):
    (tmp_path / "irc.json").write_bytes(raw())
    first = mdns_daemon.folder_signature(tmp_path)
    assert mdns_daemon.folder_signature(tmp_path) == first
    (tmp_path / "irc.json").write_bytes(raw(port=6697))
    second = mdns_daemon.folder_signature(tmp_path)
    assert second != first
    (tmp_path / "irc.json").unlink()
    assert mdns_daemon.folder_signature(tmp_path) == ()


def test_the_host_name_is_one_safe_label():
    assert mdns_daemon.host_name("n1") == "n1.local."
    assert mdns_daemon.host_name("Library Node!") == "library-node.local."
    assert mdns_daemon.host_name("✓✓") == "byzantium.local."


def test_the_daemon_refuses_an_address_no_interface_holds(caplog):
    assert mdns_daemon.main(["--records", "/x", "--address", "192.0.2.77",
                             "--node-name", "n1"]) == 2  # fmt: skip
    assert "refusing to start" in caplog.text


# -- command plans --------------------------------------------------------------


def python() -> str:
    return str(settings.PORTAL_PYTHON)


def test_the_responder_script_is_allow_listed_and_run_by_the_fixed_interpreter():
    assert "services/mdns_daemon.py" in PORTAL_DAEMON_SCRIPTS
    assert builders.responder_script() == str(
        Path(settings.BASE_DIR) / "services/mdns_daemon.py"
    )
    with pytest.raises(InvalidValue):
        builders.interpreter("/usr/bin/python3")
    with pytest.raises(InvalidValue):
        builders.start_responder(
            pidfile="/run/byzantium/mdns.pid",
            python="/tmp/evil/python",
            records="/etc/byzantium/services/mdns",
            address="10.213.1.1",
            node_name="n1",
            output="/var/log/byzantium/mdns.log",
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"user": "root"},
        {"group": "root"},
        {"address": "10.213.1.1 --evil"},
        {"node_name": "n1\n--address"},
        {"node_name": ""},
        {"records": "relative/folder"},
    ],
)
def test_a_hostile_start_value_is_refused(changes: dict):
    values = {
        "pidfile": "/run/byzantium/mdns.pid",
        "python": python(),
        "records": "/etc/byzantium/services/mdns",
        "address": "10.213.1.1",
        "node_name": "n1",
        "output": "/var/log/byzantium/mdns.log",
        **changes,
    }
    with pytest.raises(InvalidValue):
        builders.start_responder(**values)


def recording_host(tmp_path: Path) -> tuple[Host, RecordingRunner]:
    runner = RecordingRunner(strict=False)
    return Host(mode="dry-run", runner=runner, files=FileStore(tmp_path)), runner


def test_start_plan_is_pinned(tmp_path: Path):
    host, runner = recording_host(tmp_path)
    network = NodeNetwork(node_name="n1", client_addresses=("10.213.1.1",))
    assert mdns.ensure_responder(host, network)
    pidfile = str(tmp_path / "run/byzantium/mdns.pid")
    argv = [command.argv for command in runner.commands]
    status = (
        "start-stop-daemon", "--status", "--pidfile", pidfile,
        "--name", "byz-mdns", "--exec", python(),
    )  # fmt: skip
    assert argv[0] == status
    # The recording runner answers "running": nothing is started twice.
    assert len(argv) == 1


def test_start_command_runs_the_script_in_the_foreground_under_start_stop_daemon(
    tmp_path: Path,
):
    host, _runner = recording_host(tmp_path)
    network = NodeNetwork(node_name="n1", client_addresses=("10.213.1.1",))
    command = mdns.start_command(host, network, "10.213.1.1")
    assert command.detach
    assert command.argv == (
        "start-stop-daemon", "--start", "--background", "--make-pidfile",
        "--oknodo", "--pidfile", str(tmp_path / "run/byzantium/mdns.pid"),
        "--name", "byz-mdns", "--chdir", "/",
        "--output", str(tmp_path / "var/log/byzantium/mdns.log"),
        "--exec", python(), "--", "-P", builders.responder_script(),
        "--records", str(tmp_path / "etc/byzantium/services/mdns"),
        "--address", "10.213.1.1", "--node-name", "n1", "--poll", "5.0",
        "--user", "nobody", "--group", "nogroup",
    )  # fmt: skip


def test_reload_and_stop_plans_match_pid_file_program_and_name(tmp_path: Path):
    host, runner = recording_host(tmp_path)
    mdns.reload_responder(host)
    mdns.stop_responder(host)
    pidfile = str(tmp_path / "run/byzantium/mdns.pid")
    assert [command.argv for command in runner.commands] == [
        (
            "start-stop-daemon", "--stop", "--signal", "HUP",
            "--pidfile", pidfile, "--name", "byz-mdns", "--exec", python(),
        ),
        (
            "start-stop-daemon", "--stop", "--oknodo", "--remove-pidfile",
            "--pidfile", pidfile, "--name", "byz-mdns", "--exec", python(),
            "--retry", "TERM/5/KILL/2",
        ),
    ]  # fmt: skip


def test_nothing_starts_without_records_or_a_client_address(tmp_path: Path):
    host, runner = recording_host(tmp_path)
    runner.answer(("start-stop-daemon", "--status"), returncode=3)
    assert mdns.sync_responder(host, NodeNetwork(node_name="n1")) == "idle"
    host.files.write("/etc/byzantium/services/mdns/irc.json", raw())
    assert mdns.sync_responder(host, NodeNetwork(node_name="n1")) == "idle"
    assert all("--start" not in command.argv for command in runner.commands)
