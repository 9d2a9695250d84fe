"""dnsmasq: a client subnet's DHCP (and local DNS) server.

The rendered configuration serves one interface only (``bind-interfaces``),
hands out leases inside the subnet with the node as router and DNS server,
forwards no query anywhere (``no-resolv``: a mesh has no upstream) and keeps
its lease, pid and log files in the folder given. Every file is checked with
``dnsmasq --test`` before it is used.
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
# dnsmasq configuration of $title, rendered by the portal; do not edit.
interface=$interface
bind-interfaces
no-resolv
no-hosts
domain=$domain
local=/$domain/
dhcp-range=$range_start,$range_end,$netmask,$lease_time
dhcp-option=option:router,$router
dhcp-option=option:dns-server,$router
dhcp-authoritative
dhcp-leasefile=$lease_file
pid-file=$pid_file
log-facility=$log_file
log-dhcp
$extra"""
)

_TITLE = re.compile(r"^[A-Za-z0-9 ._-]{1,64}$")
_DOMAIN = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


@dataclass(frozen=True)
class DnsmasqConfig:
    """One dnsmasq instance: the interface it serves and its files."""

    title: str
    folder: Path
    interface: str
    subnet: str
    router: str
    first_host: int = 100
    last_host: int = 199
    lease_time: str = "1h"
    domain: str = "lab"
    # dnsmasq pings an address before offering it and waits up to 3 s for an
    # answer; a lab's subnet has no hosts it does not know, so it may skip it.
    no_ping: bool = False

    @property
    def config_file(self) -> Path:
        return self.folder / "dnsmasq.conf"

    @property
    def lease_file(self) -> Path:
        return self.folder / "dnsmasq.leases"

    @property
    def pid_file(self) -> Path:
        return self.folder / "dnsmasq.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "dnsmasq.log"


def render_config(config: DnsmasqConfig) -> str:
    """The text of dnsmasq.conf for ``config`` (values validated first)."""
    if not _TITLE.match(config.title):
        raise InvalidValue(f"{config.title!r} is not a plain title")
    if not _DOMAIN.match(config.domain):
        raise InvalidValue(f"{config.domain!r} is not a plain domain label")
    if not re.fullmatch(r"[1-9][0-9]{0,4}[mh]", config.lease_time):
        raise InvalidValue(f"{config.lease_time!r} is not a lease time like 1h")
    subnet = ipaddress.IPv4Network(validate.ip_network(config.subnet))
    router = ipaddress.IPv4Address(validate.ipv4_address(config.router))
    if router not in subnet:
        raise InvalidValue(f"router {router} is outside {subnet}")
    start = subnet.network_address + config.first_host
    end = subnet.network_address + config.last_host
    if not (start in subnet and end in subnet and start <= end):
        raise InvalidValue(f"DHCP range {start}-{end} is outside {subnet}")
    if start <= router <= end:
        raise InvalidValue(f"DHCP range {start}-{end} contains the router {router}")
    return CONFIG_TEMPLATE.substitute(
        title=config.title,
        interface=validate.interface_name(config.interface),
        domain=config.domain,
        range_start=start,
        range_end=end,
        netmask=subnet.netmask,
        lease_time=config.lease_time,
        router=router,
        lease_file=validate.absolute_path(str(config.lease_file)),
        pid_file=validate.absolute_path(str(config.pid_file)),
        log_file=validate.absolute_path(str(config.log_file)),
        extra="no-ping\n" if config.no_ping else "",
    )


def test_config(config_file: Path) -> Command:
    """dnsmasq's own syntax check of a configuration file."""
    return Command(
        (
            "dnsmasq",
            "--test",
            f"--conf-file={validate.absolute_path(str(config_file))}",
        ),
        timeout=10,
    )


def start(config_file: Path) -> Command:
    """Start dnsmasq (it daemonises) with only this configuration file."""
    return Command(
        ("dnsmasq", f"--conf-file={validate.absolute_path(str(config_file))}"),
        detach=True,
        timeout=15,
    )
