"""Runners: the one place a :class:`Command` becomes a process.

- :class:`SystemRunner` runs it on this machine (``subprocess`` with an argv,
  never a shell, with a timeout, a minimal environment and capped output).
- :class:`NamespaceRunner` runs it inside a network namespace through
  ``ip netns exec``; the lab and the tests use it, and ``lab`` host mode
  manages node 1 of the lab with it.
- :class:`RecordingRunner` runs nothing: it records each command and answers
  with scripted output; unit tests pin command plans with it and ``dry-run``
  host mode uses it to show what would happen.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from . import log
from .allowlist import SYSTEM_PATH, resolve_executable
from .commands import OUTPUT_CAP, Command, CommandResult
from .errors import CommandFailed

BASE_ENV = {"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


class Runner(Protocol):
    """Anything that can run a :class:`Command` and report the result."""

    namespace: str | None

    def run(self, command: Command) -> CommandResult: ...


def _cap(data: bytes) -> tuple[str, bool]:
    truncated = len(data) > OUTPUT_CAP
    return data[:OUTPUT_CAP].decode("utf-8", errors="replace"), truncated


def _finish(command: Command, result: CommandResult) -> CommandResult:
    log.emit(result.to_log())
    if command.check and not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = "timed out" if result.timed_out else f"exit code {result.returncode}"
        message = f"{command} failed ({reason})"
        if detail:
            message += f": {detail[-1]}"
        raise CommandFailed(message, result)
    return result


def _execute(
    argv: tuple[str, ...], command: Command, namespace: str | None
) -> CommandResult:
    """Run ``argv`` (already resolved) for ``command`` and capture the result."""
    env = dict(BASE_ENV)
    env.update(dict(command.env))
    started = time.monotonic()
    if command.detach:
        # A daemon that forks: its children inherit no pipe of ours, so the
        # call returns when the parent exits, and its output goes to its log.
        stdout_target: int = subprocess.DEVNULL
    else:
        stdout_target = subprocess.PIPE
    try:
        completed = subprocess.run(  # noqa: S603 - argv of an allow-listed program
            argv,
            input=command.stdin,
            stdin=None if command.stdin is not None else subprocess.DEVNULL,
            stdout=stdout_target,
            stderr=stdout_target,
            timeout=command.timeout,
            env=env,
            close_fds=True,
            shell=False,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        out, cut_out = _cap(expired.stdout or b"")
        err, cut_err = _cap(expired.stderr or b"")
        return CommandResult(
            argv=command.argv,
            returncode=-9,
            stdout=out,
            stderr=err,
            duration=time.monotonic() - started,
            namespace=namespace,
            timed_out=True,
            truncated=cut_out or cut_err,
        )
    except OSError as error:
        return CommandResult(
            argv=command.argv,
            returncode=127,
            stderr=str(error),
            duration=time.monotonic() - started,
            namespace=namespace,
        )
    out, cut_out = _cap(completed.stdout or b"")
    err, cut_err = _cap(completed.stderr or b"")
    return CommandResult(
        argv=command.argv,
        returncode=completed.returncode,
        stdout=out,
        stderr=err,
        duration=time.monotonic() - started,
        namespace=namespace,
        truncated=cut_out or cut_err,
    )


class SystemRunner:
    """Runs commands on this machine."""

    namespace: str | None = None

    def run(self, command: Command) -> CommandResult:
        argv = (resolve_executable(command.argv[0]), *command.argv[1:])
        return _finish(command, _execute(argv, command, None))


class NamespaceRunner:
    """Runs commands inside one network namespace (``ip netns exec NS``)."""

    def __init__(self, namespace: str) -> None:
        from .validate import namespace_name

        self.namespace = namespace_name(namespace)

    def run(self, command: Command) -> CommandResult:
        argv = (
            resolve_executable("ip"),
            "netns",
            "exec",
            self.namespace,
            resolve_executable(command.argv[0]),
            *command.argv[1:],
        )
        return _finish(command, _execute(argv, command, self.namespace))


Responder = Callable[[Command], CommandResult | None]


@dataclass
class RecordingRunner:
    """Runs nothing; records commands and answers from a script.

    ``script`` maps an argv prefix to the result to return; the longest
    matching prefix wins, and anything unscripted succeeds with no output.
    ``responders`` may compute an answer from the command instead.
    """

    namespace: str | None = None
    script: dict[tuple[str, ...], CommandResult] = field(default_factory=dict)
    responders: list[Responder] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def answer(
        self, prefix: Iterable[str], *, stdout: str = "", stderr: str = "", returncode: int = 0
    ) -> None:
        """Script the result for every command whose argv starts with ``prefix``."""
        key = tuple(prefix)
        self.script[key] = CommandResult(
            argv=key, returncode=returncode, stdout=stdout, stderr=stderr
        )

    @property
    def argvs(self) -> list[tuple[str, ...]]:
        return [command.argv for command in self.commands]

    def run(self, command: Command) -> CommandResult:
        self.commands.append(command)
        for responder in self.responders:
            answer = responder(command)
            if answer is not None:
                return _finish(command, answer)
        best: CommandResult | None = None
        best_len = -1
        for prefix, result in self.script.items():
            if command.argv[: len(prefix)] == prefix and len(prefix) > best_len:
                best, best_len = result, len(prefix)
        if best is None:
            result = CommandResult(argv=command.argv, returncode=0, namespace=self.namespace)
        else:
            result = CommandResult(
                argv=command.argv,
                returncode=best.returncode,
                stdout=best.stdout,
                stderr=best.stderr,
                namespace=self.namespace,
            )
        return _finish(command, result)


def is_root() -> bool:
    return os.geteuid() == 0
