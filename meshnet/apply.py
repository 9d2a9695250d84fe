"""Bring a node to a :class:`~meshnet.state.MeshState`, idempotently.

:func:`apply_mesh` takes a :class:`~portal.host.node.Host` (runner + files),
so the job on a real node, the lab host mode and the lab tests' five nodes
are all configured by this one function. Order and why:

1. Render and check everything first (babeld.conf, dnsmasq.conf): a bad
   value raises before anything on the node changes.
2. batman-adv, when it is the protocol: the kernel module (a clear error
   when it is missing), ``bat0`` and the mesh interfaces under it; babeld
   then routes the node's prefixes over ``bat0``.
3. Links and addresses: mesh and client interfaces up, the mesh /32 on
   ``lo`` (the node's identity whatever links it has), the client ``.1``
   on the first client interface; addresses this function applied earlier
   and no longer wants are removed (it remembers them in
   ``/var/lib/byzantium/mesh-applied.json``, so it never removes an address
   somebody else put there).
4. Kernel switches: IPv4 forwarding, IPv6 on mesh links (babeld speaks over
   IPv6 link-local addresses and routes IPv4 through them).
5. Config files, written atomically; then each daemon is started,
   restarted (its file changed, or it is not the process we started) or
   stopped (no longer wanted). A daemon already running on the same files
   with the same configuration, such as the one the lab started on node
   n1, is left alone: that is the take-over.

Everything is read before it is written: applying the same state twice
runs only read commands the second time, rewrites no file and restarts
nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from django.utils.translation import gettext as _

from portal.host import validate
from portal.host.builders import babeld, batctl, dnsmasq, inspect, link, process, sysctl
from portal.host.errors import CommandFailed, HostError
from portal.host.node import Host
from portal.host.readers import InterfaceInfo, parse_ip_addr

from . import babel_config, dnsmasq_config, wireless
from .babel_config import BabelTuning
from .dnsmasq_config import DhcpTuning
from .state import MeshState

APPLIED_RECORD = "/var/lib/byzantium/mesh-applied.json"
DNSMASQ_CHECK = "/run/byzantium/dnsmasq-check.conf"
MESH_ADDRESS_INTERFACE = "lo"
# How long a daemon may take to write its pid file, or to exit on SIGTERM.
START_WAIT = 10.0
STOP_WAIT = 5.0


class MeshApplyError(HostError):
    """The mesh state could not be applied; the message says why, in words."""


@dataclass(frozen=True)
class Tuning:
    """Timers that differ between a real node and the lab (see each part)."""

    babel: BabelTuning = field(default_factory=BabelTuning)
    dhcp: DhcpTuning = field(default_factory=DhcpTuning)


LAB_TUNING = Tuning(BabelTuning(hello_interval=0.5), DhcpTuning(no_ping=True))


def tuning_for(host: Host) -> Tuning:
    """The lab's fast timers for a lab node, the daemons' defaults elsewhere."""
    return LAB_TUNING if host.mode == "lab" else Tuning()


@dataclass
class ApplyReport:
    """What :func:`apply_mesh` did, step by step, in plain words."""

    steps: list[str] = field(default_factory=list)
    babeld: str = "unchanged"
    dnsmasq: str = "unchanged"

    @property
    def changed(self) -> bool:
        return bool(self.steps)

    def to_dict(self) -> dict[str, object]:
        return {"steps": self.steps, "babeld": self.babeld, "dnsmasq": self.dnsmasq}


@dataclass(frozen=True)
class _Daemon:
    """A daemon the mesh runs: its files and how to check and start it."""

    program: str
    config: str
    pid_file: str

    def start(self, host: Host):  # noqa: ANN202 - a Command
        path = host.files.path(self.config)
        return babeld.start(path) if self.program == "babeld" else dnsmasq.start(path)


BABELD = _Daemon("babeld", babel_config.CONFIG, babel_config.PID_FILE)
DNSMASQ = _Daemon("dnsmasq", dnsmasq_config.CONFIG, dnsmasq_config.PID_FILE)


def apply_mesh(
    host: Host,
    state: MeshState,
    *,
    tuning: Tuning | None = None,
    upstream_servers: Sequence[str] = (),
) -> ApplyReport:
    """Make the node's mesh side match ``state``; returns what changed.

    Raises :class:`~portal.host.errors.InvalidValue` for a bad value (before
    any change), :class:`MeshApplyError` when a step fails on the node (a
    daemon refuses its configuration, batman-adv is missing ...).
    """
    tuning = tuning or tuning_for(host)
    report = ApplyReport()
    want_babeld = babel_config.babeld_wanted(state)
    want_dnsmasq = dnsmasq_config.dnsmasq_wanted(state)
    babel_text = (
        babel_config.render(state, host.files, tuning.babel) if want_babeld else None
    )
    dnsmasq_text = (
        dnsmasq_config.render(
            state, host.files, tuning.dhcp, upstream_servers=upstream_servers
        )
        if want_dnsmasq
        else None
    )
    mesh_address = (
        f"{validate.ipv4_address(state.mesh_address)}/32"
        if state.mesh_address
        else None
    )
    client_gateway = (
        str(dnsmasq_config.gateway_address(state)) if state.client_subnet else None
    )
    client_port = (
        validate.interface_name(state.client_interfaces[0].name)
        if state.client_interfaces
        else None
    )

    try:
        # The link layer first (radio mode, cell, access point); batman-adv
        # is set up below, so the wireless part leaves it alone.
        links = wireless.apply_interfaces(host, state, with_batman=False)
        for name in links.released:
            report.steps.append(_("released %(name)s") % {"name": name})
        for name in links.configured:
            report.steps.append(_("configured the link of %(name)s") % {"name": name})
        if state.protocol == "batman-adv" and state.mesh_interfaces:
            _apply_batman(host, state, report)
        interfaces = _read_interfaces(host)
        wanted: dict[str, str] = {}
        if mesh_address:
            wanted[mesh_address] = MESH_ADDRESS_INTERFACE
        if client_gateway and client_port:
            wanted[client_gateway] = client_port
        _apply_links(host, state, interfaces, report)
        _apply_addresses(host, wanted, interfaces, report)
        _apply_sysctls(host, state, report)
        if want_dnsmasq:
            _ensure_hosts_files(host, state)
        report.dnsmasq = _apply_daemon(host, DNSMASQ, dnsmasq_text, report)
        report.babeld = _apply_daemon(host, BABELD, babel_text, report)
    except CommandFailed as error:
        raise MeshApplyError(
            _("Applying the mesh settings failed: %(reason)s") % {"reason": error}
        ) from error
    return report


def _ensure_hosts_files(host: Host, state: MeshState) -> None:
    """The directory (and the captive app) write the real lists; until then
    dnsmasq gets empty ones rather than an error line in its log."""
    if not host.files.exists(dnsmasq_config.MESH_HOSTS):
        host.files.write(dnsmasq_config.MESH_HOSTS, "# no mesh names yet\n")
    probe_hosts = dnsmasq_config.CAPTIVE_PROBE_HOSTS
    if state.captive_portal_api and not host.files.exists(probe_hosts):
        host.files.write(probe_hosts, "# no probe hosts yet\n", mode=0o644)


def refresh_dnsmasq(
    host: Host,
    state: MeshState,
    *,
    tuning: Tuning | None = None,
    upstream_servers: Sequence[str] = (),
) -> str:
    """Re-render dnsmasq alone (checked, restarted only on a change).

    For other apps whose data dnsmasq carries: the captive app calls it when
    its portal goes on or off, so DHCP option 114 and the probe hosts file
    appear or disappear, without touching links, addresses or babeld.
    Nothing happens when ``state`` wants no dnsmasq (that is
    :func:`apply_mesh`'s business). Returns what happened to dnsmasq.
    """
    if not dnsmasq_config.dnsmasq_wanted(state):
        return "not wanted"
    tuning = tuning or tuning_for(host)
    text = dnsmasq_config.render(
        state, host.files, tuning.dhcp, upstream_servers=upstream_servers
    )
    report = ApplyReport()
    try:
        _ensure_hosts_files(host, state)
        return _apply_daemon(host, DNSMASQ, text, report)
    except CommandFailed as error:
        raise MeshApplyError(
            _("Applying the DHCP and DNS settings failed: %(reason)s")
            % {"reason": error}
        ) from error


# -- batman-adv -----------------------------------------------------------


def _apply_batman(host: Host, state: MeshState, report: ApplyReport) -> None:
    try:
        batctl.ensure_module(host.runner)
    except batctl.BatmanModuleMissing as error:
        raise MeshApplyError(str(error)) from error
    names = {info.name for info in _read_interfaces(host)}
    if batctl.MESH_INTERFACE not in names:
        host.runner.run(batctl.create_mesh_interface())
        report.steps.append(f"created {batctl.MESH_INTERFACE}")
    listed = batctl.parse_interface_list(
        host.runner.run(batctl.interface_list()).stdout
    )
    for interface in state.mesh_interfaces:
        if interface.name not in listed:
            host.runner.run(batctl.interface_add(interface.name))
            report.steps.append(f"{interface.name} joined {batctl.MESH_INTERFACE}")


# -- links, addresses, kernel switches ------------------------------------


def _read_interfaces(host: Host) -> list[InterfaceInfo]:
    result = host.runner.run(inspect.addr_show())
    if not result.stdout.strip() and host.mode == "dry-run":
        return []
    return parse_ip_addr(result.stdout)


def _apply_links(
    host: Host,
    state: MeshState,
    interfaces: list[InterfaceInfo],
    report: ApplyReport,
) -> None:
    by_name = {info.name: info for info in interfaces}
    names = [i.name for i in state.mesh_interfaces + state.client_interfaces]
    if state.protocol == "batman-adv" and state.mesh_interfaces:
        names.append(batctl.MESH_INTERFACE)
    for name in names:
        info = by_name.get(name)
        if info is not None and "UP" in info.flags:
            continue
        host.runner.run(link.set_up(name))
        report.steps.append(f"{name} up")


def _apply_addresses(
    host: Host,
    wanted: dict[str, str],
    interfaces: list[InterfaceInfo],
    report: ApplyReport,
) -> None:
    present = {
        (address.with_prefix, info.name)
        for info in interfaces
        for address in info.addresses
        if address.family == "inet"
    }
    record = _read_record(host)
    for address, name in sorted(record.items()):
        if wanted.get(address) != name and (address, name) in present:
            host.runner.run(link.address_delete(name, address))
            report.steps.append(f"removed {address} from {name}")
    for address, name in sorted(wanted.items()):
        if (address, name) not in present:
            host.runner.run(link.address_replace(name, address))
            report.steps.append(f"{address} on {name}")
    if record != wanted:
        host.files.write(
            APPLIED_RECORD, json.dumps({"addresses": wanted}, sort_keys=True) + "\n"
        )


def _read_record(host: Host) -> dict[str, str]:
    text = host.files.read_text(APPLIED_RECORD)
    try:
        data = json.loads(text) if text else {}
        addresses = data.get("addresses", {})
    except (ValueError, AttributeError):
        return {}
    if not isinstance(addresses, dict):
        return {}
    return {str(k): str(v) for k, v in addresses.items()}


def _ensure_sysctl(host: Host, key: str, value: int, report: ApplyReport) -> None:
    result = host.runner.run(sysctl.read(key))
    if result.stdout.strip() and sysctl.parse_value(result.stdout) == value:
        return
    host.runner.run(sysctl.write(key, value))
    report.steps.append(f"{key}={value}")


def _apply_sysctls(host: Host, state: MeshState, report: ApplyReport) -> None:
    _ensure_sysctl(host, "net.ipv4.ip_forward", 1, report)
    names = [i.name for i in state.mesh_interfaces]
    if state.protocol == "batman-adv" and names:
        names = [batctl.MESH_INTERFACE]
    for name in names:
        key = sysctl.interface_key("ipv6", name, "disable_ipv6")
        _ensure_sysctl(host, key, 0, report)


# -- daemons ----------------------------------------------------------------


def running_pid(host: Host, daemon: _Daemon) -> int | None:
    """The pid of ``daemon`` when it runs on this node's files, else None.

    A pid file alone proves nothing (dnsmasq leaves it behind, pids are
    recycled): the process must be alive and its command line must name
    this node's config file.
    """
    text = (host.files.read_text(daemon.pid_file) or "").strip()
    if not text.isdigit():
        return None
    pid = int(text)
    config = str(host.files.path(daemon.config))
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if not any(config in arg for arg in proc.cmdline()):
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return pid


def _apply_daemon(
    host: Host, daemon: _Daemon, text: str | None, report: ApplyReport
) -> str:
    """Stop, (re)write and (re)start ``daemon`` as ``text`` asks.

    Under the daemon's lock file: the privileged worker (a gateway or mesh
    apply) and the captive lane (the portal following the uplink) may both
    restart dnsmasq at the same moment, and then the second start finds the
    first one's sockets taken ("Address already in use").
    """
    with host.files.lock(f"/run/byzantium/{daemon.program}.lock"):
        return _apply_daemon_locked(host, daemon, text, report)


def _apply_daemon_locked(
    host: Host, daemon: _Daemon, text: str | None, report: ApplyReport
) -> str:
    pid = running_pid(host, daemon)
    if text is None:
        if pid is None:
            return "not running"
        stop_daemon(host, daemon, pid)
        report.steps.append(f"stopped {daemon.program}")
        return "stopped"
    previous = host.files.read_text(daemon.config)
    if previous == text and pid is not None:
        return "unchanged"
    if previous != text:
        if daemon is DNSMASQ:
            _check_dnsmasq(host, text)
        host.files.write(daemon.config, text)
        report.steps.append(f"wrote {daemon.config}")
    if pid is not None:
        stop_daemon(host, daemon, pid)
    try:
        start_daemon(host, daemon)
    except MeshApplyError:
        if previous is None or previous == text:
            raise
        # Put the last working configuration back so the node stays in the
        # mesh, then report the failure.
        host.files.write(daemon.config, previous)
        start_daemon(host, daemon)
        raise
    outcome = "restarted" if pid is not None else "started"
    report.steps.append(f"{outcome} {daemon.program}")
    return outcome


def _check_dnsmasq(host: Host, text: str) -> None:
    host.files.write(DNSMASQ_CHECK, text)
    try:
        result = host.runner.run(
            dnsmasq.test_config(host.files.path(DNSMASQ_CHECK), check=False)
        )
    finally:
        host.files.remove(DNSMASQ_CHECK)
    if not result.ok:
        raise MeshApplyError(
            _("dnsmasq refused the configuration: %(reason)s")
            % {"reason": (result.stderr or result.stdout).strip()[-300:]}
        )


def start_daemon(host: Host, daemon: _Daemon) -> int | None:
    """Start ``daemon`` on its config file and wait for its pid file.

    A stale pid file is removed first (babeld refuses to start over one).
    Returns the new pid (None in dry-run mode, where nothing runs).
    """
    if host.files.exists(daemon.pid_file):
        host.files.remove(daemon.pid_file)
    for folder in ("/run/byzantium", "/var/lib/byzantium", "/var/log/byzantium"):
        host.files.path(folder).mkdir(parents=True, exist_ok=True)
    try:
        host.runner.run(daemon.start(host))
    except CommandFailed as error:
        raise MeshApplyError(
            _("%(program)s did not start: %(reason)s")
            % {"program": daemon.program, "reason": error}
        ) from error
    if host.mode == "dry-run":
        return None
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        pid = running_pid(host, daemon)
        if pid is not None:
            return pid
        time.sleep(0.05)
    raise MeshApplyError(
        _("%(program)s did not start: %(reason)s")
        % {"program": daemon.program, "reason": _log_tail(host, daemon)}
    )


def stop_daemon(host: Host, daemon: _Daemon, pid: int) -> None:
    """SIGTERM, wait, SIGKILL if needed; then the pid file goes."""
    host.runner.run(process.send_signal(pid, "TERM"))
    if host.mode != "dry-run":
        deadline = time.monotonic() + STOP_WAIT
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            host.runner.run(process.send_signal(pid, "KILL"))
    if host.files.exists(daemon.pid_file):
        host.files.remove(daemon.pid_file)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _log_tail(host: Host, daemon: _Daemon) -> str:
    node_path = babel_config.LOG_FILE if daemon is BABELD else dnsmasq_config.LOG_FILE
    try:
        lines = Path(host.files.path(node_path)).read_text(errors="replace")
    except OSError:
        lines = ""
    tail = lines.strip().splitlines()[-3:]
    return " / ".join(tail) or _("no pid file and nothing in its log")


def reload_mesh_hosts(host: Host) -> bool:
    """Make dnsmasq re-read ``/etc/byzantium/mesh-hosts`` (SIGHUP).

    The directory calls this after writing the file. Returns False when
    dnsmasq does not run (it reads the file when it starts).
    """
    pid = running_pid(host, DNSMASQ)
    if pid is None:
        return False
    host.runner.run(process.send_signal(pid, "HUP"))
    return True


def stop_mesh(host: Host) -> ApplyReport:
    """Stop babeld and dnsmasq of this node (addresses stay)."""
    report = ApplyReport()
    for daemon in (BABELD, DNSMASQ):
        pid = running_pid(host, daemon)
        outcome = "not running"
        if pid is not None:
            with host.files.lock(f"/run/byzantium/{daemon.program}.lock"):
                stop_daemon(host, daemon, pid)
            outcome = "stopped"
            report.steps.append(f"stopped {daemon.program}")
        setattr(report, daemon.program, outcome)
    return report
