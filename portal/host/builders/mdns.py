"""start-stop-daemon argv for the client-side mDNS responder.

The responder (``services/mdns_daemon.py``) is a python program of the
portal's own tree, so the generic daemon builder
(:func:`portal.host.builders.supervisor.start_daemon`), which accepts only
programs in system folders, does not fit as is. These builders keep its
shape and its rules (pid file, an unprivileged user, ``--output`` log,
TERM-then-KILL schedule, nothing through a shell; the responder drops to
the user itself once its sockets are bound) and add two of their own:

- The interpreter must be the one fixed path the settings name
  (``settings.PORTAL_PYTHON``, the portal's venv) and the script one of
  :data:`portal.host.allowlist.PORTAL_DAEMON_SCRIPTS` below the repository;
  both come from code, never from input, and are checked again here.
- Processes are matched by pid file, executable *and* process name
  (``--name byz-mdns``, set by the responder itself): the portal's workers
  run the same interpreter, so a stale pid file naming one of them is never
  signalled.
"""

from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext as _

from .. import validate
from ..allowlist import PORTAL_DAEMON_SCRIPTS
from ..commands import Command
from ..errors import InvalidValue
from .supervisor import STOP_SCHEDULE, user_name

PROCESS_NAME = "byz-mdns"
RESPONDER_SCRIPT = "services/mdns_daemon.py"


def _interpreter() -> str:
    from django.conf import settings

    return str(settings.PORTAL_PYTHON)


def _repository() -> Path:
    from django.conf import settings

    return Path(settings.BASE_DIR)


def interpreter(value: str) -> str:
    """The portal's own python, by its fixed absolute path only."""
    path = validate.absolute_path(value)
    if path != _interpreter():
        raise InvalidValue(
            _("%(value)s is not the portal's interpreter.")
            % {"value": repr(value)[:60]}
        )
    return path


def responder_script() -> str:
    """Absolute path of the responder script, from the allow-list."""
    if RESPONDER_SCRIPT not in PORTAL_DAEMON_SCRIPTS:  # pragma: no cover
        raise InvalidValue(_("The mDNS responder is not an allowed daemon."))
    return str(_repository() / RESPONDER_SCRIPT)


def start_responder(
    *,
    pidfile: str,
    python: str,
    records: str,
    address: str,
    node_name: str,
    output: str,
    user: str = "nobody",
    group: str = "nogroup",
    poll_seconds: float = 5.0,
) -> Command:
    """Start the responder in the background; it drops to ``user:group``.

    It starts as root and drops privileges itself once its sockets are bound
    and tied to the client interface (see ``services/mdns_daemon.py``), so
    there is no ``--chuid``; ``user_name`` refuses root as the target.

    ``--oknodo``: a responder that already runs (same pid file, program and
    name) is left alone, so a repeated start is harmless.
    """
    if not isinstance(node_name, str) or not 0 < len(node_name) <= 63:
        raise InvalidValue(_("A node name is 1 to 63 characters."))
    if "\x00" in node_name or "\n" in node_name:
        raise InvalidValue(_("A node name is one line of text."))
    return Command(
        (
            "start-stop-daemon",
            "--start",
            "--background",
            "--make-pidfile",
            "--oknodo",
            "--pidfile",
            validate.absolute_path(pidfile),
            "--name",
            PROCESS_NAME,
            "--chdir",
            "/",
            "--output",
            validate.absolute_path(output),
            "--exec",
            interpreter(python),
            "--",
            "-P",
            responder_script(),
            "--records",
            validate.absolute_path(records),
            "--address",
            validate.ipv4_address(address),
            "--node-name",
            node_name,
            "--poll",
            str(validate.positive_seconds(poll_seconds, maximum=300)),
            "--user",
            user_name(user),
            "--group",
            user_name(group),
        ),
        detach=True,
        timeout=30.0,
    )


def stop_responder(*, pidfile: str, python: str) -> Command:
    """TERM (the responder says goodbye), wait, KILL; gone already is fine."""
    return Command(
        (
            "start-stop-daemon",
            "--stop",
            "--oknodo",
            "--remove-pidfile",
            "--pidfile",
            validate.absolute_path(pidfile),
            "--name",
            PROCESS_NAME,
            "--exec",
            interpreter(python),
            "--retry",
            STOP_SCHEDULE,
        ),
        timeout=30.0,
    )


def reload_responder(*, pidfile: str, python: str) -> Command:
    """SIGHUP: re-read the records now. Exit 1 when it does not run."""
    return Command(
        (
            "start-stop-daemon",
            "--stop",
            "--signal",
            "HUP",
            "--pidfile",
            validate.absolute_path(pidfile),
            "--name",
            PROCESS_NAME,
            "--exec",
            interpreter(python),
        ),
        check=False,
        timeout=10.0,
    )


def responder_status(*, pidfile: str, python: str) -> Command:
    """Exit 0 when the pid file's process is the responder (LSB codes else)."""
    return Command(
        (
            "start-stop-daemon",
            "--status",
            "--pidfile",
            validate.absolute_path(pidfile),
            "--name",
            PROCESS_NAME,
            "--exec",
            interpreter(python),
        ),
        check=False,
        timeout=10.0,
    )
