"""The executables the portal may run, and the shape every argv must have.

The list is deliberately explicit: adding a program is a reviewed change
here, not a side effect of a builder. Executables are resolved only in the
system folders below, never through the caller's ``PATH``, so a writable
folder early in ``PATH`` cannot swap a program for another.

Two programs can run other programs: ``ip netns exec NS PROG ...`` and ``ip
vrf exec NAME PROG ...``. The program they start must pass the same check,
so wrapping a shell in ``ip netns exec`` gains nothing. ``ip -all netns exec``
and ``ip -batch FILE`` (commands read from elsewhere) are refused outright.

Arguments are text without NUL bytes, each at most ``MAX_ARG_LENGTH``
characters; the program is a bare allow-listed name, never a path.
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
        "wpa_supplicant",
        "systemctl",
        "start-stop-daemon",
        "useradd",
        "apt-get",
        "tor",
        "kill",
        "modprobe",
        "openssl",
        "redis-server",
        "curl",
        # the gateway's uplink check (ICMP echo bound to the uplink)
        "ping",
        # config checkers of the catalogued services (services/catalogue)
        "ngircd",
        "prosodyctl",
        "squid",
        "xmllint",
        "nginx",
        # adds the operator's .zim books to the offline library's index
        "kiwix-manage",
    }
)

# Python programs of the portal's own tree that the host layer may start as
# daemons (through start-stop-daemon, already allowed above), as paths
# relative to the repository. The interpreter is settings.PORTAL_PYTHON, a
# fixed absolute path; the builders (portal/host/builders/mdns.py) accept
# only these scripts, run with ``python -P`` so no portal module shadows the
# standard library. A new entry here is a reviewed change.
PORTAL_DAEMON_SCRIPTS: frozenset[str] = frozenset({"services/mdns_daemon.py"})

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
    if program == "ip":
        nested = _ip_nested_argv(argv)
        if nested is not None:
            check_argv(nested)


# `ip` accepts any unambiguous prefix of a long option (`-n`, `-net`,
# `--netns`) and of an object (`net` for `netns`). These helpers read an ip
# argv the way ip does, erring on the side of refusing.
_IP_OPTIONS_WITH_VALUE = ("-family", "-rcvbuf", "-loops", "-netns", "-batch")


def _ip_option(arg: str) -> str:
    option = arg[1:] if arg.startswith("--") else arg
    return option.split("=", 1)[0]


def _is_prefix_of(arg: str, word: str, minimum: int = 1) -> bool:
    return len(arg) >= minimum and word.startswith(arg)


def ip_options_and_object(argv: tuple[str, ...]) -> tuple[list[str], int]:
    """The global options of an ``ip`` argv and the index of its object."""
    options: list[str] = []
    index = 1
    while index < len(argv) and argv[index].startswith("-"):
        option = _ip_option(argv[index])
        options.append(option)
        takes_value = option in ("-f", "-l", "-rc", "-n", "-b") or any(
            _is_prefix_of(option, long, 3) for long in _IP_OPTIONS_WITH_VALUE
        )
        index += 2 if takes_value and "=" not in argv[index] else 1
    return options, index


def ip_uses_option(options: list[str], long: str) -> bool:
    """True when one of ``options`` is a prefix of ``long`` (``-n`` of ``-netns``)."""
    return any(_is_prefix_of(option, long, 2) for option in options)


def _ip_nested_argv(argv: tuple[str, ...]) -> tuple[str, ...] | None:
    """The program an ``ip netns exec`` / ``ip vrf exec`` argv would start."""
    options, index = ip_options_and_object(argv)
    if ip_uses_option(options, "-batch"):
        raise CommandNotAllowed("ip -batch reads commands from elsewhere")
    rest = argv[index:]
    if len(rest) < 2 or not _is_prefix_of(rest[1], "exec"):
        return None
    if _is_prefix_of(rest[0], "netns", 3):
        if ip_uses_option(options, "-all"):
            raise CommandNotAllowed("ip -all netns exec is not allowed")
        return rest[3:]
    if _is_prefix_of(rest[0], "vrf"):
        return rest[3:]
    return None


def resolve_executable(program: str) -> str:
    """Absolute path of an allow-listed program, looked up in system folders."""
    if program not in ALLOWED_EXECUTABLES:
        raise CommandNotAllowed(f"{program!r} is not an allowed program")
    path = shutil.which(program, path=SYSTEM_PATH)
    if path is None:
        raise CommandNotAllowed(f"{program} is not installed on this machine")
    return path
