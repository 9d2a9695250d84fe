"""Commands as data: an argv tuple plus how to run it, and what came back.

A :class:`Command` is built by a typed builder (:mod:`portal.host.builders`)
and checked against the allow-list when it is made, so an invalid one cannot
even exist. Runners turn it into a :class:`CommandResult`.

Extra environment variables are few and checked: the runner starts from a
minimal environment, and names that change how a program is loaded or which
files it reads behind our back (``LD_*``, ``PATH``, ``IFS``, ``*PATH``,
interpreter start-up hooks) are refused here, so no builder can add them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .allowlist import check_argv
from .errors import CommandNotAllowed

DEFAULT_TIMEOUT = 30.0
# Output beyond this many bytes per stream is cut (and marked), so a chatty
# or hostile program cannot fill the worker's memory or a job log.
OUTPUT_CAP = 64 * 1024
# Builders that read big machine output (an nft table holding thousands of
# clients) raise the cap for that command; never beyond this.
MAX_OUTPUT_CAP = 16 * 1024 * 1024

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}\Z")
_ENV_REFUSED = re.compile(
    r"^(LD_.*|.*PATH|IFS|ENV|BASH_ENV|BASH_FUNC_.*|SHELLOPTS|PS4|PYTHON.*|PERL5.*"
    r"|RUBY.*|NODE_OPTIONS|GCONV_.*|HOSTALIASES|RESOLV_.*|LOCALDOMAIN|TMPDIR|HOME)$"
)


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
    # Bytes of stdout and of stderr kept; beyond it the result is truncated.
    output_cap: int = OUTPUT_CAP

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", tuple(tuple(pair) for pair in self.env))
        check_argv(self.argv)
        if isinstance(self.timeout, bool) or not 0 < self.timeout <= 3600:
            raise ValueError("timeout must be between 0 and 3600 seconds")
        if not 0 < self.output_cap <= MAX_OUTPUT_CAP:
            raise ValueError("output_cap out of range")
        if self.stdin is not None and not isinstance(self.stdin, bytes):
            raise ValueError("stdin must be bytes")
        for pair in self.env:
            if len(pair) != 2:
                raise CommandNotAllowed("environment entries are (name, value) pairs")
            name, value = pair
            if (
                not isinstance(name, str)
                or not _ENV_NAME.match(name)
                or _ENV_REFUSED.match(name)
            ):
                raise CommandNotAllowed(f"environment variable {name!r} not allowed")
            if not isinstance(value, str) or "\x00" in value:
                raise CommandNotAllowed(f"environment value of {name} is not text")

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
