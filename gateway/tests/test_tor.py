"""Tor gateway mode without a lab: validation, rendering, command plans.

The rendered torrc is checked with the real ``tor --verify-config`` (no
root needed: without root the ``User`` line is left out, since tor honours
it only when started as root). The ruleset's real ``nft -c`` check needs a
network namespace and lives in ``test_tor_lab.py``. The command plans of
apply and remove are pinned with the recording runner.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from django.utils import translation

from gateway import tor
from portal.host.builders import tor as tor_builders
from portal.host.commands import Command, CommandResult
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner, SystemRunner

PLAN = tor.TorPlan(
    client_networks=("10.213.0.0/16", "10.0.0.0/14"),
    listen_address="10.213.1.1",
    uplink_interface="eth0",
    onion_services=(
        tor.OnionService("chat", 6667, "10.213.1.1:6667"),
        tor.OnionService("pad", 80, "10.213.1.1:9001"),
    ),
)
ROOT = os.geteuid() == 0

HOSTILE_TEXT = [
    "",
    " 10.213.1.1",
    "10.213.1.1 ",
    "10.213.1.1\n",
    "10.213.1.1\nExitRelay 1",
    "10.213.1.1;reboot",
    "$(reboot)",
    "`reboot`",
    "10.213.1.1 ExitRelay 1",
    "１０.213.1.1",
    "10.213.1.1é",
    "10.213.1.1\x00",
    "a" * 5000,
    "0.0.0.0",
    "127.0.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "010.213.1.1",
    "fe80::1",
    "10.213.1",
    None,
    42,
]
HOSTILE_NETWORKS = [
    *[v for v in HOSTILE_TEXT if v not in ("0.0.0.0", "127.0.0.1")],
    "10.213.1.1/16",
    "0.0.0.0/0",
    "10.0.0.0/4",
    "100.64.0.0/16",
    "10.0.0.0/33",
    "10.0.0.0/8 ",
    "10.0.0.0/8\n",
    "fd00::/8",
]
HOSTILE_UPLINKS = [
    "",
    " eth0",
    "eth0\n",
    "eth0;reboot",
    "$(reboot)",
    "`reboot`",
    "eth 0",
    'eth0"',
    "ethé0",
    "eth0\x00",
    "a" * 16,
    "-eth0",
    None,
    0,
]
HOSTILE_PORTS = [0, -1, 65536, 10**9, True, "9040", 9040.0, None, 53]
HOSTILE_NAMES = [
    "",
    "Chat",
    "-chat",
    "chat pad",
    "chat\n",
    "chat;reboot",
    "$(reboot)",
    "chät",
    "../etc",
    "a" * 33,
    "chat/x",
    None,
]
HOSTILE_TARGETS = [
    "",
    "10.213.1.1",
    "10.213.1.1:",
    ":6667",
    "10.213.1.1:0",
    "10.213.1.1:65536",
    "10.213.1.1:06667",
    "10.213.1.1:6667\nExitRelay 1",
    "10.213.1.1:6667 x",
    "127.0.0.1:6667",
    "[::1]:6667",
    "localhost:6667",
    "10.213.1.1:$(x)",
    "10.213.1.1：6667",
    None,
]


def hostile_plans() -> list[tuple[str, tor.TorPlan]]:
    plans = []
    for value in HOSTILE_TEXT:
        plans.append((f"listen {value!r}", replace(PLAN, listen_address=value)))
    for value in HOSTILE_NETWORKS:
        plans.append((f"network {value!r}", replace(PLAN, client_networks=(value,))))
    for value in HOSTILE_UPLINKS:
        plans.append((f"uplink {value!r}", replace(PLAN, uplink_interface=value)))
    for value in HOSTILE_PORTS:
        plans.append((f"trans {value!r}", replace(PLAN, trans_port=value)))
        plans.append((f"dns {value!r}", replace(PLAN, dns_port=value)))
    for value in HOSTILE_NAMES:
        service = tor.OnionService(value, 80, "10.213.1.1:80")
        plans.append((f"name {value!r}", replace(PLAN, onion_services=(service,))))
    for value in HOSTILE_TARGETS:
        service = tor.OnionService("chat", 80, value)
        plans.append((f"target {value!r}", replace(PLAN, onion_services=(service,))))
    for value in HOSTILE_PORTS[:-1]:
        service = tor.OnionService("chat", value, "10.213.1.1:80")
        plans.append(
            (f"onion port {value!r}", replace(PLAN, onion_services=(service,)))
        )
    plans += [
        ("no networks", replace(PLAN, client_networks=())),
        ("networks not a tuple", replace(PLAN, client_networks="10.0.0.0/8")),
        (
            "overlapping networks",
            replace(PLAN, client_networks=("10.0.0.0/8", "10.213.0.0/16")),
        ),
        ("too many networks", replace(PLAN, client_networks=_networks(33))),
        ("same ports", replace(PLAN, trans_port=9053)),
        (
            "service twice",
            replace(PLAN, onion_services=(PLAN.onion_services[0],) * 2),
        ),
        ("not a service", replace(PLAN, onion_services=("chat",))),
        (
            "too many services",
            replace(
                PLAN,
                onion_services=tuple(
                    tor.OnionService(f"s{i}", 80, "10.213.1.1:80") for i in range(17)
                ),
            ),
        ),
        ("not a plan", None),
    ]
    return plans


def _networks(count: int) -> tuple[str, ...]:
    return tuple(f"10.{i}.0.0/16" for i in range(count))


HOSTILE_PLANS = hostile_plans()


# -- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "plan", [p for _, p in HOSTILE_PLANS], ids=[n for n, _ in HOSTILE_PLANS]
)
def test_hostile_plan_is_refused_with_a_message_by_every_entry_point(plan, tmp_path):
    with pytest.raises(tor.TorPlanInvalid) as refused:
        tor.validate_plan(plan)
    assert refused.value.message
    for render in (tor.render_torrc, tor.render_tor_firewall):
        with pytest.raises(tor.TorPlanInvalid):
            render(plan)
    runner = RecordingRunner(strict=True)
    with pytest.raises(tor.TorPlanInvalid):
        tor.apply_tor(Host(mode="lab", runner=runner, files=FileStore(tmp_path)), plan)
    assert runner.commands == []
    assert list(tmp_path.iterdir()) == []


def test_a_good_plan_passes_unchanged():
    assert tor.validate_plan(PLAN) is PLAN
    assert tor.validate_plan(replace(PLAN, onion_services=())) is not None


def test_messages_are_translated():
    with translation.override("fr"):
        with pytest.raises(tor.TorPlanInvalid) as refused:
            tor.validate_plan(replace(PLAN, trans_port=0))
    assert refused.value.message == (
        "Le port du proxy transparent de Tor doit être un numéro de port de 1 à "
        "65535, pas 0."
    )


def test_hostile_paths_never_reach_the_torrc():
    paths = tor.TorPaths(data_dir="/var/lib/a b")
    with pytest.raises(tor.TorPlanInvalid):
        tor.render_torrc(PLAN, paths=paths)
    with pytest.raises(tor.TorPlanInvalid):
        tor.render_torrc(PLAN, user="root")


# -- rendering -----------------------------------------------------------------


def test_torrc_listens_only_on_the_client_side_and_is_a_client_only():
    text = tor.render_torrc(PLAN)
    lines = text.splitlines()
    for line in (
        "SocksPort 0",
        "ORPort 0",
        "ControlPort 0",
        "ExitRelay 0",
        "ExitPolicy reject *:*",
        "TransPort 10.213.1.1:9040 IsolateClientAddr",
        "DNSPort 10.213.1.1:9053 IsolateClientAddr",
        "VirtualAddrNetworkIPv4 100.64.0.0/10",
        "AutomapHostsOnResolve 1",
        "AutomapHostsSuffixes .onion",
        "DataDirectory /var/lib/byzantium/tor",
        "PidFile /run/byzantium/tor/tor.pid",
        "Log notice file /var/log/byzantium/tor/tor.log",
        "User debian-tor",
        "HiddenServiceDir /var/lib/byzantium/tor/onion/chat",
        "HiddenServicePort 6667 10.213.1.1:6667",
        "HiddenServiceDir /var/lib/byzantium/tor/onion/pad",
        "HiddenServicePort 80 10.213.1.1:9001",
    ):
        assert line in lines, line
    ports = [line for line in lines if line.split(" ")[0].endswith("Port")]
    assert all(line.endswith(" 0") or "10.213.1.1:" in line for line in ports), ports
    assert "eth0" not in text
    assert "User" not in tor.render_torrc(PLAN, user=None)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder debian-tor can walk into (pytest's own is root's, 0700).

    tor checks its data folder as the torrc's ``User``, even in
    ``--verify-config``, so the folders it names must be reachable by it.
    """
    folder = Path(tempfile.mkdtemp(prefix="byz-tor-check-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _checkable(folder: Path, text: str) -> str:
    path = folder / "torrc"
    path.write_text(text)
    path.chmod(0o644)
    return str(path)


def _paths(tmp_path: Path) -> tor.TorPaths:
    return tor.TorPaths(
        data_dir=str(tmp_path / "data"),
        onion_dir=str(tmp_path / "data/onion"),
        pid_file=str(tmp_path / "run/tor.pid"),
        log_file=str(tmp_path / "log/tor.log"),
    )


@pytest.mark.parametrize(
    "plan",
    [
        PLAN,
        replace(PLAN, onion_services=()),
        replace(
            PLAN, trans_port=19040, dns_port=19053, client_networks=("10.0.0.0/8",)
        ),
    ],
    ids=["onions", "no-onions", "other-ports"],
)
def test_rendered_torrc_passes_tors_own_check(plan, open_folder):
    text = tor.render_torrc(
        plan, paths=_paths(open_folder), user=tor.TOR_USER if ROOT else None
    )
    result = SystemRunner().run(
        tor_builders.verify_config(_checkable(open_folder, text))
    )
    assert result.ok, result.stdout
    assert "Configuration was valid" in result.stdout


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t + "TransPort nowhere:port\n",
        lambda t: t.replace("HiddenServicePort 80", "HiddenServicePort 99999"),
        lambda t: t + "NoSuchOption 1\n",
    ],
    ids=["bad-transport", "bad-onion-port", "unknown-option"],
)
def test_a_broken_torrc_fails_tors_check(damage, open_folder):
    text = damage(tor.render_torrc(PLAN, paths=_paths(open_folder), user=None))
    result = SystemRunner().run(
        tor_builders.verify_config(_checkable(open_folder, text))
    )
    assert not result.ok
    assert "[warn]" in result.stdout


def test_ruleset_redirects_tcp_and_dns_and_rejects_the_rest():
    text = tor.render_tor_firewall(PLAN)
    assert text.count("table inet byz_tor {") == 1
    assert "delete table inet byz_tor" in text
    assert "elements = { 10.213.0.0/16, 10.0.0.0/14 }" in text
    assert 'iifname "eth0" return' in text
    assert "th dport 53 dnat ip to 10.213.1.1:53" in text
    assert "meta l4proto tcp dnat ip to 10.213.1.1:9040" in text
    assert "ip daddr 100.64.0.0/10 meta l4proto tcp dnat ip to 10.213.1.1:9040" in text
    assert "reject with tcp reset" in text
    assert "reject with icmpx type admin-prohibited" in text
    assert " drop" not in text
    # The captive portal's redirects come first (priority dstnat).
    assert "priority dstnat + 10" in text


def test_unit_runs_tor_as_root_with_the_same_arguments():
    unit = tor.render_unit()
    assert (
        "ExecStart=/usr/bin/tor --defaults-torrc /dev/null -f "
        "/etc/byzantium/tor/torrc --RunAsDaemon 0"
    ) in unit
    assert "User=" not in unit
    assert "ReadWritePaths=/var/lib/byzantium/tor /run/byzantium/tor" in unit


# -- command plans -------------------------------------------------------------


class FakeTor:
    """A recording runner whose tor "starts": it writes tor's ready lines."""

    def __init__(self, files: FileStore, plan: tor.TorPlan, *, running: bool) -> None:
        self.files = files
        self.plan = plan
        self.running = running
        self.runner = RecordingRunner(strict=True, responders=[self.respond])
        self.runner.answer(("tor", "--verify-config"), stdout="Configuration was valid")
        self.runner.answer(("nft",))

    def respond(self, command: Command) -> CommandResult | None:
        argv = command.argv
        ok = CommandResult(argv=argv, returncode=0)
        if argv[:2] == ("start-stop-daemon", "--status") or argv[:2] == (
            "systemctl",
            "is-active",
        ):
            return ok if self.running else replace(ok, returncode=3)
        if argv[:2] == ("start-stop-daemon", "--start") or argv[:2] == (
            "systemctl",
            "start",
        ):
            self.running = True
            path = self.files.path(tor.LOG_FILE)
            path.write_text("\n".join(tor._listening_lines(self.plan)) + "\n")
            return ok
        if argv[:2] == ("start-stop-daemon", "--stop") or argv[:2] == (
            "systemctl",
            "stop",
        ):
            self.running = False
            return ok
        if argv[:2] == ("systemctl", "daemon-reload"):
            return ok
        return None


def real(tmp_path: Path, node_path: str) -> str:
    return str(tmp_path / node_path.lstrip("/"))


def start_plan(tmp_path: Path) -> list[tuple[str, ...]]:
    torrc = real(tmp_path, tor.TORRC_PATH)
    return [
        (
            "start-stop-daemon", "--start", "--background", "--make-pidfile",
            "--oknodo", "--pidfile", real(tmp_path, tor.SUPERVISOR_PID_FILE),
            "--chdir", real(tmp_path, tor.DATA_DIR),
            "--output", real(tmp_path, tor.OUTPUT_FILE),
            "--exec", "/usr/bin/tor", "--",
            "--defaults-torrc", "/dev/null", "-f", torrc, "--RunAsDaemon", "0",
        )
    ]  # fmt: skip


def status_argv(tmp_path: Path) -> tuple[str, ...]:
    return (
        "start-stop-daemon", "--status",
        "--pidfile", real(tmp_path, tor.SUPERVISOR_PID_FILE),
        "--exec", "/usr/bin/tor",
    )  # fmt: skip


def checks(tmp_path: Path) -> list[tuple[str, ...]]:
    return [
        (
            "tor", "--verify-config", "--defaults-torrc", "/dev/null",
            "-f", real(tmp_path, tor.TORRC_PATH),
        ),
        ("nft", "-c", "-f", real(tmp_path, tor.RULESET_PATH)),
    ]  # fmt: skip


LIST_TABLE = ("nft", "-j", "list", "table", "inet", "byz_tor")


def test_apply_checks_loads_the_table_then_starts_tor(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    host = Host(mode="lab", runner=fake.runner, files=files)
    status = tor.apply_tor(host, PLAN)
    assert fake.runner.argvs == [
        *checks(tmp_path),
        ("nft", "-f", real(tmp_path, tor.RULESET_PATH)),
        status_argv(tmp_path),
        *start_plan(tmp_path),
        status_argv(tmp_path),
        LIST_TABLE,
    ]
    assert status == tor.TorStatus(
        running=True, bootstrap_percent=None, onion_hostnames={}, firewall_loaded=True
    )
    torrc = files.read_text(tor.TORRC_PATH)
    assert torrc == tor.render_torrc(PLAN, paths=tor.TorPaths.for_host(host))
    assert files.read_text(tor.RULESET_PATH) == tor.render_tor_firewall(PLAN)
    for folder in (tor.DATA_DIR, tor.ONION_DIR, tor.RUN_DIR, tor.LOG_DIR):
        assert files.path(folder).is_dir()
    if ROOT:
        data = files.path(tor.DATA_DIR).stat()
        assert data.st_uid == tor._tor_ids()[0] and data.st_mode & 0o777 == 0o700


def test_the_same_plan_again_writes_nothing_and_restarts_nothing(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    host = Host(mode="lab", runner=fake.runner, files=files)
    tor.apply_tor(host, PLAN)
    written = {
        path: files.path(path).stat().st_mtime_ns
        for path in (tor.TORRC_PATH, tor.RULESET_PATH, tor.LOG_FILE)
    }
    fake.runner.commands.clear()
    tor.apply_tor(host, PLAN)
    assert fake.runner.argvs == [
        *checks(tmp_path),
        LIST_TABLE,
        status_argv(tmp_path),
        status_argv(tmp_path),
        LIST_TABLE,
    ]
    for path, mtime in written.items():
        assert files.path(path).stat().st_mtime_ns == mtime, path


def test_a_changed_plan_reloads_the_table_and_restarts_tor(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    host = Host(mode="lab", runner=fake.runner, files=files)
    tor.apply_tor(host, PLAN)
    fake.runner.commands.clear()
    changed = replace(PLAN, trans_port=9041)
    fake.plan = changed
    tor.apply_tor(host, changed)
    assert fake.runner.argvs == [
        *checks(tmp_path),
        ("nft", "-f", real(tmp_path, tor.RULESET_PATH)),
        status_argv(tmp_path),
        (
            "start-stop-daemon", "--stop", "--oknodo", "--remove-pidfile",
            "--pidfile", real(tmp_path, tor.SUPERVISOR_PID_FILE),
            "--exec", "/usr/bin/tor", "--retry", "TERM/5/KILL/2",
        ),
        *start_plan(tmp_path),
        status_argv(tmp_path),
        LIST_TABLE,
    ]  # fmt: skip


def test_a_refused_torrc_changes_nothing_else(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    fake.runner.answer(
        ("tor", "--verify-config"),
        returncode=1,
        stdout="[warn] Failed to parse/validate config: Unknown option 'X'.",
    )
    host = Host(mode="lab", runner=fake.runner, files=files)
    with pytest.raises(tor.TorProblem) as refused:
        tor.apply_tor(host, PLAN)
    assert "Unknown option" in refused.value.message
    assert fake.runner.argvs == checks(tmp_path)[:1]
    assert not files.exists(tor.TORRC_PATH)
    assert not files.exists(tor.RULESET_PATH)


def test_a_refused_torrc_puts_the_previous_one_back(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    host = Host(mode="lab", runner=fake.runner, files=files)
    tor.apply_tor(host, PLAN)
    before = files.read_text(tor.TORRC_PATH)
    fake.runner.answer(("tor", "--verify-config"), returncode=1, stdout="[err] no")
    with pytest.raises(tor.TorProblem):
        tor.apply_tor(host, replace(PLAN, dns_port=9054))
    assert files.read_text(tor.TORRC_PATH) == before


def test_a_refused_ruleset_starts_no_tor(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    fake.runner.answer(("nft", "-c"), returncode=1, stderr="Error: syntax error")
    host = Host(mode="lab", runner=fake.runner, files=files)
    with pytest.raises(tor.TorProblem) as refused:
        tor.apply_tor(host, PLAN)
    assert "syntax error" in refused.value.message
    assert fake.runner.argvs == checks(tmp_path)
    assert not files.exists(tor.RULESET_PATH)
    # The checked torrc goes too: no half-applied plan is left in place.
    assert not files.exists(tor.TORRC_PATH)


def test_a_killed_apply_is_completed_by_the_next(tmp_path):
    """New torrc written, tor not restarted yet (job killed): restart now."""
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    host = Host(mode="lab", runner=fake.runner, files=files)
    tor.apply_tor(host, PLAN)
    changed = replace(PLAN, dns_port=9054)
    fake.plan = changed
    paths = tor.TorPaths.for_host(host)
    files.write(tor.TORRC_PATH, tor.render_torrc(changed, paths=paths), mode=0o640)
    fake.runner.commands.clear()
    tor.apply_tor(host, changed)
    assert ("start-stop-daemon", "--stop") in [a[:2] for a in fake.runner.argvs]
    assert start_plan(tmp_path)[0] in fake.runner.argvs
    fake.runner.commands.clear()
    tor.apply_tor(host, changed)
    assert ("start-stop-daemon", "--start") not in [a[:2] for a in fake.runner.argvs]


def test_tor_that_dies_at_start_is_reported_with_its_reason(tmp_path, monkeypatch):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)

    def dies(command: Command) -> CommandResult | None:
        if command.argv[:2] == ("start-stop-daemon", "--start"):
            files.path(tor.LOG_FILE).write_text(
                "[warn] Could not bind to 10.213.1.1:9040: Address already in use\n"
                "[err] Failed to bind one of the listener ports.\n"
            )
            return CommandResult(argv=command.argv, returncode=0)
        return None

    fake.runner.responders.insert(0, dies)
    host = Host(mode="lab", runner=fake.runner, files=files)
    with pytest.raises(tor.TorProblem) as failed:
        tor.apply_tor(host, PLAN, start_timeout=2)
    assert "Address already in use" in failed.value.message


def test_errors_of_an_earlier_start_do_not_fail_this_one(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    files.write(tor.OUTPUT_FILE, "[err] Reading config failed--see warnings above.\n")
    files.write(tor.LOG_FILE, "[err] Failed to bind one of the listener ports.\n")
    host = Host(mode="lab", runner=fake.runner, files=files)
    assert tor.apply_tor(host, PLAN, start_timeout=2).running


def test_systemd_node_writes_a_unit_and_starts_it(tmp_path, monkeypatch):
    monkeypatch.setattr("services.supervisors.systemd_is_pid1", lambda: True)
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    host = Host(mode="system", runner=fake.runner, files=files)
    tor.apply_tor(host, PLAN)
    unit = "byzantium-tor-gateway.service"
    assert fake.runner.argvs == [
        *checks(tmp_path),
        ("nft", "-f", real(tmp_path, tor.RULESET_PATH)),
        ("systemctl", "is-active", "--quiet", unit),
        ("systemctl", "daemon-reload"),
        ("systemctl", "start", unit),
        ("systemctl", "is-active", "--quiet", unit),
        LIST_TABLE,
    ]
    assert files.read_text(tor.UNIT_PATH) == tor.render_unit(
        real(tmp_path, tor.TORRC_PATH)
    )
    assert "User debian-tor" in files.read_text(tor.TORRC_PATH)
    fake.runner.commands.clear()
    tor.remove_tor(host)
    assert fake.runner.argvs == [
        ("systemctl", "stop", unit),
        ("nft", "delete", "table", "inet", "byz_tor"),
    ]


def test_remove_stops_our_tor_and_deletes_only_our_table(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    host = Host(mode="lab", runner=fake.runner, files=files)
    tor.apply_tor(host, PLAN)
    files.write(f"{tor.ONION_DIR}/chat/hostname", "a" * 56 + ".onion\n")
    fake.runner.commands.clear()
    tor.remove_tor(host)
    assert fake.runner.argvs == [
        (
            "start-stop-daemon", "--stop", "--oknodo", "--remove-pidfile",
            "--pidfile", real(tmp_path, tor.SUPERVISOR_PID_FILE),
            "--exec", "/usr/bin/tor", "--retry", "TERM/5/KILL/2",
        ),
        ("nft", "delete", "table", "inet", "byz_tor"),
    ]  # fmt: skip
    assert not files.exists(tor.TORRC_PATH)
    assert not files.exists(tor.RULESET_PATH)
    # The onion keys stay: the same address when Tor mode comes back.
    assert files.exists(f"{tor.ONION_DIR}/chat/hostname")


def test_remove_when_nothing_is_there_is_fine(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("start-stop-daemon", "--stop"))
    runner.answer(
        ("nft", "delete", "table"),
        returncode=1,
        stderr="Error: No such file or directory; did you mean table 'byz_captive'",
    )
    tor.remove_tor(Host(mode="lab", runner=runner, files=FileStore(tmp_path)))
    runner.answer(("nft", "delete", "table"), returncode=1, stderr="Error: busy")
    with pytest.raises(tor.TorProblem):
        tor.remove_tor(Host(mode="lab", runner=runner, files=FileStore(tmp_path)))


def test_status_reads_bootstrap_and_onion_addresses(tmp_path):
    files = FileStore(tmp_path)
    fake = FakeTor(files, PLAN, running=False)
    host = Host(mode="lab", runner=fake.runner, files=files)
    tor.apply_tor(host, PLAN)
    files.path(tor.LOG_FILE).write_text(
        "[notice] Bootstrapped 0% (starting): Starting\n"
        "[notice] Bootstrapped 45% (requesting_descriptors): Asking for ...\n"
    )
    address = "b" * 56 + ".onion"
    files.write(f"{tor.ONION_DIR}/chat/hostname", address + "\n")
    files.write(f"{tor.ONION_DIR}/pad/hostname", "not an onion\n")
    status = tor.tor_status(host)
    assert status.running and status.bootstrap_percent == 45
    assert status.onion_hostnames == {"chat": address}
    assert tor.bootstrap_progress(host) == 45
    fake.running = False
    assert tor.tor_status(host).bootstrap_percent is None
    assert tor.bootstrap_progress(host) is None


def test_dry_run_runs_the_same_plan_without_waiting(tmp_path):
    runner = RecordingRunner()
    runner.answer(("start-stop-daemon", "--status"), returncode=3, once=True)
    host = Host(mode="dry-run", runner=runner, files=FileStore(tmp_path))
    tor.apply_tor(host, PLAN)
    assert [argv[:2] for argv in runner.argvs] == [
        ("tor", "--verify-config"),
        ("nft", "-c"),
        ("nft", "-f"),
        ("start-stop-daemon", "--status"),
        ("start-stop-daemon", "--start"),
        ("start-stop-daemon", "--status"),
    ]
