"""The executables the portal may run, and the shape every argv must have.

The list is deliberately explicit: adding a program is a reviewed change
here, not a side effect of a builder. Executables are resolved only in the
system folders below, never through the caller's ``PATH``, so a writable
folder early in ``PATH`` cannot swap a program for another.
"""

from __future__ import annotations

import shutil

from .errors import CommandNotAllowed

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

ALLOWED_EXECUTABLES: frozenset[str] = frozenset(
    {
        "ip",
        "iw",
        "nft",
        "babeld",
        "batctl",
        "dnsmasq",
        "arping",
        "sysctl",
        "conntrack",
        "dhclient",
        "hostapd",
        "systemctl",
        "start-stop-daemon",
        "tor",
        "kill",
        "modprobe",
        "openssl",
        "redis-server",
    }
)

# Longest single argument accepted; generous for nft sets, tight enough that
# a pasted novel is refused before it reaches a program.
MAX_ARG_LENGTH = 4096
MAX_ARGS = 512


def check_argv(argv: tuple[str, ...]) -> None:
    """Refuse an argv that is not a plain call of an allow-listed program."""
    if not argv:
        raise CommandNotAllowed("empty command")
    if len(argv) > MAX_ARGS:
        raise CommandNotAllowed("too many arguments")
    for arg in argv:
        if not isinstance(arg, str):
            raise CommandNotAllowed(f"argument {arg!r} is not text")
        if "\x00" in arg:
            raise CommandNotAllowed("argument contains a NUL byte")
        if len(arg) > MAX_ARG_LENGTH:
            raise CommandNotAllowed("argument too long")
    program = argv[0]
    if "/" in program or program not in ALLOWED_EXECUTABLES:
        raise CommandNotAllowed(f"{program!r} is not an allowed program")


def resolve_executable(program: str) -> str:
    """Absolute path of an allow-listed program, looked up in system folders."""
    if program not in ALLOWED_EXECUTABLES:
        raise CommandNotAllowed(f"{program!r} is not an allowed program")
    path = shutil.which(program, path=SYSTEM_PATH)
    if path is None:
        raise CommandNotAllowed(f"{program} is not installed on this machine")
    return path
