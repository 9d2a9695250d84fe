"""babeld: its configuration file and how to start it.

babeld has no "check the configuration" flag, so :func:`check_config` checks
what we render against the directives we use before the file is written: a
config babeld would half-understand never reaches it. The configuration
redistributes only the node's own addresses (its mesh /32 and its client
/24) and denies everything else, local addresses included: a lab node, like
a real one, must never leak a route it does not own into the mesh.

The local socket is the read-only one (``local-path``): the dashboard reads
neighbours and routes from it, and nothing can reconfigure babeld through it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from portal.host import validate
from portal.host.commands import Command
from portal.host.errors import InvalidValue

CONFIG_TEMPLATE = Template(
    """\
# babeld configuration of $title, rendered by the portal; do not edit.
local-path $socket
pid-file $pid_file
state-file $state_file
log-file $log_file
default hello-interval $hello_interval
$interfaces
# Announce only this node's own mesh address and client subnet.
redistribute local ip $mesh_address allow
redistribute ip $client_subnet eq $client_prefixlen allow
redistribute local deny
redistribute deny
"""
)

_DIRECTIVES = frozenset(
    {
        "local-path",
        "pid-file",
        "state-file",
        "log-file",
        "default",
        "interface",
        "redistribute",
    }
)
_TITLE = re.compile(r"^[A-Za-z0-9 ._-]{1,64}$")


@dataclass(frozen=True)
class BabeldConfig:
    """What one babeld instance needs: its interfaces, prefixes and files."""

    title: str
    folder: Path
    interfaces: tuple[str, ...]
    mesh_address: str
    client_subnet: str
    hello_interval: float = 4.0

    @property
    def config_file(self) -> Path:
        return self.folder / "babeld.conf"

    @property
    def pid_file(self) -> Path:
        return self.folder / "babeld.pid"

    @property
    def socket(self) -> Path:
        return self.folder / "babeld.sock"

    @property
    def state_file(self) -> Path:
        return self.folder / "babeld.state"

    @property
    def log_file(self) -> Path:
        return self.folder / "babeld.log"


def render_config(config: BabeldConfig) -> str:
    """The text of babeld.conf for ``config`` (values validated first)."""
    if not _TITLE.match(config.title):
        raise InvalidValue(f"{config.title!r} is not a plain title")
    mesh = ipaddress.ip_network(
        validate.ip_interface(config.mesh_address), strict=False
    )
    if mesh.prefixlen != mesh.max_prefixlen:
        raise InvalidValue(f"{config.mesh_address} must be a single address (/32)")
    subnet = ipaddress.ip_network(validate.ip_network(config.client_subnet))
    hello = validate.positive_seconds(config.hello_interval, maximum=600)
    interfaces = "\n".join(
        f"interface {validate.interface_name(name)}" for name in config.interfaces
    )
    return CONFIG_TEMPLATE.substitute(
        title=config.title,
        socket=validate.absolute_path(str(config.socket)),
        pid_file=validate.absolute_path(str(config.pid_file)),
        state_file=validate.absolute_path(str(config.state_file)),
        log_file=validate.absolute_path(str(config.log_file)),
        hello_interval=f"{hello:g}",
        interfaces=interfaces or "# no mesh interface yet",
        mesh_address=str(mesh),
        client_subnet=str(subnet),
        client_prefixlen=subnet.prefixlen,
    )


def check_config(text: str) -> None:
    """Refuse a configuration with a directive this module never writes.

    Stands in for the checker babeld lacks: each line must be a comment or
    start with a known directive, and the last lines must deny every route
    not explicitly allowed.
    """
    lines = [line.strip() for line in text.splitlines()]
    directives = [line for line in lines if line and not line.startswith("#")]
    for line in directives:
        word = line.split()[0]
        if word not in _DIRECTIVES:
            raise InvalidValue(f"babeld.conf: unknown directive {word!r}")
    if directives[-2:] != ["redistribute local deny", "redistribute deny"]:
        raise InvalidValue("babeld.conf must end by denying every other route")


def start(config_file: Path) -> Command:
    """Start babeld as a daemon (``-D``) with the given configuration."""
    return Command(
        ("babeld", "-D", "-c", validate.absolute_path(str(config_file))),
        detach=True,
        timeout=15,
    )
