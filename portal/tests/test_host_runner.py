"""Runners and the allow-list, with real processes where it matters.

Programs outside the allow-list (``sleep``, ``printf``, ``sh``, ``cat``) are
added with monkeypatch for single tests only; the production list is
checked separately to refuse them.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from portal.host import allowlist, log
from portal.host.commands import Command
from portal.host.errors import CommandFailed, CommandNotAllowed, HostError
from portal.host.files import FileStore
from portal.host.runner import (
    NamespaceRunner,
    RecordingRunner,
    SystemRunner,
    UnscriptedCommand,
)


@pytest.fixture
def allow(monkeypatch):
    """Add programs to the allow-list for one test."""

    def _allow(*programs: str) -> None:
        monkeypatch.setattr(
            allowlist,
            "ALLOWED_EXECUTABLES",
            allowlist.ALLOWED_EXECUTABLES | set(programs),
        )

    return _allow


# --- allow-list ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("sh", "-c", "id"),
        ("/bin/sh", "-c", "id"),
        ("bash",),
        ("python3", "-c", "print(1)"),
        ("../ip", "link"),
        ("/usr/sbin/ip", "link"),
        ("./ip",),
        ("ip/",),
        ("IP", "link"),
        (" ip", "link"),
        ("env", "ip"),
        ("busybox", "sh"),
        ("ip", "netns", "exec", "byzh-x", "sh", "-c", "id"),
        ("ip", "netns", "exec", "byzh-x", "/bin/sh"),
        ("ip", "-4", "net", "e", "byzh-x", "bash"),
        ("ip", "netns", "exec", "byzh-x", "ip", "netns", "exec", "byzh-y", "sh"),
        ("ip", "vrf", "exec", "red", "python3"),
        ("ip", "-all", "netns", "exec", "ip", "link"),
        ("ip", "-batch", "/tmp/cmds"),
        ("ip", "-b", "/tmp/cmds"),
    ],
)
def test_allowlist_refuses_other_executables(argv):
    with pytest.raises(CommandNotAllowed):
        Command(argv)


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("ip", "link", "show\x00"),
        ("ip", 5),
        ("ip", b"link"),
        ("ip", "x" * (allowlist.MAX_ARG_LENGTH + 1)),
        ("ip",) + ("x",) * allowlist.MAX_ARGS,
        (None,),
    ],
)
def test_allowlist_refuses_malformed_argv(argv):
    with pytest.raises(CommandNotAllowed):
        Command(argv)


def test_allowlist_accepts_nested_allowed_program():
    command = Command(("ip", "netns", "exec", "byzh-x", "babeld", "-V"))
    assert command.argv[-2:] == ("babeld", "-V")


@pytest.mark.parametrize(
    "env",
    [
        (("LD_PRELOAD", "/tmp/x.so"),),
        (("PATH", "/tmp"),),
        (("PYTHONPATH", "/tmp"),),
        (("BASH_ENV", "/tmp/x"),),
        (("lower", "x"),),
        (("OK", "a\x00b"),),
        (("OK",),),
    ],
)
def test_command_refuses_dangerous_environment(env):
    with pytest.raises(CommandNotAllowed):
        Command(("ip", "link"), env=env)


def test_resolve_executable_uses_system_folders_only(monkeypatch, tmp_path):
    fake = tmp_path / "ip"
    fake.write_text("#!/bin/sh\ntouch /tmp/never\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert allowlist.resolve_executable("ip") in (
        "/usr/sbin/ip",
        "/sbin/ip",
        "/usr/bin/ip",
        "/bin/ip",
    )


# --- SystemRunner ------------------------------------------------------------


def test_system_runner_runs_real_command():
    result = SystemRunner().run(Command(("ip", "-j", "link", "show", "dev", "lo")))
    assert result.ok and '"ifname":"lo"' in result.stdout
    assert result.namespace is None


def test_free_text_reaches_program_as_one_literal_argument(allow, tmp_path):
    """Hostile-looking but valid text is data: printf sees one argument."""
    from portal.host.validate import free_text

    allow("printf")
    canary = tmp_path / "canary"
    payloads = [
        f"x; touch {canary}",
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"x | touch {canary}",
        f"x && touch {canary}",
        f"'\"; touch {canary}; echo \"'",
        f"> {canary}",
        "%s %n %x",
        "* ~ ${HOME} $PATH \\",
    ]
    for payload in payloads:
        text = free_text(payload)
        result = SystemRunner().run(Command(("printf", "[%s]", text)))
        assert result.stdout == f"[{text}]"
        assert not canary.exists()


def test_runner_timeout_kills_the_whole_process_group(allow, tmp_path):
    allow("sh")
    marker = tmp_path / f"child-{uuid.uuid4().hex}"
    # The child would create the marker after 1.5 s if it survived the kill.
    script = f"(sleep 1.5; touch {marker}) & sleep 30"
    started = time.monotonic()
    result = SystemRunner().run(Command(("sh", "-c", script), timeout=0.5, check=False))
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok
    assert elapsed < 3
    time.sleep(1.8)
    assert not marker.exists()


def test_runner_timeout_raises_when_checked(allow):
    allow("sleep")
    with pytest.raises(CommandFailed, match="timed out") as caught:
        SystemRunner().run(Command(("sleep", "10"), timeout=0.3))
    assert caught.value.result.timed_out


def test_runner_output_cap_marks_truncation_and_keeps_memory_bounded(allow):
    allow("cat")
    data = b"0123456789" * 300_000  # 3 MB
    result = SystemRunner().run(Command(("cat",), stdin=data, output_cap=1000))
    assert result.truncated
    assert result.stdout == data[:1000].decode()
    small = SystemRunner().run(Command(("cat",), stdin=b"hello"))
    assert small.stdout == "hello" and not small.truncated


def test_runner_passes_a_minimal_environment(allow, monkeypatch):
    allow("env")
    monkeypatch.setenv("BYZH_SECRET", "hunter2")
    result = SystemRunner().run(Command(("env",), env=(("BYZ_MODE", "test"),)))
    variables = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert variables == {
        "PATH": allowlist.SYSTEM_PATH,
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "BYZ_MODE": "test",
    }


def test_runner_nonzero_exit_raises_command_failed_with_result():
    with pytest.raises(CommandFailed) as caught:
        SystemRunner().run(Command(("ip", "link", "show", "dev", "byzh-none")))
    assert caught.value.result.returncode != 0
    result = SystemRunner().run(
        Command(("ip", "link", "show", "dev", "byzh-none"), check=False)
    )
    assert result.returncode != 0 and "byzh-none" in result.stderr


def test_log_sink_receives_one_record_per_command_and_per_write(tmp_path):
    records: list[dict] = []
    runner = RecordingRunner()
    files = FileStore(tmp_path)
    with log.recording_to(records.append):
        runner.run(Command(("ip", "link", "show")))
        SystemRunner().run(Command(("ip", "-j", "link", "show", "dev", "lo")))
        files.write("/etc/byz.conf", "a\n")
        files.write("/etc/byz.conf", "a\n")  # unchanged: still recorded
        files.remove("/etc/byz.conf")
    runner.run(Command(("ip", "addr")))  # outside the block: not recorded
    assert [r["type"] for r in records] == [
        "command",
        "command",
        "write",
        "write",
        "remove",
    ]
    assert records[0]["argv"] == ["ip", "link", "show"]
    assert records[1]["returncode"] == 0 and '"lo"' in records[1]["stdout"]
    assert records[2]["changed"] is True and records[3]["changed"] is False


# --- NamespaceRunner ------------------------------------------------------------


@pytest.fixture(scope="module")
def namespace():
    name = f"byzh-r{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.mark.lab
def test_namespace_runner_sees_only_its_own_loopback(namespace):
    from portal.host.readers import parse_ip_addr

    result = NamespaceRunner(namespace).run(
        Command(("ip", "-j", "-s", "-d", "addr", "show"))
    )
    interfaces = parse_ip_addr(result.stdout)
    assert [i.name for i in interfaces] == ["lo"]
    assert result.namespace == namespace
    host = parse_ip_addr(
        SystemRunner().run(Command(("ip", "-j", "addr", "show"))).stdout
    )
    assert len(host) > 1  # the machine has more than lo; the namespace does not


@pytest.mark.lab
def test_namespace_runner_refuses_missing_namespace():
    with pytest.raises(HostError, match="does not exist"):
        NamespaceRunner("byzh-missing").run(Command(("ip", "link", "show")))


@pytest.mark.lab
@pytest.mark.parametrize(
    "argv",
    [
        ("ip", "netns", "exec", "other", "ip", "link"),
        ("ip", "netns", "add", "byzh-evil"),
        ("ip", "net", "del", "byzh-x"),
        ("ip", "-n", "other", "link", "set", "lo", "down"),
        ("ip", "-netns", "other", "link"),
        ("ip", "--netns=other", "link"),
        ("ip", "-j", "-net", "other", "addr"),
        ("ip", "-all", "netns", "del"),
    ],
)
def test_namespace_runner_refuses_commands_that_leave_the_namespace(namespace, argv):
    with pytest.raises(CommandNotAllowed):
        NamespaceRunner(namespace).run(Command(argv))


@pytest.mark.lab
def test_namespace_runner_timeout_kills_command_in_namespace(namespace, allow):
    allow("sleep")
    # A duration no other process on the machine uses, so pgrep finds ours.
    duration = f"{20 + os.getpid() % 1000 / 1000:.3f}{time.monotonic_ns() % 997}"
    started = time.monotonic()
    result = NamespaceRunner(namespace).run(
        Command(("sleep", duration), timeout=0.5, check=False)
    )
    assert result.timed_out and time.monotonic() - started < 3
    leftovers = subprocess.run(
        ["pgrep", "-f", f"sleep {duration}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == ""


def test_namespace_runner_validates_its_name():
    with pytest.raises(Exception, match="namespace"):
        NamespaceRunner("x;reboot")


# --- RecordingRunner ------------------------------------------------------------


def test_recording_runner_records_and_answers_longest_prefix():
    runner = RecordingRunner(namespace="byz-n1")
    runner.answer(("ip",), stdout="generic")
    runner.answer(("ip", "-j", "addr"), stdout="[]")
    assert runner.run(Command(("ip", "-j", "addr", "show"))).stdout == "[]"
    assert runner.run(Command(("ip", "link"))).stdout == "generic"
    assert runner.run(Command(("nft", "list", "ruleset"))).stdout == ""
    assert runner.argvs == [
        ("ip", "-j", "addr", "show"),
        ("ip", "link"),
        ("nft", "list", "ruleset"),
    ]
    assert runner.run(Command(("ip", "link"))).namespace == "byz-n1"


def test_recording_runner_once_answers_are_used_in_order():
    runner = RecordingRunner()
    runner.answer(("nft", "-f"), returncode=1, stderr="busy", once=True)
    runner.answer(("nft", "-f"), stdout="done")
    command = Command(("nft", "-f", "/tmp/x.nft"))
    with pytest.raises(CommandFailed, match="busy"):
        runner.run(command)
    assert runner.run(command).stdout == "done"
    assert runner.run(command).stdout == "done"


def test_recording_runner_scripted_failure_respects_check():
    runner = RecordingRunner()
    runner.answer(("arping",), returncode=1, stdout="0 packets received")
    result = runner.run(Command(("arping", "10.0.0.1"), check=False))
    assert result.returncode == 1
    runner.answer(("sysctl",), timed_out=True, returncode=-9)
    with pytest.raises(CommandFailed, match="timed out"):
        runner.run(Command(("sysctl", "-n", "net.ipv4.ip_forward")))


def test_strict_recording_runner_refuses_unscripted_commands():
    runner = RecordingRunner(strict=True)
    runner.answer(("ip",))
    runner.run(Command(("ip", "link")))
    with pytest.raises(UnscriptedCommand):
        runner.run(Command(("nft", "list", "ruleset")))


def test_recording_runner_responder_computes_answers():
    from portal.host.commands import CommandResult

    def responder(command: Command) -> CommandResult | None:
        if command.argv[0] == "sysctl":
            return CommandResult(argv=command.argv, returncode=0, stdout="1\n")
        return None

    runner = RecordingRunner(responders=[responder])
    assert runner.run(Command(("sysctl", "-n", "net.ipv4.ip_forward"))).stdout == "1\n"
    assert runner.run(Command(("ip", "link"))).stdout == ""
