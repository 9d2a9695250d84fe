"""tor: check a torrc, and the arguments that run tor in the foreground.

Two users: the gateway's transparent Tor (:mod:`gateway.tor`) and the
``onion-chat`` catalogue entry (its own instance, checked by the services
app with the same ``--verify-config``). tor is started through a supervisor
(``start-stop-daemon`` or a systemd unit, :mod:`.supervisor`), so this
module only builds the checker's argv and the daemon's own arguments.

Both read only the file they are given: ``--defaults-torrc /dev/null``
keeps a distribution's ``/etc/tor/torrc-defaults`` (if one exists) out of
the portal's configuration, so the file that was checked is the whole
configuration that runs.
"""

from __future__ import annotations

from portal.host import validate
from portal.host.commands import Command

# Debian's tor (/usr/sbin/tor is a link to it); start-stop-daemon compares
# the running process's executable with this path.
TOR_EXECUTABLE = "/usr/bin/tor"
NO_DEFAULTS = ("--defaults-torrc", "/dev/null")
VERIFY_TIMEOUT = 30.0


def verify_config(torrc: str, *, check: bool = False) -> Command:
    """``tor --verify-config``: parse and validate a torrc, start nothing.

    By default a refusal is an answer to read (tor explains it on stdout,
    ``[warn] Failed to parse/validate config: ...``) rather than an error.
    """
    return Command(
        ("tor", "--verify-config", *NO_DEFAULTS, "-f", validate.absolute_path(torrc)),
        check=check,
        timeout=VERIFY_TIMEOUT,
    )


def daemon_args(torrc: str) -> tuple[str, ...]:
    """tor's arguments under a supervisor: this torrc only, in the foreground."""
    return (*NO_DEFAULTS, "-f", validate.absolute_path(torrc), "--RunAsDaemon", "0")


def start_daemon(*, pidfile: str, torrc: str, chdir: str, output: str) -> Command:
    """Start tor in the background with ``start-stop-daemon``, as root.

    Unlike :func:`.supervisor.start_daemon` there is no ``--chuid``: tor
    refuses a torrc's ``User`` unless it starts as root, and it checks its
    data folder against that user, also in ``--verify-config``. So the
    gateway's torrc names ``User debian-tor`` and tor drops to it as soon
    as its ports are open, exactly as under Debian's own systemd unit. Only
    tor, with only a torrc, can be started this way.
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
            "--chdir",
            validate.absolute_path(chdir),
            "--output",
            validate.absolute_path(output),
            "--exec",
            TOR_EXECUTABLE,
            "--",
            *daemon_args(torrc),
        ),
        detach=True,
        timeout=30.0,
    )
