"""dnsmasq: check a configuration file and start it.

The configuration itself is rendered by :mod:`meshnet.dnsmasq_config` from
the node's mesh state (the lab uses the same renderer). dnsmasq reads only
the file it is given (``--conf-file``), never /etc/dnsmasq.conf, so a
dnsmasq package configured by the distribution cannot change ours.
"""

from __future__ import annotations

from pathlib import Path

from portal.host import validate
from portal.host.commands import Command


def test_config(config_file: Path, *, check: bool = True) -> Command:
    """dnsmasq's own syntax check of a configuration file.

    ``check=False`` makes a refusal an answer to read (its reason is on
    stderr) rather than an error.
    """
    return Command(
        (
            "dnsmasq",
            "--test",
            f"--conf-file={validate.absolute_path(str(config_file))}",
        ),
        timeout=10,
        check=check,
    )


def start(config_file: Path) -> Command:
    """Start dnsmasq (it daemonises) with only this configuration file.

    dnsmasq sets up its sockets before it forks and closes its standard
    streams when it does, so the call returns at once and a start-up error
    (an address in use, an unreadable file) is on stderr with exit code 1.
    """
    return Command(
        ("dnsmasq", f"--conf-file={validate.absolute_path(str(config_file))}"),
        timeout=15,
    )
