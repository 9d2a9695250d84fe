"""Bring a node to a :class:`GatewayPlan`: uplink, NAT, route, DNS, Tor.

:func:`apply_gateway` takes a :class:`~portal.host.node.Host`, so the job on
a real node and the lab tests' gateway nodes (which have no database) are
configured by this one function. Order and why:

1. Validate and render everything first (the NAT ruleset, the Tor plan):
   a bad value raises before anything on the node changes.
2. The uplink: a fixed address and default route (``ip address replace``,
   ``ip route replace default``), or the portal's own dhclient with a hook
   that only sets the address and the route (it never writes the node's
   ``/etc/resolv.conf``: the lease's DNS servers are read from the lease
   file). An uplink this function configured earlier and no longer wants is
   released first.
3. IPv4 forwarding (inside the node's namespace in the lab).
4. The NAT table ``ip byz_gateway`` (:mod:`gateway.nat`): checked with
   ``nft -c -f``, then loaded, when sharing is on in direct mode; deleted
   otherwise. In Tor mode the Tor helper's table takes over
   (:func:`gateway.tor.apply_tor`) and ours is not loaded.
5. The mesh: ``announce_default_route`` (only while sharing and the uplink
   check passes) and dnsmasq's upstreams, through meshnet's own
   :func:`meshnet.apply.apply_mesh` (babeld and dnsmasq are re-rendered,
   checked and restarted only when their file changes).

What was added is recorded in ``/var/lib/byzantium/gateway-applied.json``,
so turning sharing off removes exactly that: the table, the route
announcement, the upstreams, Tor; nothing somebody else put there.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import psutil
from django.utils.translation import gettext as _

from meshnet.apply import MeshApplyError, apply_mesh
from meshnet.state import MeshState
from portal.host import validate
from portal.host.builders import dhclient, inspect, link, nft, process, sysctl
from portal.host.errors import CommandFailed, HostError, InvalidValue
from portal.host.node import Host
from portal.host.readers import parse_ip_route

from . import nat

APPLIED_RECORD = "/var/lib/byzantium/gateway-applied.json"
NAT_FILE = "/etc/byzantium/gateway.nft"
NAT_CHECK_FILE = "/run/byzantium/gateway-check.nft"
DHCP_FOLDER = "/var/lib/byzantium/uplink-dhcp"
DHCP_RESOLV = "/var/lib/byzantium/uplink-dhcp/resolv.conf"
# The uplink's default route gives way to one babeld installs (metric 0)
# from another gateway: only while this node does not announce its own
# (babeld then ignores the others', see meshnet.babel_config).
UPLINK_ROUTE_METRIC = 1024


class GatewayApplyError(HostError):
    """The gateway could not be applied; the message says why, in words."""


@dataclass(frozen=True)
class UplinkConfig:
    """How the uplink interface gets its address."""

    interface: str
    addressing: str = "dhcp"  # "dhcp" | "static"
    address: str = ""  # "192.0.2.7/24" for static
    router: str = ""  # "192.0.2.1" for static


@dataclass(frozen=True)
class OnionChoice:
    """A local service to publish as an onion service (catalogue id, port)."""

    name: str
    port: int


@dataclass(frozen=True)
class GatewayPlan:
    """Everything :func:`apply_gateway` needs, as plain data."""

    uplink: UplinkConfig | None = None
    sharing: bool = False
    # The uplink check's verdict: the default route is announced only while
    # it is True (and sharing is on).
    online: bool = False
    tor: bool = False
    onion_services: tuple[OnionChoice, ...] = ()
    # dnsmasq's upstreams (gateway.dns.choose_upstreams).
    upstream_servers: tuple[str, ...] = ()

    @property
    def announce(self) -> bool:
        return self.sharing and self.online and self.uplink is not None

    @property
    def wants_nat(self) -> bool:
        return self.sharing and not self.tor and self.uplink is not None

    @property
    def wants_tor(self) -> bool:
        return self.sharing and self.tor and self.uplink is not None


@dataclass
class GatewayReport:
    """What :func:`apply_gateway` did, step by step, in plain words."""

    steps: list[str] = field(default_factory=list)
    mesh: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "mesh": self.mesh}

    def add_mesh(self, mesh: Any) -> None:  # noqa: ANN401 - meshnet's ApplyReport
        self.steps += mesh.steps
        self.mesh = mesh.to_dict()


@contextlib.contextmanager
def _failures_reported(
    host: Host, record: dict[str, Any], failed: str
) -> Iterator[None]:
    """Turn a failed step into :class:`GatewayApplyError` (``failed`` is the
    message, with ``%(reason)s``); the record keeps what was done before it,
    so the next apply or removal knows what is there."""
    try:
        yield
    except CommandFailed as error:
        write_record(host, record)
        raise GatewayApplyError(failed % {"reason": error}) from error
    except MeshApplyError as error:
        raise GatewayApplyError(str(error)) from error


def validate_uplink(config: UplinkConfig) -> UplinkConfig:
    """The uplink config with every value checked (InvalidValue otherwise)."""
    name = validate.interface_name(config.interface)
    if config.addressing == "dhcp":
        return UplinkConfig(interface=name)
    if config.addressing != "static":
        raise InvalidValue(
            _("%(value)s is not a way to address the uplink.")
            % {"value": repr(config.addressing)[:20]}
        )
    try:
        interface = ipaddress.IPv4Interface(config.address)
        router = ipaddress.IPv4Address(config.router)
    except ValueError as error:
        raise InvalidValue(
            _("The uplink needs an IPv4 address with its prefix and a router.")
        ) from error
    if "/" not in config.address or not 8 <= interface.network.prefixlen <= 30:
        raise InvalidValue(_("The uplink's prefix must be from /8 to /30."))
    if router not in interface.network or router == interface.ip:
        raise InvalidValue(
            _("The router %(router)s is not another address of %(network)s.")
            % {"router": router, "network": interface.network}
        )
    return UplinkConfig(
        interface=name,
        addressing="static",
        address=interface.with_prefixlen,
        router=str(router),
    )


def listen_address(state: MeshState) -> str:
    """The node's client-side address (``x.x.x.1``): Tor listens there."""
    network = ipaddress.IPv4Network(state.client_subnet)
    return str(network.network_address + 1)


def build_tor_plan(plan: GatewayPlan, state: MeshState):  # noqa: ANN201 - tor.TorPlan
    """The Tor helper's :class:`gateway.tor.TorPlan` for this node."""
    tor = _tor_module()
    if plan.uplink is None:
        raise InvalidValue(_("Tor needs an uplink."))
    address = listen_address(state)
    return tor.TorPlan(
        client_networks=nat.source_networks(state.client_subnet),
        listen_address=address,
        uplink_interface=validate.interface_name(plan.uplink.interface),
        onion_services=tuple(
            tor.OnionService(
                name=choice.name,
                virtual_port=validate.port_number(choice.port),
                target=f"{address}:{validate.port_number(choice.port)}",
            )
            for choice in plan.onion_services
        ),
    )


def _tor_module():  # noqa: ANN202 - a module
    try:
        return importlib.import_module("gateway.tor")
    except ImportError as error:
        raise GatewayApplyError(
            _("Tor mode is not available on this node: %(reason)s") % {"reason": error}
        ) from error


# -- the apply --------------------------------------------------------------


def apply_gateway(
    host: Host, plan: GatewayPlan, state: MeshState, *, mesh_tuning: Any = None
) -> GatewayReport:
    """Make the node's gateway side match ``plan``; returns what changed.

    ``state`` is the node's mesh state; its ``announce_default_route`` and
    ``upstream_servers`` are replaced by the plan's before meshnet applies
    it. Raises :class:`InvalidValue` for a bad value (before any change),
    :class:`GatewayApplyError` when a step fails on the node.
    """
    report = GatewayReport()
    uplink = validate_uplink(plan.uplink) if plan.uplink is not None else None
    plan = replace(plan, uplink=uplink)
    nat_text = (
        nat.render(
            nat.NatPlan(uplink.interface, nat.source_networks(state.client_subnet))
        )
        if plan.wants_nat and uplink is not None
        else None
    )
    tor_plan = build_tor_plan(plan, state) if plan.wants_tor else None
    mesh_state = replace(
        state,
        announce_default_route=plan.announce,
        upstream_servers=tuple(plan.upstream_servers),
        dns_for_mesh=plan.announce,
    )
    record = read_record(host)
    failed = _("Applying the gateway settings failed: %(reason)s")
    with _failures_reported(host, record, failed):
        _apply_uplink(host, uplink, record, report)
        if plan.sharing:
            _ensure_forwarding(host, report)
        _apply_nat(host, nat_text, record, report)
        _apply_tor(host, tor_plan, record, report)
        write_record(host, record)
        mesh = apply_mesh(host, mesh_state, tuning=mesh_tuning, upstream_servers=())
    report.add_mesh(mesh)
    return report


def remove_gateway(
    host: Host,
    state: MeshState,
    *,
    upstream_servers: tuple[str, ...] = (),
    mesh_tuning: Any = None,
) -> GatewayReport:
    """Undo everything :func:`apply_gateway` added, the uplink included."""
    report = GatewayReport()
    record = read_record(host)
    failed = _("Removing the gateway settings failed: %(reason)s")
    with _failures_reported(host, record, failed):
        _apply_tor(host, None, record, report)
        _apply_nat(host, None, record, report)
        _apply_uplink(host, None, record, report)
        write_record(host, record)
        mesh = apply_mesh(
            host,
            replace(
                state, announce_default_route=False, upstream_servers=upstream_servers
            ),
            tuning=mesh_tuning,
        )
    report.add_mesh(mesh)
    return report


# -- the record -------------------------------------------------------------


def read_record(host: Host) -> dict[str, Any]:
    """What the last apply added (an empty dict when nothing or unreadable)."""
    text = host.files.read_text(APPLIED_RECORD)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def write_record(host: Host, record: dict[str, Any]) -> None:
    text = json.dumps(record, sort_keys=True) + "\n"
    if host.files.read_text(APPLIED_RECORD) != text:
        host.files.write(APPLIED_RECORD, text)


# -- uplink -----------------------------------------------------------------


def _dhcp_config(host: Host, interface: str) -> dhclient.DhclientConfig:
    return dhclient.DhclientConfig(
        host_name="byzantium",
        folder=host.files.path(DHCP_FOLDER),
        interface=interface,
    )


def dhclient_pid(host: Host, interface: str) -> int | None:
    """The pid of the portal's uplink dhclient when it runs, else None."""
    config = _dhcp_config(host, interface)
    try:
        text = config.pid_file.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    try:
        proc = psutil.Process(int(text))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if str(config.config_file) not in proc.cmdline():
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc.pid


def lease_file_text(host: Host, interface: str) -> str:
    """The uplink dhclient's lease file ('' when there is none)."""
    try:
        return _dhcp_config(host, interface).lease_file.read_text(errors="replace")
    except OSError:
        return ""


def _apply_uplink(
    host: Host,
    uplink: UplinkConfig | None,
    record: dict[str, Any],
    report: GatewayReport,
) -> None:
    previous = record.get("uplink") if isinstance(record.get("uplink"), dict) else None
    wanted = (
        {
            "interface": uplink.interface,
            "addressing": uplink.addressing,
            "address": uplink.address,
            "router": uplink.router,
        }
        if uplink is not None
        else None
    )
    if previous and previous != wanted:
        _release_uplink(host, previous, report)
        record.pop("uplink", None)
    if uplink is None:
        return
    host.runner.run(link.set_up(uplink.interface))
    if uplink.addressing == "static":
        host.runner.run(link.address_replace(uplink.interface, uplink.address))
        _ensure_uplink_route(host, uplink)
        if previous != wanted:
            report.steps.append(
                _("%(address)s on %(name)s, default route via %(router)s")
                % {
                    "address": uplink.address,
                    "name": uplink.interface,
                    "router": uplink.router,
                }
            )
    elif dhclient_pid(host, uplink.interface) is None:
        _start_dhclient(host, uplink.interface)
        report.steps.append(
            _("asked for an address on %(name)s by DHCP") % {"name": uplink.interface}
        )
    record["uplink"] = wanted


def _ensure_uplink_route(host: Host, uplink: UplinkConfig) -> None:
    """The uplink's default route (metric :data:`UPLINK_ROUTE_METRIC`)."""
    routes = parse_ip_route(
        host.runner.run(inspect.route_show(family=4)).stdout or "[]", family="inet"
    )
    for route in routes:
        if (
            route.is_default
            and route.device == uplink.interface
            and route.gateway == uplink.router
            and route.metric == UPLINK_ROUTE_METRIC
        ):
            return
    host.runner.run(
        link.default_route_replace(
            uplink.router, uplink.interface, metric=UPLINK_ROUTE_METRIC
        )
    )


def _start_dhclient(host: Host, interface: str) -> None:
    from portal.lab.dhcp_hook import render_launcher

    config = _dhcp_config(host, interface)
    host.files.write(f"{DHCP_FOLDER}/dhclient.conf", dhclient.render_config(config))
    # The hook sets the address and the default route only; the offered DNS
    # servers go to a file of the portal's own, never /etc/resolv.conf.
    host.files.write(
        f"{DHCP_FOLDER}/dhclient-hook",
        render_launcher(host.files.path(DHCP_RESOLV), route_metric=UPLINK_ROUTE_METRIC),
        mode=0o755,
    )
    try:
        host.runner.run(dhclient.start(config))
    except CommandFailed as error:
        raise GatewayApplyError(
            _("No DHCP server answered on %(name)s: %(reason)s")
            % {"name": interface, "reason": str(error)[-200:]}
        ) from error


def _release_uplink(
    host: Host, previous: dict[str, Any], report: GatewayReport
) -> None:
    """Take back what an earlier apply put on the previous uplink."""
    name = validate.interface_name(str(previous.get("interface", "")))
    if previous.get("addressing") == "dhcp":
        pid = dhclient_pid(host, name)
        if pid is not None:
            host.runner.run(process.send_signal(pid, "TERM"))
        host.runner.run(link.address_flush_ipv4(name))
        report.steps.append(_("stopped DHCP on %(name)s") % {"name": name})
        return
    address = str(previous.get("address", ""))
    if address:
        result = host.runner.run(
            _without_check(link.address_delete(name, validate.ip_interface(address)))
        )
        if result.ok:
            report.steps.append(
                _("removed %(address)s from %(name)s")
                % {"address": address, "name": name}
            )


def _without_check(command):  # noqa: ANN001, ANN202 - Command in, Command out
    return replace(command, check=False)


def _ensure_forwarding(host: Host, report: GatewayReport) -> None:
    key = "net.ipv4.ip_forward"
    result = host.runner.run(sysctl.read(key))
    if result.stdout.strip() and sysctl.parse_value(result.stdout) == 1:
        return
    host.runner.run(sysctl.write(key, 1))
    report.steps.append(f"{key}=1")


# -- NAT --------------------------------------------------------------------


def nat_table_present(host: Host) -> bool:
    result = host.runner.run(
        _without_check(nft.list_table(nat.TABLE, table_family=nat.FAMILY))
    )
    return result.ok and bool(result.stdout.strip())


def _apply_nat(
    host: Host, text: str | None, record: dict[str, Any], report: GatewayReport
) -> None:
    if text is None:
        if record.pop("nat", None) or nat_table_present(host):
            host.runner.run(
                nft.delete_table(nat.TABLE, table_family=nat.FAMILY, missing_ok=True)
            )
            report.steps.append(_("removed the NAT table"))
        if host.files.exists(NAT_FILE):
            host.files.remove(NAT_FILE)
        return
    if host.files.read_text(NAT_FILE) == text and nat_table_present(host):
        record["nat"] = True
        return
    host.files.write(NAT_CHECK_FILE, text)
    try:
        checked = host.runner.run(
            _without_check(nft.check_file(str(host.files.path(NAT_CHECK_FILE))))
        )
    finally:
        host.files.remove(NAT_CHECK_FILE)
    if not checked.ok:
        raise GatewayApplyError(
            _("nft refused the NAT rules: %(reason)s")
            % {"reason": (checked.stderr or checked.stdout).strip()[-300:]}
        )
    host.files.write(NAT_FILE, text)
    host.runner.run(nft.apply_file(str(host.files.path(NAT_FILE))))
    record["nat"] = True
    report.steps.append(_("loaded the NAT table"))


# -- Tor (the Tor helper's module) -------------------------------------------


def _apply_tor(
    host: Host, tor_plan: Any, record: dict[str, Any], report: GatewayReport
) -> None:
    if tor_plan is None:
        if record.pop("tor", None):
            _tor_module().remove_tor(host)
            report.steps.append(_("stopped Tor mode"))
        return
    _tor_module().apply_tor(host, tor_plan)
    if not record.get("tor"):
        report.steps.append(_("started Tor mode"))
    record["tor"] = True
