"""Supervising service daemons: start-stop-daemon and systemctl argv.

Two back ends, one per kind of machine (see :mod:`services.supervisors`):

- ``start-stop-daemon`` (Debian's dpkg) where PID 1 is not systemd: the lab
  and CI. The daemon stays in the foreground; start-stop-daemon backgrounds
  it, writes its pid file, drops to the service's user and sends its output
  to a log file. Processes are found by pid file *and* executable, so a
  stale pid file naming another program is never signalled.
- ``systemctl`` on a real node, acting only on units named
  ``byzantium-<id>[-<daemon>].service`` that the portal generates.

The builders are strict: the executable must be an absolute system path,
users and units match tight patterns, every path is absolute. Nothing here
reaches a shell.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from .. import validate
from ..commands import Command
from ..errors import InvalidValue

UNIT_RE = re.compile(r"^byzantium-[a-z][a-z0-9-]{1,62}\.service\Z")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
EXECUTABLE_PREFIXES = (
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/lib/",
    "/usr/share/",
    "/usr/local/bin/",
    "/opt/",
)
# Seconds start-stop-daemon waits after TERM before KILL, and after KILL.
STOP_SCHEDULE = "TERM/5/KILL/2"
SYSTEMCTL_TIMEOUT = 90.0


def unit_name(value: str) -> str:
    """A unit the portal generated (``byzantium-ircd.service``)."""
    if not isinstance(value, str) or not UNIT_RE.fullmatch(value):
        raise InvalidValue(
            _("%(value)s is not a portal unit.") % {"value": repr(value)[:40]}
        )
    return value


def user_name(value: str) -> str:
    """A system user or group name; root is refused."""
    if not isinstance(value, str) or not USER_RE.fullmatch(value) or value == "root":
        raise InvalidValue(
            _("%(value)s is not an allowed service user.") % {"value": repr(value)[:40]}
        )
    return value


def executable(value: str) -> str:
    """An absolute path of an installed program in a system folder."""
    path = validate.absolute_path(value)
    if not path.startswith(EXECUTABLE_PREFIXES) or "/../" in path:
        raise InvalidValue(
            _("%(value)s is not a program in a system folder.")
            % {"value": repr(value)[:40]}
        )
    return path


def _args(args: tuple[str, ...]) -> tuple[str, ...]:
    for arg in args:
        if not isinstance(arg, str) or "\x00" in arg or "\n" in arg:
            raise InvalidValue(_("A daemon argument is not one line of text."))
    return tuple(args)


def start_daemon(
    *,
    pidfile: str,
    program: str,
    args: tuple[str, ...] = (),
    user: str,
    group: str,
    chdir: str,
    output: str,
    env: tuple[tuple[str, str], ...] = (),
) -> Command:
    """Start a foreground daemon in the background as ``user:group``.

    ``--oknodo`` makes starting a daemon that already runs (same pid file,
    same executable) a success, so a repeated activation is harmless.
    """
    return Command(
        (
            "start-stop-daemon",
            "--start",
            "--background",
            "--make-pidfile",
            "--oknodo",
            "--pidfile",
            validate.absolute_path(pidfile),
            "--chuid",
            f"{user_name(user)}:{user_name(group)}",
            "--chdir",
            validate.absolute_path(chdir),
            "--output",
            validate.absolute_path(output),
            "--exec",
            executable(program),
            "--",
            *_args(args),
        ),
        detach=True,
        env=env,
        timeout=30.0,
    )


def stop_daemon(*, pidfile: str, program: str) -> Command:
    """Stop the daemon of a pid file: TERM, wait, KILL; gone already is fine."""
    return Command(
        (
            "start-stop-daemon",
            "--stop",
            "--oknodo",
            "--remove-pidfile",
            "--pidfile",
            validate.absolute_path(pidfile),
            "--exec",
            executable(program),
            "--retry",
            STOP_SCHEDULE,
        ),
        timeout=30.0,
    )


def daemon_status(*, pidfile: str, program: str) -> Command:
    """Exit 0 when the pid file's process runs that program (LSB codes else)."""
    return Command(
        (
            "start-stop-daemon",
            "--status",
            "--pidfile",
            validate.absolute_path(pidfile),
            "--exec",
            executable(program),
        ),
        check=False,
        timeout=10.0,
    )


def systemctl(action: str, unit: str) -> Command:
    """``systemctl start|stop|restart|enable|disable UNIT`` on a portal unit."""
    if action not in ("start", "stop", "restart", "enable", "disable"):
        raise InvalidValue(
            _("%(value)s is not a unit action.") % {"value": repr(action)[:40]}
        )
    return Command(("systemctl", action, unit_name(unit)), timeout=SYSTEMCTL_TIMEOUT)


def systemctl_is_active(unit: str) -> Command:
    """Exit 0 when the unit is active; a non-zero exit is an answer."""
    return Command(
        ("systemctl", "is-active", "--quiet", unit_name(unit)),
        check=False,
        timeout=10.0,
    )


def systemctl_daemon_reload() -> Command:
    """Re-read unit files after the portal wrote one."""
    return Command(("systemctl", "daemon-reload"), timeout=SYSTEMCTL_TIMEOUT)


def create_system_user(user: str, group: str) -> Command:
    """A system user with its own group, no home, no login shell."""
    user_name(user)
    if group != user:
        raise InvalidValue(_("A created service user gets a group of its own name."))
    return Command(
        (
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            user,
        )
    )
