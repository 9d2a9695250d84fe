"""babeld: how to start it.

The configuration file itself is rendered (and checked) by
:mod:`meshnet.babel_config` from the node's mesh state; the lab uses the
same renderer, so the lab runs exactly what the portal writes.
"""

from __future__ import annotations

from pathlib import Path

from portal.host import validate
from portal.host.commands import Command


def start(config_file: Path) -> Command:
    """Start babeld as a daemon (``-D``) with the given configuration.

    babeld parses the file before it forks and closes its standard streams
    when it does, so the call returns at once with the parser's verdict:
    exit code 1 and the line babeld could not parse on stderr.
    """
    return Command(
        ("babeld", "-D", "-c", validate.absolute_path(str(config_file))),
        timeout=15,
    )


def check_start(config_file: Path) -> Command:
    """Like :func:`start`, but a refusal is an answer to read, not an error."""
    return Command(
        ("babeld", "-D", "-c", validate.absolute_path(str(config_file))),
        timeout=15,
        check=False,
    )
