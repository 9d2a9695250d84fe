"""dhclient (ISC): a DHCP client with its own files.

Every file dhclient would otherwise keep in system folders is given
explicitly: configuration (``-cf``), leases (``-lf``), pid (``-pf``) and,
above all, the script it runs on each lease event (``-sf``). The stock
``/sbin/dhclient-script`` rewrites ``/etc/resolv.conf``; the caller passes a
script of its own so that can never happen (see :mod:`portal.lab.clients`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from portal.host import validate
from portal.host.commands import Command
from portal.host.errors import InvalidValue

CONFIG_TEMPLATE = Template(
    """\
# dhclient configuration of $host_name, rendered by the portal; do not edit.
send host-name "$host_name";
request subnet-mask, broadcast-address, routers, domain-name,
        domain-name-servers;
timeout $timeout;
retry 10;
"""
)

_HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")


@dataclass(frozen=True)
class DhclientConfig:
    """One DHCP client: its interface, name and files."""

    host_name: str
    folder: Path
    interface: str
    timeout: int = 20

    @property
    def config_file(self) -> Path:
        return self.folder / "dhclient.conf"

    @property
    def lease_file(self) -> Path:
        return self.folder / "dhclient.leases"

    @property
    def pid_file(self) -> Path:
        return self.folder / "dhclient.pid"

    @property
    def script(self) -> Path:
        return self.folder / "dhclient-hook"


def render_config(config: DhclientConfig) -> str:
    """The text of dhclient.conf for ``config``."""
    if not _HOST_NAME.match(config.host_name):
        raise InvalidValue(f"{config.host_name!r} is not a plain host name")
    timeout = validate.whole_number(config.timeout, minimum=1, maximum=300)
    return CONFIG_TEMPLATE.substitute(host_name=config.host_name, timeout=timeout)


def start(config: DhclientConfig) -> Command:
    """Ask for one lease (``-1``: give up after the timeout) then daemonise.

    The call returns once a lease is bound (dhclient then forks and keeps
    renewing it) or fails when none came within the configured timeout.
    """
    return Command(
        (
            "dhclient",
            "-4",
            "-1",
            "-cf",
            validate.absolute_path(str(config.config_file)),
            "-lf",
            validate.absolute_path(str(config.lease_file)),
            "-pf",
            validate.absolute_path(str(config.pid_file)),
            "-sf",
            validate.absolute_path(str(config.script)),
            validate.interface_name(config.interface),
        ),
        detach=True,
        timeout=config.timeout + 15,
    )
