"""The directory for real: a lab mesh, documents over HTTP, dnsmasq names.

Node n1 plays the node the portal manages: the sync runs with a
``NamespaceRunner`` on n1 and n1's file root, exactly as ``lab`` host mode
does. The other lab nodes have no portal, so each serves a document built by
:func:`meshnet.node_document.build_node_document` with Python's static HTTP
server inside its own namespace (port 80 on every address of that node).
n1's dnsmasq is the one the portal renders (``addn-hosts`` =
``/etc/byzantium/mesh-hosts`` under n1's root), so the lab's client c1,
which holds a DHCP lease from n1, resolves ``NAME.mesh`` through it once the
sync has written the file and sent dnsmasq SIGHUP.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meshnet import directory
from meshnet.models import DirectoryEntry
from meshnet.node_document import build_node_document
from portal.host.commands import Command
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import NamespaceRunner
from portal.lab import Lab
from portal.lab.spec import client_gateway, client_subnet, mesh_address

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

NAMES = {"n2": "bravo", "n3": "charlie"}
# The sync period the join/leave tests run with (the job's is 30 s).
PERIOD = 2.0


@dataclass
class Mesh:
    lab: Lab
    host: Host
    root: Path
    servers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def babel_socket(self) -> Path:
        return self.lab.node_path("n1", "/run/byzantium/babeld.sock")

    def own(self) -> directory.OwnNode:
        return directory.OwnNode(
            document=build_node_document(
                name="alpha",
                mesh_address=str(mesh_address("n1")),
                client_subnet=str(client_subnet("n1")),
                gateway=False,
            ),
            domain="mesh",
        )

    def sync(self, **kwargs) -> directory.SyncResult:
        notes: list[str] = []
        result = directory.sync_directory(
            self.host,
            own=self.own(),
            babel_socket=self.babel_socket(),
            log=notes.append,
            **kwargs,
        )
        result.notes = notes  # type: ignore[attr-defined]
        return result

    def serve(self, node: str, body: bytes) -> None:
        """(Re)write what ``node`` serves at /api/v1/node."""
        folder = self.lab.folder(node) / "www"
        target = folder / "api/v1/node"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        if node in self.servers:
            self.check_alive(node)
        else:
            log = self.lab.folder(node) / "www.log"
            with log.open("ab") as output:
                self.servers[node] = self._start_server(node, folder, output)
            self._wait_serving(node)

    def _start_server(self, node: str, folder: Path, output) -> subprocess.Popen:
        return subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.lab.namespace(node),
                sys.executable,
                "-m",
                "http.server",
                "80",
                "--bind",
                "0.0.0.0",
                "--directory",
                str(folder),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def check_alive(self, node: str) -> None:
        """A server that died must say so, with its log, not look unreachable."""
        server = self.servers[node]
        if server.poll() is not None:
            log = (self.lab.folder(node) / "www.log").read_text(errors="replace")
            raise AssertionError(
                f"the document server of {node} exited ({server.returncode}):\n"
                + log[-2000:]
            )

    def _wait_serving(self, node: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.check_alive(node)
            result = self.lab.exec(
                node,
                [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "http://127.0.0.1/api/v1/node",
                ],
                capture=True,
            )
            if result.stdout == "200":
                return
            time.sleep(0.1)
        raise AssertionError(f"the document server of {node} did not start")

    def document(self, node: str, **changes) -> bytes:
        data = build_node_document(
            name=NAMES[node],
            mesh_address=str(mesh_address(node)),
            client_subnet=str(client_subnet(node)),
            gateway=node == "n3",
        ).to_json()
        data.update(changes)
        return json.dumps(data).encode()

    def link(self, node: str, interface: str, state: str) -> None:
        NamespaceRunner(self.lab.namespace(node)).run(
            Command(("ip", "link", "set", interface, state))
        )

    def wait_route(self, node: str, present: bool, timeout: float = 30) -> None:
        """Wait until n1 can (or cannot) fetch ``node``'s document.

        Checking the kernel table is not enough: babeld keeps a retracted
        prefix for a while as an ``unreachable`` route.
        """
        url = f"http://{mesh_address(node)}/api/v1/node"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.lab.exec(
                "n1",
                ["curl", "-s", "-o", "/dev/null", "--max-time", "1", url],
                capture=True,
            )
            if (result.returncode == 0) == present:
                return
            time.sleep(0.1)
        raise AssertionError(f"{url} reachable={not present} after {timeout}s")

    def stop_servers(self) -> None:
        for server in self.servers.values():
            server.terminate()
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def mesh(make_module_lab) -> Iterator[Mesh]:
    lab = make_module_lab(nodes=3, topology="line", clients=1)
    root = lab.folder("n1") / "root"
    host = Host(
        mode="lab", runner=NamespaceRunner(lab.namespace("n1")), files=FileStore(root)
    )
    mesh = Mesh(lab=lab, host=host, root=root)
    try:
        for node in NAMES:
            mesh.serve(node, mesh.document(node))
        yield mesh
    finally:
        mesh.stop_servers()


def _names(result: directory.SyncResult) -> set[str]:
    return set(DirectoryEntry.objects.values_list("name", flat=True))


def test_sync_lists_every_reachable_node_from_babel_routes(mesh: Mesh) -> None:
    result = mesh.sync()
    assert result.source == "babeld"
    # On a failure, say why each node was missed (seen once, not reproduced).
    why = (result.candidates, result.unreachable, result.refused, result.notes)
    assert sorted(result.seen) == ["10.213.0.2", "10.213.0.3"], why
    entries = {e.name: e for e in DirectoryEntry.objects.all()}
    assert set(entries) == {"bravo", "charlie"}
    assert entries["charlie"].gateway is True
    assert entries["charlie"].client_subnet == "10.213.3.0/24"
    hosts = (mesh.root / "etc/byzantium/mesh-hosts").read_text()
    assert "10.213.0.2 bravo.mesh\n" in hosts
    assert "10.213.0.3 charlie.mesh\n" in hosts
    assert "10.213.0.1 alpha.mesh\n" in hosts
    assert json.loads((mesh.root / "run/byzantium/node.json").read_text())["name"] == (
        "alpha"
    )
    print(f"\nsync of 2 nodes: {result.seconds:.3f} s, {result.bytes_fetched} bytes")


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"<html><script>alert(1)</script></html>", "not valid JSON"),
        (None, "not a DNS label"),  # a script in the name
        (b'{"schema": "byzantium-node/1", "name": "x", "gateway": "yes"}', "gateway"),
        (b'{"pad": "' + b"x" * 200_000 + b'"}', "larger than"),
    ],
    ids=["html", "script-in-name", "wrong-type", "huge"],
)
def test_hostile_documents_are_ignored_and_logged(
    mesh: Mesh, body: bytes | None, reason: str
) -> None:
    if body is None:
        body = mesh.document("n3", name="<script>alert(1)</script>")
    mesh.serve("n3", body)
    try:
        result = mesh.sync()
    finally:
        mesh.serve("n3", mesh.document("n3"))
    assert "10.213.0.3" in result.refused
    assert reason in result.refused["10.213.0.3"]
    assert any("10.213.0.3: document ignored" in n for n in result.notes)
    assert not DirectoryEntry.objects.filter(address="10.213.0.3").exists()
    hosts = (mesh.root / "etc/byzantium/mesh-hosts").read_text()
    assert "script" not in hosts and "10.213.0.3" not in hosts


def test_a_node_that_joins_appears_within_two_sync_periods(mesh: Mesh) -> None:
    mesh.link("n2", "to-n3", "down")
    try:
        mesh.wait_route("n3", present=False)
        assert "10.213.0.3" not in mesh.sync().seen
    finally:
        mesh.link("n2", "to-n3", "up")
    joined = time.monotonic()
    for period in (1, 2):
        time.sleep(max(0.0, joined + period * PERIOD - time.monotonic()))
        if "10.213.0.3" in mesh.sync(period=PERIOD).seen:
            print(f"\ncharlie joined the directory at sync {period} after its link")
            break
    else:
        pytest.fail("charlie did not appear within two sync periods")
    assert DirectoryEntry.objects.filter(name="charlie").exists()


def test_a_node_that_leaves_expires(mesh: Mesh) -> None:
    mesh.wait_route("n3", present=True)
    assert "10.213.0.3" in mesh.sync(period=PERIOD, expire_after_periods=2).seen
    mesh.link("n2", "to-n3", "down")
    try:
        left = time.monotonic()
        syncs = []
        for period in (1, 2, 3):
            time.sleep(max(0.0, left + period * PERIOD - time.monotonic()))
            syncs.append(mesh.sync(period=PERIOD, expire_after_periods=2))
            if "10.213.0.3" in syncs[-1].expired:
                break
        assert "10.213.0.3" not in syncs[0].seen
        assert syncs[0].expired == []  # one missed sync is not yet gone
        assert any("10.213.0.3" in s.expired for s in syncs)
        assert not DirectoryEntry.objects.filter(name="charlie").exists()
        hosts = (mesh.root / "etc/byzantium/mesh-hosts").read_text()
        assert "charlie" not in hosts
    finally:
        mesh.link("n2", "to-n3", "up")
        mesh.wait_route("n3", present=True)


def _resolve(mesh: Mesh, name: str) -> str:
    result = mesh.lab.exec("c1", ["getent", "ahostsv4", name], capture=True)
    return result.stdout.split()[0] if result.returncode == 0 else ""


def test_a_client_with_a_lease_resolves_other_nodes_names(mesh: Mesh) -> None:
    client = mesh.lab.status().member("c1")
    assert client.address and client.address.startswith("10.213.1.")  # a DHCP lease
    resolv = Path(f"/etc/netns/{mesh.lab.namespace('c1')}/resolv.conf").read_text()
    assert f"nameserver {client_gateway('n1')}" in resolv
    # Self-contained: whatever the tests before left, n1 reaches both
    # documents before the sync that must find them.
    for node in NAMES:
        mesh.check_alive(node)
        mesh.wait_route(node, present=True)
    mesh.sync()
    assert _resolve(mesh, "bravo.mesh") == "10.213.0.2"
    assert _resolve(mesh, "charlie.mesh") == "10.213.0.3"
    assert _resolve(mesh, "alpha.mesh") == "10.213.0.1"
    assert _resolve(mesh, "nobody.mesh") == ""
    # A renamed node: the hosts file changes, dnsmasq re-reads it on SIGHUP.
    mesh.serve("n3", mesh.document("n3", name="delta"))
    try:
        assert mesh.sync().dnsmasq_reloaded
        assert _resolve(mesh, "delta.mesh") == "10.213.0.3"
        assert _resolve(mesh, "charlie.mesh") == ""
    finally:
        mesh.serve("n3", mesh.document("n3"))
    # And the client reaches the node by its name.
    reply = mesh.lab.exec(
        "c1",
        ["curl", "-s", "--max-time", "5", "http://bravo.mesh/api/v1/node"],
        capture=True,
    )
    assert json.loads(reply.stdout)["name"] == "bravo"
