"""Runners: the one place a :class:`Command` becomes a process.

- :class:`SystemRunner` runs it on this machine.
- :class:`NamespaceRunner` runs it inside a network namespace through
  ``ip netns exec NS``; the lab and the tests use it, and ``lab`` host mode
  manages node 1 of the lab with it.
- :class:`RecordingRunner` runs nothing: it records each command and answers
  from a script; unit tests pin command plans with it and ``dry-run`` host
  mode uses it to show what would happen.

Decisions (after OpenWrt rpcd's ``file.c`` and Cockpit's protocol):

- An argv, never a shell; the executable is resolved in the system folders
  only (:mod:`portal.host.allowlist`).
- Each process starts in a session of its own, so a timeout kills the whole
  process group (a program and every child it forked), not just the leader.
- Output is read while the program runs and only ``command.output_cap`` bytes
  per stream are kept; the rest is drained and dropped and the result is
  marked ``truncated``, so a chatty program cannot fill the worker's memory.
- The environment is minimal: a fixed ``PATH`` and a C.UTF-8 locale, plus the
  (validated) extra variables the command names. Nothing of the worker's own
  environment (secrets, ``LD_PRELOAD``, proxies) reaches a program.
- A :class:`NamespaceRunner` never runs anything outside its namespace: the
  namespace must exist before the call, and commands that would leave it
  (``ip netns ...``, ``ip -n OTHER ...``, ``ip -batch``) are refused.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import log
from .allowlist import (
    SYSTEM_PATH,
    ip_options_and_object,
    ip_uses_option,
    resolve_executable,
)
from .commands import Command, CommandResult
from .errors import CommandFailed, CommandNotAllowed, HostError

BASE_ENV = {"PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}

# Where `ip netns add` leaves a handle for each named namespace.
NETNS_RUN_DIR = Path("/run/netns")

# How long after a kill we still wait for the pipes to close.
_KILL_GRACE = 2.0
_CHUNK = 65536


class Runner(Protocol):
    """Anything that can run a :class:`Command` and report the result."""

    namespace: str | None

    def run(self, command: Command) -> CommandResult: ...


def _finish(command: Command, result: CommandResult) -> CommandResult:
    """Log the result, then raise if the command had to succeed and did not."""
    log.emit(result.to_log())
    if command.check and not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = "timed out" if result.timed_out else f"exit code {result.returncode}"
        message = f"{command} failed ({reason})"
        if detail:
            message += f": {detail[-1]}"
        raise CommandFailed(message, result)
    return result


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group the command leads (it started a session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Capture:
    """Keeps the first ``cap`` bytes of a stream and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        self.dropped += max(0, len(data) - max(room, 0))

    def text(self) -> str:
        return bytes(self.kept).decode("utf-8", errors="replace")


def _pump(
    process: subprocess.Popen[bytes],
    stdin: bytes | None,
    captures: dict[int, _Capture],
    deadline: float,
) -> bool:
    """Feed stdin, read stdout/stderr until both close; False on timeout.

    The pipes close when the program (and any child still holding them)
    exits. When the deadline passes the whole process group is killed and
    whatever is still buffered is read for a short grace period.
    """
    selector = selectors.DefaultSelector()
    pending_input = memoryview(stdin or b"")
    if process.stdin is not None:
        if pending_input:
            os.set_blocking(process.stdin.fileno(), False)
            selector.register(process.stdin, selectors.EVENT_WRITE)
        else:
            process.stdin.close()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            selector.register(stream, selectors.EVENT_READ)
    timed_out = False
    try:
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if timed_out:
                    break
                timed_out = True
                _kill_group(process)
                deadline = time.monotonic() + _KILL_GRACE
                continue
            for key, _ in selector.select(timeout=remaining):
                stream = key.fileobj
                if stream is process.stdin:
                    try:
                        written = os.write(key.fd, pending_input[:_CHUNK])
                    except (BrokenPipeError, BlockingIOError) as error:
                        if isinstance(error, BlockingIOError):
                            continue
                        written = len(pending_input)
                    pending_input = pending_input[written:]
                    if not pending_input:
                        selector.unregister(stream)
                        stream.close()  # type: ignore[union-attr]
                    continue
                data = os.read(key.fd, _CHUNK)
                if data:
                    captures[key.fd].feed(data)
                else:
                    selector.unregister(stream)
    finally:
        selector.close()
    return not timed_out


def _execute(
    argv: tuple[str, ...], command: Command, namespace: str | None
) -> CommandResult:
    """Run ``argv`` (already resolved) for ``command`` and capture the result."""
    env = dict(BASE_ENV)
    env.update(dict(command.env))
    started = time.monotonic()
    deadline = started + command.timeout
    # A daemon that forks: its children must inherit no pipe of ours, so the
    # call returns when the parent exits; its output goes to its own log.
    target = subprocess.DEVNULL if command.detach else subprocess.PIPE
    try:
        process = subprocess.Popen(  # noqa: S603 - argv of an allow-listed program
            argv,
            stdin=subprocess.PIPE if command.stdin is not None else subprocess.DEVNULL,
            stdout=target,
            stderr=target,
            env=env,
            close_fds=True,
            shell=False,
            start_new_session=True,
            cwd="/",
        )
    except OSError as error:
        return CommandResult(
            argv=command.argv,
            returncode=127,
            stderr=str(error),
            duration=time.monotonic() - started,
            namespace=namespace,
        )
    stdout = _Capture(command.output_cap)
    stderr = _Capture(command.output_cap)
    captures: dict[int, _Capture] = {}
    if process.stdout is not None and process.stderr is not None:
        captures = {process.stdout.fileno(): stdout, process.stderr.fileno(): stderr}
    try:
        in_time = _pump(process, command.stdin, captures, deadline)
        if in_time:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                in_time = False
        if not in_time:
            _kill_group(process)
            process.wait()
    except BaseException:
        # Interrupted (Ctrl-C, a job cancelled): never leave the program behind.
        _kill_group(process)
        process.wait()
        raise
    finally:
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None and not stream.closed:
                stream.close()
    return CommandResult(
        argv=command.argv,
        returncode=process.returncode if in_time else -signal.SIGKILL,
        stdout=stdout.text(),
        stderr=stderr.text(),
        duration=time.monotonic() - started,
        namespace=namespace,
        timed_out=not in_time,
        truncated=bool(stdout.dropped or stderr.dropped),
    )


class SystemRunner:
    """Runs commands on this machine (the ``system`` host mode)."""

    namespace: str | None = None

    def run(self, command: Command) -> CommandResult:
        argv = (resolve_executable(command.argv[0]), *command.argv[1:])
        return _finish(command, _execute(argv, command, None))


def _escapes_namespace(argv: tuple[str, ...]) -> bool:
    """True when an ``ip`` argv would act on another namespace.

    ``ip -n OTHER ...``, ``ip -all ...``, ``ip -batch FILE`` and every ``ip
    netns ...`` (exec, add, delete: /run/netns is shared by all namespaces)
    are refused inside a namespace. ``ip link set DEV netns OTHER`` stays
    allowed: it acts on this namespace's device.
    """
    if argv[0] != "ip":
        return False
    options, index = ip_options_and_object(argv)
    if any(ip_uses_option(options, long) for long in ("-netns", "-all", "-batch")):
        return True
    if index >= len(argv):
        return False
    obj = argv[index]
    return len(obj) >= 3 and "netns".startswith(obj)


class NamespaceRunner:
    """Runs commands inside one network namespace (``ip netns exec NS``).

    The namespace is checked before every call, so a command meant for a
    lab node never runs on the machine itself when the lab is down.
    """

    def __init__(self, namespace: str) -> None:
        from .validate import namespace_name

        self.namespace: str | None = namespace_name(namespace)

    def run(self, command: Command) -> CommandResult:
        assert self.namespace is not None
        if _escapes_namespace(command.argv):
            raise CommandNotAllowed(
                f"{command} would act outside namespace {self.namespace}"
            )
        if not (NETNS_RUN_DIR / self.namespace).exists():
            raise HostError(f"network namespace {self.namespace} does not exist")
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


class UnscriptedCommand(HostError):
    """A strict :class:`RecordingRunner` met a command nobody scripted."""


@dataclass
class RecordingRunner:
    """Runs nothing; records commands and answers from a script.

    - :meth:`answer` scripts the result for every command whose argv starts
      with a prefix; the longest matching prefix wins. ``once=True`` answers
      are used up in the order given before the lasting answer applies, so a
      test can script "first call fails, second succeeds".
    - ``responders`` compute an answer from the command (return None to
      pass).
    - Anything unscripted succeeds with no output, unless ``strict`` is set,
      in which case it raises :class:`UnscriptedCommand` (a test that pins a
      plan wants to hear about a surprise command).

    Scripted failures go through the same check as real ones: a command with
    ``check=True`` that gets a non-zero answer raises ``CommandFailed``.
    """

    namespace: str | None = None
    script: dict[tuple[str, ...], CommandResult] = field(default_factory=dict)
    responders: list[Responder] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    strict: bool = False
    queued: list[tuple[tuple[str, ...], CommandResult]] = field(default_factory=list)

    def answer(
        self,
        prefix: Iterable[str],
        *,
        stdout: str = "",
        stderr: str = "",
        returncode: int = 0,
        timed_out: bool = False,
        once: bool = False,
    ) -> None:
        """Script the result for commands whose argv starts with ``prefix``."""
        key = tuple(prefix)
        result = CommandResult(
            argv=key,
            returncode=returncode,
            stdout=stdout,
            stderr=stderr,
            timed_out=timed_out,
        )
        if once:
            self.queued.append((key, result))
        else:
            self.script[key] = result

    @property
    def argvs(self) -> list[tuple[str, ...]]:
        return [command.argv for command in self.commands]

    def _scripted(self, argv: tuple[str, ...]) -> CommandResult | None:
        best_index, best_len = -1, -1
        for index, (prefix, _) in enumerate(self.queued):
            if argv[: len(prefix)] == prefix and len(prefix) > best_len:
                best_index, best_len = index, len(prefix)
        if best_index >= 0:
            return self.queued.pop(best_index)[1]
        best: CommandResult | None = None
        for prefix, result in self.script.items():
            if argv[: len(prefix)] == prefix and len(prefix) > best_len:
                best, best_len = result, len(prefix)
        return best

    def run(self, command: Command) -> CommandResult:
        self.commands.append(command)
        for responder in self.responders:
            answer = responder(command)
            if answer is not None:
                return _finish(command, answer)
        scripted = self._scripted(command.argv)
        if scripted is None:
            if self.strict:
                raise UnscriptedCommand(f"no scripted answer for {command}")
            scripted = CommandResult(argv=command.argv, returncode=0)
        result = CommandResult(
            argv=command.argv,
            returncode=scripted.returncode,
            stdout=scripted.stdout,
            stderr=scripted.stderr,
            namespace=self.namespace,
            timed_out=scripted.timed_out,
        )
        return _finish(command, result)


def is_root() -> bool:
    return os.geteuid() == 0
