"""Commands as data: an argv tuple plus how to run it, and what came back.

A :class:`Command` is built by a typed builder (:mod:`portal.host.builders`)
and checked against the allow-list when it is made, so an invalid one cannot
even exist. Runners turn it into a :class:`CommandResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .allowlist import check_argv

DEFAULT_TIMEOUT = 30.0
# Output beyond this many bytes per stream is cut (and marked), so a chatty
# or hostile program cannot fill the worker's memory or a job log.
OUTPUT_CAP = 64 * 1024


@dataclass(frozen=True)
class Command:
    """One program run: argv of an allow-listed executable, no shell."""

    argv: tuple[str, ...]
    timeout: float = DEFAULT_TIMEOUT
    stdin: bytes | None = None
    # When False a non-zero exit is a normal answer (e.g. a probe), not an error.
    check: bool = True
    # Long-running daemons that fork into the background are started with
    # this set, so the runner does not wait for a closed stdout.
    detach: bool = False
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        check_argv(self.argv)
        if not 0 < self.timeout <= 3600:
            raise ValueError("timeout must be between 0 and 3600 seconds")

    def __str__(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True)
class CommandResult:
    """What a command did: exit code, captured output and how long it took."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    namespace: str | None = None
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def to_log(self) -> dict[str, object]:
        """The JSON-friendly record a job log stores."""
        return {
            "type": "command",
            "argv": list(self.argv),
            "namespace": self.namespace,
            "returncode": self.returncode,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration": round(self.duration, 4),
            "timed_out": self.timed_out,
            "truncated": self.truncated,
        }
