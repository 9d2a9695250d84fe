"""Build, inspect and tear down a lab: a mesh of nodes in network namespaces.

A :class:`Lab` is named by a short prefix. Everything it creates carries that
prefix or lives inside something that does:

- namespaces ``<prefix>-n1 .. -nN`` (nodes) and ``<prefix>-c1 .. -cC``
  (clients); every interface is born inside them (veth ends are created
  directly in their namespaces), so nothing ever appears in the machine's
  own namespace and deleting the namespaces deletes every link;
- one folder, ``base_dir``, with a sub-folder per member; a node's folder
  holds ``root/``, the node's file root (its ``/``): babeld's and dnsmasq's
  configurations, pid files, socket, logs and leases sit there at the node
  paths a real node uses (``root/etc/byzantium/babeld.conf``,
  ``root/run/byzantium/babeld.pid`` ...), so in lab host mode the portal
  manages node n1 exactly as it manages ``/`` on a real node; a client's
  folder holds its dhclient files;
- ``/etc/netns/<prefix>-cK/resolv.conf``, the client's own resolver file
  (see :mod:`portal.lab.dhcp_hook`);
- optionally ``<prefix>-inet``, the lab's "Internet" behind gateway nodes'
  uplinks (:mod:`portal.lab.internet`, folder ``inet/``): built after
  ``up`` by whoever wants it (``lab up --internet``, the gateway's tests),
  shown by :meth:`Lab.status` and removed by :meth:`Lab.down` like the rest.

Tear-down never trusts memory: it finds namespaces by name, processes by
``ip netns pids`` and by the pid files in ``base_dir`` (a pid is signalled
only if its command line names ``base_dir``, so a recycled pid is safe), and
it never touches a namespace or process without this prefix. ``up`` begins
with the same tear-down, so a lab left behind by a killed run is removed by
the next one.

Nodes are configured by the portal's own code: :meth:`Lab.up` builds the
"hardware" (namespaces, veth links, each node's client bridge) and then
calls :func:`meshnet.apply.apply_mesh` for every node with that node's
:class:`~meshnet.state.MeshState` (:meth:`Lab.node_state`), so the lab runs
exactly the babeld and dnsmasq configurations the portal renders. A spec
with ``bare=True`` stops after the hardware: tests then configure the nodes
themselves through the same function and start the clients with
:meth:`Lab.start_clients`.

Every system change goes through the host layer's builders and runners. The
one exception is :meth:`Lab.exec`, the developer's own command run inside a
lab namespace, which is by nature not an allow-listed program.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from meshnet import babel_config, dnsmasq_config
from meshnet.apply import LAB_TUNING, apply_mesh
from meshnet.state import InterfaceState, MeshState
from portal.host import validate
from portal.host.allowlist import SYSTEM_PATH, resolve_executable
from portal.host.builders import dhclient, link, netns, process
from portal.host.commands import Command, CommandResult
from portal.host.errors import CommandFailed, HostError, InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import NamespaceRunner, Runner, SystemRunner

from . import documents, internet
from . import spec as plan
from .dhcp_hook import render_launcher
from .spec import LabSpec

# babeld's hello interval on lab links: links are perfect and the lab should
# converge in seconds, not the half-minute the 4-second default would take.
LAB_HELLO_INTERVAL = LAB_TUNING.babel.hello_interval
MARKER = "lab.json"
# Where the nodes' daemons keep pid files and logs (node paths under root/).
_NODE_PIDS = "n*/root/run/byzantium/*.pid"
_NODE_LOGS = "n*/root/var/log/byzantium/*.log"
NETNS_ETC = Path("/etc/netns")
# How long a signalled process may take to exit before it gets SIGKILL.
TERM_GRACE = 3.0


class LabError(HostError):
    """The lab could not be built, inspected or removed; says why."""


@dataclass
class DaemonStatus:
    """One daemon of a lab member, found through its pid file."""

    program: str
    pid: int | None
    alive: bool
    pid_file: str


@dataclass
class InterfaceStatus:
    """An interface inside a lab namespace, with its addresses."""

    name: str
    state: str
    addresses: list[str] = field(default_factory=list)
    master: str | None = None


@dataclass
class MemberStatus:
    """A node or client namespace as it is right now."""

    name: str
    role: str
    namespace: str
    folder: str
    interfaces: list[InterfaceStatus] = field(default_factory=list)
    daemons: list[DaemonStatus] = field(default_factory=list)
    node: str | None = None
    address: str | None = None


@dataclass
class LabStatus:
    """What exists of a lab, read from the system (JSON-able via to_dict)."""

    prefix: str
    base_dir: str
    spec: dict[str, Any] | None
    members: list[MemberStatus]
    links: list[tuple[str, str]]

    @property
    def namespaces(self) -> list[str]:
        return [member.namespace for member in self.members]

    @property
    def nodes(self) -> list[MemberStatus]:
        return [member for member in self.members if member.role == "node"]

    @property
    def clients(self) -> list[MemberStatus]:
        return [member for member in self.members if member.role == "client"]

    @property
    def internet(self) -> MemberStatus | None:
        """The lab's Internet namespace, when one was added."""
        found = [member for member in self.members if member.role == "internet"]
        return found[0] if found else None

    def member(self, name: str) -> MemberStatus:
        for member in self.members:
            if member.name == name:
                return member
        raise LabError(f"{name} is not part of lab {self.prefix}")

    @property
    def daemons(self) -> list[tuple[str, DaemonStatus]]:
        return [(m.name, daemon) for m in self.members for daemon in m.daemons]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view: nodes and clients (and the Internet, or None), each
        with interfaces and daemons."""
        return {
            "prefix": self.prefix,
            "base_dir": self.base_dir,
            "spec": self.spec,
            "namespaces": self.namespaces,
            "links": [list(pair) for pair in self.links],
            "nodes": [asdict(member) for member in self.nodes],
            "clients": [asdict(member) for member in self.clients],
            "internet": asdict(self.internet) if self.internet else None,
        }


@dataclass
class Lab:
    """A lab named ``prefix`` whose files live in ``base_dir``.

    ``owner_pid`` is recorded in the lab's marker file; the test plugin uses
    it to tell a lab of a killed test run (owner gone) from one a parallel
    run is still using.
    """

    prefix: str
    base_dir: Path
    owner_pid: int | None = None
    runner: Runner = field(default_factory=SystemRunner)
    daemons_started_at: float | None = field(default=None, init=False)
    # Seconds from babeld's start to full convergence, once measured.
    converged_after: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]{1,4}", self.prefix or ""):
            raise InvalidValue(
                f"{self.prefix!r} is not a lab prefix "
                "(2-5 lower-case letters or digits, a letter first)"
            )
        self.base_dir = Path(self.base_dir).absolute()
        validate.absolute_path(str(self.base_dir))
        self._member_re = re.compile(rf"^{re.escape(self.prefix)}-([nc][0-9]+)\Z")

    # -- names --------------------------------------------------------------

    def namespace(self, member: str) -> str:
        return plan.namespace_of(self.prefix, member)

    def folder(self, member: str) -> Path:
        return self.base_dir / member

    def node_files(self, node: str) -> FileStore:
        """The node's file root (its ``/``), as the portal sees it."""
        return FileStore(self.folder(node) / "root")

    def node_path(self, node: str, node_path: str) -> Path:
        """Real path of a node path, e.g. ``/run/byzantium/babeld.sock``."""
        return self.node_files(node).path(node_path)

    def node_host(self, node: str) -> Host:
        """The :class:`Host` of a node: what ``current_host()`` is for n1."""
        return Host(mode="lab", runner=self._in(node), files=self.node_files(node))

    def node_state(self, node: str, spec: LabSpec | None = None) -> MeshState:
        """The mesh state of a lab node: the lab address plan as the portal's data.

        Mesh links are the veths to its neighbours (wired), clients are
        served on the bridge ``br-lan``.
        """
        spec = spec or self.spec()
        neighbours = [b if a == node else a for a, b in spec.edges() if node in (a, b)]
        interfaces = tuple(
            InterfaceState(name=plan.link_interface(peer), role="mesh", medium="wired")
            for peer in neighbours
        ) + (InterfaceState(name=plan.CLIENT_BRIDGE, role="clients", medium="wired"),)
        return MeshState(
            node_name=node,
            mesh_address=str(plan.mesh_address(node)),
            client_subnet=str(plan.client_subnet(node)),
            interfaces=interfaces,
        )

    def resolve(self, text: str) -> str:
        """Short member name for ``n1``/``node-1``/``<prefix>-n1`` (or ``inet``,
        the lab's Internet); must exist."""
        candidate = text.strip()
        if candidate.startswith(f"{self.prefix}-"):
            candidate = candidate[len(self.prefix) + 1 :]
        if candidate == internet.NAMESPACE_SUFFIX:
            if not self.has_internet():
                raise LabError(f"lab {self.prefix} has no Internet namespace")
            return candidate
        member = plan.parse_member(candidate)
        if self.namespace(member) not in self.existing_namespaces():
            raise LabError(f"{text} is not a member of the running lab {self.prefix}")
        return member

    # -- building -----------------------------------------------------------

    def up(self, spec: LabSpec) -> LabStatus:
        """Remove any lab of this prefix, then build ``spec`` from scratch.

        Returns once every daemon runs and every client holds a lease; call
        :meth:`wait_converged` for the routes. A failure tears down what was
        built and raises :class:`LabError` with the daemons' last log lines.
        """
        self.down()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._write_marker(spec)
        try:
            self._build(spec)
        except (HostError, OSError) as error:
            details = self._log_tails()
            self.down()
            raise LabError(
                f"lab {self.prefix} could not be built: {error}{details}"
            ) from error
        except BaseException:
            self.down()
            raise
        return self.status()

    def _write_marker(self, spec: LabSpec) -> None:
        marker = {
            "prefix": self.prefix,
            "spec": spec.to_dict(),
            "owner_pid": self.owner_pid,
            "created": time.time(),
        }
        (self.base_dir / MARKER).write_text(json.dumps(marker, indent=2) + "\n")

    def _in(self, member: str) -> NamespaceRunner:
        return NamespaceRunner(self.namespace(member))

    def _build(self, spec: LabSpec) -> None:
        system = self.runner
        for member in spec.node_names + spec.client_names:
            self.folder(member).mkdir(parents=True, exist_ok=True)
            system.run(netns.add(self.namespace(member)))
            self._in(member).run(link.set_up("lo"))
        for node in spec.node_names:
            (self.folder(node) / "root").mkdir(exist_ok=True)
            inside = self._in(node)
            # Lab links get fresh random MACs, so their link-local addresses
            # cannot collide: skip duplicate address detection, which would
            # keep babeld silent for the first second or two of every link.
            inside.run(netns.sysctl_set("net.ipv6.conf.default.accept_dad", 0))
            inside.run(link.bridge_add(plan.CLIENT_BRIDGE))
            inside.run(link.set_up(plan.CLIENT_BRIDGE))
        for a, b in spec.edges():
            system.run(
                link.veth_between_namespaces(
                    plan.link_interface(b),
                    self.namespace(a),
                    plan.link_interface(a),
                    self.namespace(b),
                )
            )
            self._in(a).run(link.set_up(plan.link_interface(b)))
            self._in(b).run(link.set_up(plan.link_interface(a)))
        for client in spec.client_names:
            node = spec.node_of_client(client)
            port = plan.client_port(client)
            system.run(
                link.veth_between_namespaces(
                    port,
                    self.namespace(node),
                    plan.CLIENT_INTERFACE,
                    self.namespace(client),
                )
            )
            self._in(node).run(link.set_master(port, plan.CLIENT_BRIDGE))
            self._in(node).run(link.set_up(port))
            # Up now, not in dhclient's PREINIT: a DISCOVER sent the instant
            # the link comes up is lost, and dhclient retries only after 3 s.
            self._in(client).run(link.set_up(plan.CLIENT_INTERFACE))
        if spec.bare:
            return
        self.daemons_started_at = time.monotonic()
        for node in spec.node_names:
            self.configure_node(node, spec)
        self.start_clients(spec)

    def configure_node(self, node: str, spec: LabSpec | None = None) -> None:
        """Apply the node's mesh state with the portal's own apply function."""
        apply_mesh(self.node_host(node), self.node_state(node, spec), tuning=LAB_TUNING)

    def start_clients(self, spec: LabSpec | None = None) -> None:
        """Start dhclient in every client; returns once each holds a lease."""
        spec = spec or self.spec()
        for client in spec.client_names:
            self._start_dhclient(client)

    def _start_dhclient(self, client: str) -> None:
        namespace = self.namespace(client)
        etc = NETNS_ETC / namespace
        etc.mkdir(parents=True, exist_ok=True)
        resolv_conf = etc / "resolv.conf"
        resolv_conf.write_text("# lab client: waiting for a DHCP lease\n")
        config = dhclient.DhclientConfig(
            host_name=client,
            folder=self.folder(client),
            interface=plan.CLIENT_INTERFACE,
        )
        store = FileStore(config.folder)
        store.write("/dhclient.conf", dhclient.render_config(config))
        store.write("/dhclient-hook", render_launcher(resolv_conf), mode=0o755)
        self._wait_for_client_port(client)
        self._in(client).run(dhclient.start(config))
        self._wait_for_pid(config.pid_file, "dhclient")

    def _wait_for_client_port(self, client: str, timeout: float = 10) -> None:
        """Wait until the client's cable "has link" and its bridge port forwards.

        A DISCOVER sent before that is dropped and dhclient only retries after
        three seconds, which would triple the time a lab takes to come up.
        """
        node = self._client_node(client)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self._link_details(node, plan.client_port(client))
            own = self._link_details(client, plan.CLIENT_INTERFACE)
            port_state = (
                port.get("linkinfo", {}).get("info_slave_data", {}).get("state")
            )
            if port_state == "forwarding" and own.get("operstate") == "UP":
                return
            time.sleep(0.02)
        raise LabError(f"the link of client {client} did not come up")

    def _client_node(self, client: str) -> str:
        return self.spec().node_of_client(client)

    def _link_details(self, member: str, name: str) -> dict[str, Any]:
        result = self._in(member).run(link.show_link_details(name))
        entries = json.loads(result.stdout or "[]")
        return entries[0] if entries else {}

    def _wait_for_pid(self, pid_file: Path, program: str, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = read_pid_file(pid_file)
            if pid is not None and pid_alive(pid):
                return pid
            time.sleep(0.05)
        pid = read_pid_file(pid_file)
        if pid is None:
            raise LabError(f"{program} did not start: no pid in {pid_file}")
        raise LabError(f"{program} did not stay up: process {pid} has exited")

    # -- convergence --------------------------------------------------------

    def routes(self, node: str) -> set[ipaddress.IPv4Network]:
        """The IPv4 destinations in a node's kernel routing table."""
        result = self._in(node).run(link.show_ipv4_routes())
        routes = set()
        for entry in json.loads(result.stdout or "[]"):
            dst = entry.get("dst")
            if dst and dst != "default":
                routes.add(ipaddress.IPv4Network(dst, strict=False))
        return routes

    def missing_routes(self, spec: LabSpec) -> dict[str, list[str]]:
        """Per node, the other nodes' prefixes its kernel has no route to."""
        missing: dict[str, list[str]] = {}
        for node in spec.node_names:
            have = self.routes(node)
            want = set()
            for other in spec.node_names:
                if other != node:
                    want.add(ipaddress.IPv4Network(f"{plan.mesh_address(other)}/32"))
                    want.add(plan.client_subnet(other))
            lacking = sorted(str(prefix) for prefix in want - have)
            if lacking:
                missing[node] = lacking
        return missing

    def wait_converged(
        self, timeout: float = 60.0, spec: LabSpec | None = None
    ) -> float:
        """Wait until every node routes to every other node's prefixes.

        Checks each namespace's kernel table (what packets really use), not
        only babeld's view. Returns the seconds since the daemons started
        (or since the call, for a lab built by another process).
        """
        spec = spec or self.spec()
        started = self.daemons_started_at or time.monotonic()
        deadline = time.monotonic() + timeout
        while True:
            missing = self.missing_routes(spec)
            if not missing:
                self.converged_after = time.monotonic() - started
                return self.converged_after
            if time.monotonic() >= deadline:
                summary = "; ".join(f"{n}: {', '.join(p)}" for n, p in missing.items())
                raise LabError(
                    f"lab {self.prefix} did not converge within {timeout:g} s; "
                    f"missing routes: {summary}"
                )
            time.sleep(0.1)

    def spec(self) -> LabSpec:
        """The spec the running lab was built from (its marker file)."""
        marker = self._read_marker()
        if marker is None:
            raise LabError(f"lab {self.prefix} is not running")
        return LabSpec(**marker["spec"])

    def _read_marker(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.base_dir / MARKER).read_text())
        except (FileNotFoundError, ValueError):
            return None

    # -- running commands ---------------------------------------------------

    def exec(
        self,
        member: str,
        argv: list[str] | tuple[str, ...],
        *,
        capture: bool = False,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the developer's ``argv`` inside a lab namespace (no shell).

        The program is looked up in the system folders by ``ip netns exec``;
        stdin, stdout and stderr are the caller's unless ``capture``. Only
        members of this running lab are accepted.
        """
        if not argv:
            raise LabError("nothing to run: give a command after --")
        name = self.resolve(member)
        env = dict(os.environ)
        env["PATH"] = SYSTEM_PATH
        return subprocess.run(  # noqa: S603 - argv, no shell; the developer's own command
            [resolve_executable("ip"), "netns", "exec", self.namespace(name), *argv],
            capture_output=capture,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )

    # -- inspecting ---------------------------------------------------------

    def existing_namespaces(self) -> list[str]:
        """Node and client namespaces of this lab that exist now, whatever
        built them (the Internet's is :meth:`internet_namespace`)."""
        return [
            name for name in list_namespaces(self.runner) if self._member_re.match(name)
        ]

    @property
    def internet_namespace(self) -> str:
        return internet.namespace_of(self.prefix)

    def has_internet(self) -> bool:
        return self.internet_namespace in list_namespaces(self.runner)

    def status(self) -> LabStatus:
        """Read the lab from the system: namespaces, links, addresses, daemons."""
        marker = self._read_marker()
        members = []
        for namespace in sorted(self.existing_namespaces(), key=_member_sort_key):
            name = namespace[len(self.prefix) + 1 :]
            member = MemberStatus(
                name=name,
                role="node" if name.startswith("n") else "client",
                namespace=namespace,
                folder=str(self.folder(name)),
            )
            member.interfaces = self._interfaces(name)
            if member.role == "node":
                member.daemons = [
                    _daemon("babeld", self.node_path(name, babel_config.PID_FILE)),
                    _daemon("dnsmasq", self.node_path(name, dnsmasq_config.PID_FILE)),
                ]
                document_pid = self.folder(name) / documents.PID_FILE
                if document_pid.exists():
                    member.daemons.append(_daemon("document", document_pid))
            else:
                member.daemons = [
                    _daemon("dhclient", self.folder(name) / "dhclient.pid")
                ]
                for interface in member.interfaces:
                    if interface.name == plan.CLIENT_INTERFACE:
                        ipv4 = [a for a in interface.addresses if ":" not in a]
                        member.address = ipv4[0] if ipv4 else None
            members.append(member)
        if self.has_internet():
            members.append(self._internet_status())
        links: set[tuple[str, str]] = set()
        for member in members:
            for interface in member.interfaces:
                if member.role == "node" and interface.name.startswith("to-"):
                    peer = interface.name[3:]
                    links.add(tuple(sorted((member.name, peer), key=_member_sort_key)))  # type: ignore[arg-type]
                if member.role == "node" and interface.name == internet.UPLINK:
                    links.add((member.name, internet.NAMESPACE_SUFFIX))
                if member.role == "node" and interface.name.startswith("cl-"):
                    client = interface.name[3:]
                    links.add((member.name, client))
                    for other in members:
                        if other.name == client:
                            other.node = member.name
        return LabStatus(
            prefix=self.prefix,
            base_dir=str(self.base_dir),
            spec=marker["spec"] if marker else None,
            members=members,
            links=sorted(links, key=lambda pair: tuple(map(_member_sort_key, pair))),
        )

    def _internet_status(self) -> MemberStatus:
        folder = self.folder(internet.NAMESPACE_SUFFIX)
        member = MemberStatus(
            name=internet.NAMESPACE_SUFFIX,
            role="internet",
            namespace=self.internet_namespace,
            folder=str(folder),
        )
        runner = NamespaceRunner(self.internet_namespace)
        member.interfaces = self._interfaces_of(runner)
        member.daemons = [
            _daemon("web", folder / internet.WEB_PID_FILE),
            _daemon("dnsmasq", folder / internet.DNS_PID_FILE),
            *(
                _daemon("dhcp", pid_file)
                for pid_file in sorted(folder.glob("dhcp-*.pid"))
            ),
        ]
        return member

    def _interfaces(self, member: str) -> list[InterfaceStatus]:
        return self._interfaces_of(self._in(member))

    def _interfaces_of(self, runner: Runner) -> list[InterfaceStatus]:
        try:
            result = runner.run(link.show_addresses())
        except HostError:
            return []
        interfaces = []
        for entry in json.loads(result.stdout or "[]"):
            interfaces.append(
                InterfaceStatus(
                    name=entry.get("ifname", "?"),
                    state=entry.get("operstate", "UNKNOWN"),
                    addresses=[
                        f"{info['local']}/{info['prefixlen']}"
                        for info in entry.get("addr_info", [])
                        if "local" in info
                    ],
                    master=entry.get("master"),
                )
            )
        return interfaces

    def _log_tails(self, lines: int = 5) -> str:
        tails = []
        if not self.base_dir.is_dir():
            return ""
        logs = [*self.base_dir.glob("*/*.log"), *self.base_dir.glob(_NODE_LOGS)]
        for log_file in sorted(logs):
            with contextlib.suppress(OSError):
                text = log_file.read_text(errors="replace").strip().splitlines()
                if text:
                    tails.append(f"\n{log_file}:\n  " + "\n  ".join(text[-lines:]))
        return "".join(tails)

    # -- tearing down -------------------------------------------------------

    def down(self) -> None:
        """Remove everything of this lab; safe to call when nothing is there.

        Order: processes first (so namespaces really disappear), then the
        namespaces, the clients' /etc/netns folders and the lab folder.
        """
        namespaces = self.existing_namespaces()
        if self.has_internet():
            namespaces.append(self.internet_namespace)
        pids: set[int] = set()
        for namespace in namespaces:
            result = self.runner.run(netns.pids(namespace))
            pids.update(int(word) for word in result.stdout.split() if word.isdigit())
        pids.update(self._pid_file_processes())
        self._terminate(pids)
        for namespace in namespaces:
            self.runner.run(netns.delete(namespace))
        for folder in NETNS_ETC.glob(f"{self.prefix}-*"):
            if self._member_re.match(folder.name) and folder.is_dir():
                shutil.rmtree(folder)
        self._remove_folder()
        self.daemons_started_at = None

    def _pid_file_processes(self) -> set[int]:
        """Live processes named by pid files of this lab and started for it."""
        found = set()
        if not self.base_dir.is_dir():
            return found
        pid_files = [*self.base_dir.glob("*/*.pid"), *self.base_dir.glob(_NODE_PIDS)]
        for pid_file in pid_files:
            pid = read_pid_file(pid_file)
            if pid is not None and pid_alive(pid) and _mentions(pid, self.base_dir):
                found.add(pid)
        return found

    def _terminate(self, pids: set[int]) -> None:
        pids = {pid for pid in pids if pid != os.getpid()}
        for pid in pids:
            self.runner.run(process.send_signal(pid, "TERM"))
        deadline = time.monotonic() + TERM_GRACE
        while time.monotonic() < deadline and any(pid_alive(pid) for pid in pids):
            time.sleep(0.05)
        for pid in pids:
            if pid_alive(pid):
                self.runner.run(process.send_signal(pid, "KILL"))

    def _remove_folder(self) -> None:
        if not self.base_dir.exists():
            return
        if not (self.base_dir / MARKER).exists() and any(self.base_dir.iterdir()):
            raise LabError(
                f"{self.base_dir} is not a lab folder (no {MARKER}); not removing it"
            )
        shutil.rmtree(self.base_dir)


def list_namespaces(runner: Runner | None = None) -> list[str]:
    """Names of every named network namespace on this machine."""
    result: CommandResult = (runner or SystemRunner()).run(netns.list_all())
    text = result.stdout.strip()
    if not text:
        return []
    return [entry["name"] for entry in json.loads(text) if "name" in entry]


def read_pid_file(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    return int(text) if text.isdigit() and 1 < int(text) < 2**22 else None


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _mentions(pid: int, folder: Path) -> bool:
    """True when the process's command line names ``folder`` (it is ours)."""
    try:
        return any(str(folder) in arg for arg in psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _daemon(program: str, pid_file: Path) -> DaemonStatus:
    pid = read_pid_file(pid_file)
    return DaemonStatus(
        program=program,
        pid=pid,
        alive=pid is not None and pid_alive(pid),
        pid_file=str(pid_file),
    )


def _member_sort_key(name: str) -> tuple[int, int]:
    short = name.rsplit("-", 1)[-1]
    return (
        0 if short.startswith("n") else 1,
        int(short[1:]) if short[1:].isdigit() else 0,
    )


__all__ = [
    "Command",
    "CommandFailed",
    "DaemonStatus",
    "InterfaceStatus",
    "Lab",
    "LabError",
    "LabSpec",
    "LabStatus",
    "MemberStatus",
    "list_namespaces",
]
