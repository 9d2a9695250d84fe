"""The real community services in a lab node, used by a real client.

One lab (node n1, client c1) for the module. Each test switches services
on through the framework's own job bodies (``request_activation`` then
``activate_service``, as the panel and the privileged worker do), the
daemons run under start-stop-daemon inside n1's namespace with the configs
the framework rendered, and c1 uses them over its DHCP lease: an IRC
registration and a message between two people on #mesh, a TLS handshake
with the Mumble server and an XMPP stream offering STARTTLS (both with the
node's certificate), Icecast relaying a stream that one client sends with
the generated source password to a listener (its TLS port with the node's
certificate), the offline library's guide book. Switching off closes the
ports (connection refused from c1) and withdraws the announcement
(``announced_services()`` and the node document served at
``/api/v1/node``). Everything a test starts is
switched off after it, and the lab is removed at the end of the module.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from captive.selectors import mesh_services
from meshnet import directory
from meshnet.node_document import build_node_document
from portal.lab.spec import client_subnet, mesh_address
from services import announce, components, mdns, selectors, services
from services.context import NodeNetwork
from services.health import namespace_socket
from services.models import ObservedState, ServiceState

from .test_mdns_lab import browse_once

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

NODE = "10.213.1.1"  # n1's client-side address, as c1 reaches it


@pytest.fixture(scope="module")
def lab(make_module_lab):
    """n1 runs the services (c1 is its client); n2 is another node (c2 its)."""
    return make_module_lab(nodes=2, clients=2)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A node certificate like ``portal_init`` makes (EC P-256, self-signed)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "portal.crt", folder / "portal.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=n1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def node(lab, certificate, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """The real catalogue run on lab node n1; every service off afterwards."""
    monkeypatch.setattr(services, "current_host", lambda: lab.node_host("n1"))
    network = NodeNetwork.from_mesh_state(lab.node_state("n1"))
    monkeypatch.setattr(services, "node_network", lambda: network)
    monkeypatch.setattr(announce, "_network", lambda: network)
    monkeypatch.setattr(components, "node_tls_source", lambda: certificate)
    yield lab
    host, supervisor = services.host_and_supervisor()
    for row in ServiceState.objects.all():
        entry = services.entry_for(row.service_id)
        context = services.build_context(entry, row, host)
        components.switch_off(context, supervisor)


def switch_on(service_id: str) -> dict:
    services.request_activation(service_id=service_id)
    return services.activate_service(service_id=service_id)


def switch_off(service_id: str) -> dict:
    services.request_deactivation(service_id=service_id)
    return services.deactivate_service(service_id=service_id)


def client_socket(lab, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection from client c1 to the node."""
    sock = namespace_socket(lab.namespace("c1"))
    sock.settimeout(timeout)
    try:
        sock.connect((NODE, port))
    except OSError:
        sock.close()
        raise
    return sock


def assert_refused(lab, port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        client_socket(lab, port).close()


def announced_ids() -> list[str]:
    return [service.id for service in announce.announced_services()]


def document_ids(client) -> list[str]:
    response = client.get("/api/v1/node")
    assert response.status_code == 200
    return [service["id"] for service in json.loads(response.content)["services"]]


def fetch(lab, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return lab.exec(
        "c1",
        ["curl", "-sS", "--max-time", "5", *extra, url],
        capture=True,
        timeout=15,
    )


def daemon_pid(lab, service_id: str, daemon: str) -> int:
    path = lab.node_path(
        "n1", f"/run/byzantium/services/{service_id}/supervised-{daemon}.pid"
    )
    return int(path.read_text().strip())


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie waits for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- IRC -----------------------------------------------------------------------------


class IrcClient:
    """A line-based IRC connection with just enough protocol for a test."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def wait_for(self, needle: str, timeout: float = 5.0) -> str:
        """Read lines (answering PINGs) until one contains ``needle``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\r\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\r\n", 1)
                line = raw.decode(errors="replace")
                if line.startswith("PING "):
                    self.send("PONG " + line[5:])
                if needle in line:
                    return line
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        raise AssertionError(f"no line with {needle!r}")

    def register(self, nick: str) -> str:
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick} on the mesh")
        return self.wait_for(" 001 ")


def test_two_irc_clients_register_and_talk_on_mesh_then_it_is_withdrawn(
    node, client, certificate
):
    assert switch_on("ircd") == {"switched_on": ["ircd"]}
    assert announced_ids() == ["ircd"]
    assert document_ids(client) == ["ircd"]
    # An app on c1 that browses finds it (the responder started with it).
    found = [
        event
        for event in browse_once(node.namespace("c1"), "_irc._tcp", 3.0)
        if event["event"] == "add"
    ]
    assert [(e["name"], e["port"], e["addresses"]) for e in found] == [
        ("Text chat (IRC) (n1)._irc._tcp.local.", 6667, [NODE])
    ]

    alice = IrcClient(client_socket(node, 6667))
    bob = IrcClient(client_socket(node, 6667))
    try:
        assert "Welcome" in alice.register("alice")
        bob.register("bob")
        for person in (alice, bob):
            person.send("JOIN #mesh")
            person.wait_for(" 366 ")  # end of the channel's names: joined
        alice.send("PRIVMSG #mesh :water at the school until 18:00")
        line = bob.wait_for("PRIVMSG #mesh")
        assert line.startswith(":alice!") and line.endswith(
            ":water at the school until 18:00"
        )
    finally:
        alice.sock.close()
        bob.sock.close()
    with _tls(client_socket(node, 6697)) as tls:  # IRC over TLS
        assert tls.getpeercert(binary_form=True) == _der(certificate[0])
        carol = IrcClient(tls)  # type: ignore[arg-type]
        assert "Welcome" in carol.register("carol")

    assert switch_off("ircd") == {"switched_off": ["ircd"]}
    assert_refused(node, 6667)
    assert_refused(node, 6697)
    assert announced_ids() == []
    assert document_ids(client) == []
    assert not mdns.responder_running(node.node_host("n1"))  # nothing to announce


# -- never on the uplink ------------------------------------------------------------

UPLINK_NODE_SIDE = "up-svc"


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=15)


@pytest.fixture(scope="module")
def uplink(lab) -> Iterator[str]:
    """A namespace behind a second veth of n1 that the portal does not know
    as a client or mesh side: the uplink, with a route to n1's networks."""
    namespace = f"{lab.prefix}-sup"
    _ip("netns", "add", namespace)
    try:
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip(
            "-n", namespace, "link", "add", "eth0", "type", "veth",
            "peer", "name", UPLINK_NODE_SIDE, "netns", lab.namespace("n1"),
        )  # fmt: skip
        _ip("-n", namespace, "addr", "add", "192.0.2.2/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        node = lab.namespace("n1")
        _ip("-n", node, "addr", "add", "192.0.2.1/24", "dev", UPLINK_NODE_SIDE)
        _ip("-n", node, "link", "set", UPLINK_NODE_SIDE, "up")
        _ip("-n", namespace, "route", "add", "10.213.0.0/16", "via", "192.0.2.1")
        yield namespace
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=False)


def _reaches(namespace: str, address: str, port: int) -> bool:
    sock = namespace_socket(namespace)
    sock.settimeout(1.0)
    try:
        sock.connect((address, port))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def test_the_chat_is_not_reachable_from_the_uplink(node, uplink):
    ping = ["ip", "netns", "exec", uplink, "ping", "-c1", "-W2", NODE]
    assert subprocess.run(ping, capture_output=True, timeout=10).returncode == 0
    switch_on("ircd")
    assert _reaches(node.namespace("c1"), NODE, 6667)
    for address in (NODE, "10.213.0.1", "192.0.2.1"):
        assert not _reaches(uplink, address, 6667), address
    switch_off("ircd")


# -- across the mesh: another node's directory, DNS and welcome page -------------------


def serve_document(lab, client) -> None:
    """n1's real document (the portal's ``/api/v1/node``) on n1's port 80."""
    from meshnet.models import MeshSettings
    from portal.models import NodeSettings

    row = NodeSettings.load()
    row.node_name = "n1"
    row.save()
    MeshSettings.objects.update_or_create(
        pk=1,
        defaults={
            "mesh_address": str(mesh_address("n1")),
            "client_subnet": str(client_subnet("n1")),
        },
    )
    components._invalidate_document()
    folder = lab.folder("n1") / "www"
    target = folder / "api/v1/node"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(client.get("/api/v1/node").content)


@pytest.fixture
def document_server(node) -> Iterator[None]:
    folder = node.folder("n1") / "www"
    folder.mkdir(exist_ok=True)
    with open(node.folder("n1") / "www.log", "ab") as log:
        server = subprocess.Popen(
            ["ip", "netns", "exec", node.namespace("n1"), sys.executable, "-m",
             "http.server", "80", "--bind", mesh_address("n1").compressed,
             "--directory", str(folder)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield
    finally:
        server.terminate()
        server.wait(5)


def sync_n2(lab) -> directory.SyncResult:
    """One directory round of node n2, as its own portal runs it."""
    own = directory.OwnNode(
        document=build_node_document(
            name="n2",
            mesh_address=str(mesh_address("n2")),
            client_subnet=str(client_subnet("n2")),
            gateway=False,
        ),
        domain="mesh",
    )
    return directory.sync_directory(
        lab.node_host("n2"),
        own=own,
        babel_socket=lab.node_path("n2", "/run/byzantium/babeld.sock"),
        log=lambda _text: None,
    )


def resolve(lab, member: str, name: str) -> str:
    result = lab.exec(member, ["getent", "ahostsv4", name], capture=True)
    return result.stdout.split()[0] if result.returncode == 0 else ""


def test_another_node_lists_resolves_and_reaches_the_chat_then_forgets_it(
    node, client, document_server
):
    switch_on("ircd")
    serve_document(node, client)
    deadline = time.monotonic() + 15
    while not sync_n2(node).seen and time.monotonic() < deadline:
        time.sleep(0.3)  # the document server is starting
    hosts = node.node_path("n2", directory.HOSTS_FILE).read_text()
    assert "10.213.0.1 ircd.n1.mesh" in hosts.splitlines()
    # c2, a client of n2, finds the chat of n1 by its mesh name and uses it.
    assert resolve(node, "c2", "ircd.n1.mesh") == "10.213.0.1"
    sock = namespace_socket(node.namespace("c2"))
    sock.settimeout(5)
    sock.connect(("10.213.0.1", 6667))
    with sock:
        assert "Welcome" in IrcClient(sock).register("dave")
    # n2's welcome page lists it under the other nodes, with what it is for.
    _here, elsewhere = mesh_services()
    (chat,) = elsewhere
    assert (chat.node, chat.name, chat.port) == ("n1", "Text chat (IRC)", 6667)
    assert chat.purpose == services.entry_for("ircd").purpose

    switch_off("ircd")
    serve_document(node, client)
    assert sync_n2(node).hosts_changed
    assert resolve(node, "c2", "ircd.n1.mesh") == ""
    assert mesh_services()[1] == []


# -- voice and XMPP: TLS with the node's certificate ----------------------------------


def _der(cert_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert_file.read_text())


def _tls(sock: socket.socket) -> ssl.SSLSocket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed: compared by hand below
    return context.wrap_socket(sock)


def test_mumble_server_completes_a_tls_handshake_with_the_node_certificate(
    node, certificate
):
    switch_on("voice")
    with _tls(client_socket(node, 64738)) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.getpeercert(binary_form=True) == _der(certificate[0])
    row = ServiceState.objects.get(service_id="voice")
    assert row.observed == ObservedState.RUNNING and row.last_health_ok
    switch_off("voice")
    assert_refused(node, 64738)
    assert announced_ids() == []


def test_xmpp_stream_offers_starttls_and_then_speaks_tls(node, certificate):
    switch_on("xmpp")
    sock = client_socket(node, 5222)
    try:
        sock.sendall(
            b"<?xml version='1.0'?><stream:stream to='n1.mesh' version='1.0' "
            b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        )
        features = _read_until(sock, b"</stream:features>")
        assert b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" in features
        assert b"<required/>" in features  # encryption is required
        sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        assert b"<proceed" in _read_until(sock, b"/>")
        with _tls(sock) as tls:
            assert tls.getpeercert(binary_form=True) == _der(certificate[0])
    finally:
        sock.close()
    switch_off("xmpp")
    assert_refused(node, 5222)


def _read_until(sock: socket.socket, end: bytes, limit: int = 65536) -> bytes:
    data = b""
    while end not in data and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


# -- HTTP: Icecast and the offline library -------------------------------------------


def _source(lab, mount: str, password: str) -> socket.socket:
    """A source client on c1 sending to ``mount`` (HTTP PUT, as ffmpeg does)."""
    sock = client_socket(lab, 8000)
    token = base64.b64encode(f"source:{password}".encode()).decode()
    sock.sendall(
        f"PUT {mount} HTTP/1.1\r\nHost: {NODE}:8000\r\n"
        f"Authorization: Basic {token}\r\nContent-Type: audio/mpeg\r\n"
        "Ice-Public: 0\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    return sock


def test_icecast_relays_a_stream_from_one_client_to_a_listener(node, certificate):
    switch_on("stream")
    secrets = ServiceState.objects.get(service_id="stream").secrets
    stats = f"http://{NODE}:8000/admin/stats"
    assert (
        "401" in fetch(node, stats, "-w", "%{http_code}", "-u", "admin:hackme").stdout
    )
    about = fetch(node, stats, "-u", f"admin:{secrets['admin_password']}")
    assert about.returncode == 0, about.stderr
    assert "<client_connections>" in about.stdout  # the generated one opens it
    with _tls(client_socket(node, 8443)) as tls:
        assert tls.getpeercert(binary_form=True) == _der(certificate[0])

    wrong = _source(node, "/wrong.mp3", "hackme")
    assert b" 401 " in _read_until(wrong, b"\r\n\r\n")
    wrong.close()

    source = _source(node, "/radio.mp3", secrets["source_password"])
    try:
        assert b" 100 " in _read_until(source, b"\r\n\r\n")
        audio = bytes(range(256)) * 64
        source.sendall(audio)  # burst-on-connect hands this to a new listener
        time.sleep(0.5)
        listener = client_socket(node, 8000)
        with listener:
            listener.sendall(
                f"GET /radio.mp3 HTTP/1.0\r\nHost: {NODE}\r\n\r\n".encode()
            )
            received = _read_until(listener, audio[:4096])
            assert b" 200 OK" in received and audio[:4096] in received
    finally:
        source.close()
    switch_off("stream")
    assert fetch(node, f"http://{NODE}:8000/").returncode == 7  # refused
    assert_refused(node, 8443)


def test_the_library_serves_its_guide_book(node):
    switch_on("library")
    catalog = fetch(node, f"http://{NODE}:8081/catalog/v2/entries")
    assert catalog.returncode == 0, catalog.stderr
    assert "<title>Mesh guide</title>" in catalog.stdout
    page = fetch(node, f"http://{NODE}:8081/content/mesh-guide/A/index.html", "-L")
    assert page.returncode == 0 and "mesh" in page.stdout.lower()
    switch_off("library")
    assert_refused(node, 8081)


def test_at_boot_the_library_comes_back_seeded_on_an_empty_medium(node):
    """A live medium without persistence: after a reboot the daemon is gone
    and the data folder is empty; the boot reconcile seeds and starts it."""
    switch_on("library")
    host, supervisor = services.host_and_supervisor()
    row = ServiceState.objects.get(service_id="library")
    context = services.build_context(services.entry_for("library"), row, host)
    components.DaemonComponent(supervisor).off(context)  # the power went
    data = Path(context.real("data_dir"))
    for path in data.iterdir():
        path.unlink()
    assert services.reconcile_all()["started"] == ["library"]
    assert (data / "mesh-guide.zim").is_file()
    catalog = fetch(node, f"http://{NODE}:8081/catalog/v2/entries")
    assert "<title>Mesh guide</title>" in catalog.stdout
    switch_off("library")


# -- dependencies, failures ------------------------------------------------------------


def test_onion_chat_pulls_in_the_chat_and_goes_off_with_it(node):
    assert switch_on("onion-chat") == {"switched_on": ["ircd", "onion-chat"]}
    tor = daemon_pid(node, "onion-chat", "tor")
    assert alive(tor)
    client_socket(node, 6667).close()  # the chat runs
    assert set(announced_ids()) == {"ircd", "onion-chat"}
    # tor made the onion address (offline: keys only); the page shows it.
    onion = ServiceState.objects.get(service_id="onion-chat").client_address
    assert re.fullmatch(r"[a-z2-7]{56}\.onion", onion), onion
    access = selectors.client_access(
        services.entry_for("onion-chat"), services.state_for("onion-chat")
    )
    assert (access.name, access.port) == (onion, 6667)

    assert switch_off("ircd") == {"switched_off": ["onion-chat", "ircd"]}
    assert not alive(tor)
    assert_refused(node, 6667)
    rows = dict(ServiceState.objects.values_list("service_id", "enabled"))
    assert rows == {"ircd": False, "onion-chat": False}
    assert announced_ids() == []

    # A second switch-on: tor's data folder is debian-tor's now, the check
    # (run as root) must still pass, and the onion address is the same.
    assert switch_on("onion-chat") == {"switched_on": ["ircd", "onion-chat"]}
    assert alive(daemon_pid(node, "onion-chat", "tor"))
    assert ServiceState.objects.get(service_id="onion-chat").client_address == onion
    assert switch_off("ircd") == {"switched_off": ["onion-chat", "ircd"]}


def test_a_killed_daemon_is_started_again_by_the_health_check(node, client):
    switch_on("ircd")
    killed = daemon_pid(node, "ircd", "ngircd")
    os.kill(killed, 9)
    summary = services.run_health_checks()
    assert summary["restarted"] == ["ircd"]
    row = ServiceState.objects.get(service_id="ircd")
    assert row.observed == ObservedState.RUNNING and not row.withdrawn
    assert daemon_pid(node, "ircd", "ngircd") != killed
    assert announced_ids() == ["ircd"]
    assert document_ids(client) == ["ircd"]
    IrcClient(client_socket(node, 6667)).register("carol")
