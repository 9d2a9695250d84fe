"""Starting, reloading and stopping the client-side mDNS responder.

The responder (:mod:`services.mdns_daemon`) publishes the records the
announcement component writes to ``/etc/byzantium/services/mdns/``. This
module is what the portal's jobs call; every command goes through the
host's runner, so in the lab the responder runs inside the node's network
namespace and on a real node on the node itself. It is started with
start-stop-daemon in both cases (the program is small, has no unit to
sandbox and must follow the records, not a boot target), as ``nobody``,
with its pid file at ``/run/byzantium/mdns.pid`` and its log at
``/var/log/byzantium/mdns.log`` (node paths).

:func:`sync_responder` is the one call the announcement component needs
after writing or removing a record: it starts the responder when there is
something to announce, signals it (SIGHUP) so the change shows at once,
restarts it when the node's client address changed, and stops it (goodbye
packets included) when nothing is announced any more.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings

from portal.host.builders import mdns as builders
from portal.host.node import Host

from .components import MDNS_FOLDER
from .context import NodeNetwork

PIDFILE = "/run/byzantium/mdns.pid"
LOGFILE = "/var/log/byzantium/mdns.log"
START_WAIT_SECONDS = 5.0


def _python() -> str:
    return str(settings.PORTAL_PYTHON)


def _pidfile(host: Host) -> str:
    return str(host.files.path(PIDFILE))


def client_address(network: NodeNetwork) -> str | None:
    """The address the responder binds to and publishes, or None."""
    return network.client_addresses[0] if network.client_addresses else None


def has_records(host: Host) -> bool:
    """True when at least one announcement record is in the folder."""
    folder = host.files.path(MDNS_FOLDER)
    try:
        return any(
            path.suffix == ".json" and not path.name.startswith(".")
            for path in folder.iterdir()
        )
    except OSError:
        return False


def start_command(host: Host, network: NodeNetwork, address: str):
    """The start-stop-daemon command that starts the responder for ``host``."""
    return builders.start_responder(
        pidfile=_pidfile(host),
        python=_python(),
        records=str(host.files.path(MDNS_FOLDER)),
        address=address,
        node_name=network.node_name,
        output=str(host.files.path(LOGFILE)),
    )


def responder_running(host: Host) -> bool:
    """Read from the system: the pid file's process is the responder."""
    result = host.runner.run(
        builders.responder_status(pidfile=_pidfile(host), python=_python())
    )
    return result.returncode == 0 and not result.timed_out


def running_arguments(host: Host) -> tuple[str, ...] | None:
    """The running responder's command line (to see whether it is current)."""
    try:
        pid = int(Path(_pidfile(host)).read_text().strip())
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def ensure_responder(host: Host, network: NodeNetwork) -> bool:
    """Start the responder unless it runs with the current arguments.

    Returns True when it runs afterwards. A responder started for another
    client address (the operator renumbered the client side) is stopped
    and started again. Nothing starts without a client address.
    """
    address = client_address(network)
    if address is None:
        return False
    command = start_command(host, network, address)
    wanted = command.argv[command.argv.index("--") + 1 :]
    if responder_running(host):
        current = running_arguments(host)
        if current is None or current[-len(wanted) :] == wanted:
            return True
        stop_responder(host)
    for node_path in (PIDFILE, LOGFILE, MDNS_FOLDER + "/x"):
        host.files.path(node_path).parent.mkdir(parents=True, exist_ok=True)
    host.runner.run(command)
    deadline = time.monotonic() + START_WAIT_SECONDS
    while time.monotonic() < deadline:
        # The responder names itself (for --name) a moment after it starts.
        if responder_running(host):
            return True
        time.sleep(0.1)
    return False


def reload_responder(host: Host) -> bool:
    """SIGHUP: re-read the records now; False when it does not run."""
    result = host.runner.run(
        builders.reload_responder(pidfile=_pidfile(host), python=_python())
    )
    return result.returncode == 0 and not result.timed_out


def stop_responder(host: Host) -> None:
    """Stop it (it sends goodbye packets first) and remove its pid file."""
    host.runner.run(builders.stop_responder(pidfile=_pidfile(host), python=_python()))


def sync_responder(host: Host, network: NodeNetwork) -> str:
    """Make the responder follow the records folder; what was done.

    ``started``, ``reloaded``, ``stopped`` or ``idle`` (nothing to announce
    and nothing running, or no client address to announce on).
    """
    if not has_records(host):
        if responder_running(host):
            stop_responder(host)
            return "stopped"
        return "idle"
    if responder_running(host):
        current = running_arguments(host)
        address = client_address(network)
        if address is not None and current is not None:
            wanted = start_command(host, network, address).argv
            wanted = wanted[wanted.index("--") + 1 :]
            if current[-len(wanted) :] == wanted:
                reload_responder(host)
                return "reloaded"
    return "started" if ensure_responder(host, network) else "idle"
