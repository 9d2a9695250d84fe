"""Signals to processes the portal started (``kill -s SIGNAL PID``).

Processes are always addressed by pid, read from a pid file or from ``ip
netns pids``, never by name: ``pkill babeld`` would also hit daemons that
are none of ours.
"""

from __future__ import annotations

from portal.host import validate
from portal.host.commands import Command
from portal.host.errors import InvalidValue

SIGNALS = ("TERM", "KILL", "HUP", "INT")


def send_signal(pid: int, signal: str = "TERM") -> Command:
    """Send ``signal`` to one process; a process already gone is no error."""
    if signal not in SIGNALS:
        raise InvalidValue(f"{signal!r} is not one of {', '.join(SIGNALS)}")
    return Command(("kill", "-s", signal, str(validate.pid(pid))), check=False)
