"""The mDNS responder in a real lab: browsed by a real client, nowhere else.

One lab node with a client namespace. The responder is started through the
host layer (start-stop-daemon inside the node's namespace), exactly as the
announcement component's hook does. The client browses with the zeroconf
library in a subprocess run by ``ip netns exec``; a second veth in the node
(its other end in a namespace this module creates) plays the uplink, where
a browser must see nothing.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings

from portal.host.allowlist import resolve_executable
from services import mdns
from services.components import MDNS_FOLDER
from services.context import NodeNetwork

pytestmark = [pytest.mark.lab]

UPLINK_NODE_SIDE = "up-mdns"
UPLINK_NODE_ADDRESS = "192.0.2.1/24"
UPLINK_PEER_ADDRESS = "192.0.2.2/24"
# How long a withdrawn service may take to leave a browsing client: the
# goodbye goes out within a second of the SIGHUP; the rest is slack.
WITHDRAW_BOUND = 4.0

# Runs in a namespace under ``python -P``: browses the given types and prints
# one JSON line per event, flushed, until killed or ``seconds`` pass.
BROWSER = r"""
import json, sys, time
from zeroconf import IPVersion, ServiceBrowser, Zeroconf

types = sys.argv[1].split(",")
seconds = float(sys.argv[2])
zc = Zeroconf(ip_version=IPVersion.V4Only)

def say(**event):
    event["t"] = time.monotonic()
    print(json.dumps(event), flush=True)

class Listener:
    def add_service(self, zc_, type_, name):
        info = zc_.get_service_info(type_, name, timeout=3000)
        if info is None:
            say(event="add", name=name, type=type_, port=None, addresses=[], txt={})
            return
        txt = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        say(event="add", name=name, type=type_, port=info.port,
            addresses=info.parsed_addresses(), txt=txt)

    def remove_service(self, zc_, type_, name):
        say(event="remove", name=name, type=type_)

    def update_service(self, zc_, type_, name):
        pass

browsers = [ServiceBrowser(zc, t + ".local.", Listener()) for t in types]
say(event="ready")
time.sleep(seconds)
zc.close()
"""


@dataclass
class Browser:
    """A browsing client process and the events it printed so far."""

    process: subprocess.Popen[str]
    events: queue.Queue

    def next_event(self, timeout: float) -> dict | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, predicate, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.next_event(left)
            if event is not None and predicate(event):
                return event
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)


def start_browser(namespace: str, types: str, seconds: float = 30.0) -> Browser:
    process = subprocess.Popen(  # noqa: S603 - fixed argv into our own namespace
        [
            resolve_executable("ip"),
            "netns",
            "exec",
            namespace,
            str(settings.PORTAL_PYTHON),
            "-P",
            "-c",
            BROWSER,
            types,
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    events: queue.Queue = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                events.put(json.loads(line))
            except ValueError:
                continue

    threading.Thread(target=pump, daemon=True).start()
    browser = Browser(process, events)
    assert browser.wait_for(lambda e: e["event"] == "ready", 10) is not None
    return browser


def browse_once(namespace: str, types: str, seconds: float) -> list[dict]:
    """Every event a browser in ``namespace`` saw within ``seconds``."""
    browser = start_browser(namespace, types, seconds + 5)
    try:
        deadline = time.monotonic() + seconds
        events = []
        while (left := deadline - time.monotonic()) > 0:
            event = browser.next_event(left)
            if event is not None:
                events.append(event)
        return events
    finally:
        browser.stop()


def _ip(*argv: str) -> None:
    subprocess.run([resolve_executable("ip"), *argv], check=True)  # noqa: S603


@pytest.fixture(scope="module")
def lab(make_module_lab):
    return make_module_lab(nodes=1, clients=1)


@pytest.fixture(scope="module")
def uplink(lab) -> Iterator[str]:
    """A namespace behind a second veth of the node, on its own subnet."""
    namespace = f"{lab.prefix}-mup"
    _ip("netns", "add", namespace)
    try:
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip(
            "-n", namespace, "link", "add", "eth0", "type", "veth",
            "peer", "name", UPLINK_NODE_SIDE, "netns", lab.namespace("n1"),
        )  # fmt: skip
        _ip("-n", namespace, "addr", "add", UPLINK_PEER_ADDRESS, "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        node = lab.namespace("n1")
        _ip("-n", node, "addr", "add", UPLINK_NODE_ADDRESS, "dev", UPLINK_NODE_SIDE)
        _ip("-n", node, "link", "set", UPLINK_NODE_SIDE, "up")
        yield namespace
    finally:
        subprocess.run(  # noqa: S603
            [resolve_executable("ip"), "netns", "delete", namespace], check=False
        )


@pytest.fixture
def node(lab):
    """Node n1's host and network; the responder stopped, records gone after."""
    host = lab.node_host("n1")
    network = NodeNetwork.from_mesh_state(lab.node_state("n1"))
    yield host, network
    mdns.stop_responder(host)
    folder = host.files.path(MDNS_FOLDER)
    for path in folder.glob("*.json") if folder.is_dir() else ():
        path.unlink()


def responder_log(host) -> str:
    path = host.files.path(mdns.LOGFILE)
    return path.read_text() if path.exists() else "(no log)"


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def write_record(host, record: dict | bytes, name: str | None = None) -> None:
    raw = record if isinstance(record, bytes) else json.dumps(record).encode()
    file_id = name or record["id"]  # type: ignore[index]
    host.files.write(f"{MDNS_FOLDER}/{file_id}.json", raw, mode=0o644)


def remove_record(host, file_id: str) -> None:
    host.files.remove(f"{MDNS_FOLDER}/{file_id}.json")


CHAT = {
    "id": "chat",
    "name": "Text chat (n1)",
    "type": "_irc._tcp",
    "port": 6667,
    "addresses": ["10.213.1.1"],
}
VOICE = {
    "id": "voice",
    "name": "Voice chat (n1)",
    "type": "_mumble._tcp",
    "port": 64738,
    "addresses": ["10.213.1.1"],
}
WIKI = {
    "id": "wiki",
    "name": "Wiki (n1)",
    "type": "_http._tcp",
    "port": 8090,
    "url": "http://10.213.1.1:8090/doku.php",
}
TYPES = "_irc._tcp,_mumble._tcp,_http._tcp"


def test_a_client_browses_both_services_and_a_withdrawn_one_disappears(node, lab):
    host, network = node
    write_record(host, CHAT)
    write_record(host, VOICE)
    assert mdns.sync_responder(host, network) == "started", responder_log(host)

    browser = start_browser(lab.namespace("c1"), TYPES)
    try:
        seen: dict[str, dict] = {}
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            event = browser.next_event(deadline - time.monotonic())
            if event and event["event"] == "add":
                seen[event["name"]] = event
        chat = seen["Text chat (n1)._irc._tcp.local."]
        voice = seen["Voice chat (n1)._mumble._tcp.local."]
        assert (chat["port"], chat["addresses"]) == (6667, ["10.213.1.1"])
        assert (voice["port"], voice["addresses"]) == (64738, ["10.213.1.1"])

        remove_record(host, "voice")
        withdrawn_at = time.monotonic()
        assert mdns.sync_responder(host, network) == "reloaded"
        gone = browser.wait_for(
            lambda e: e["event"] == "remove" and e["type"] == "_mumble._tcp.local.",
            WITHDRAW_BOUND,
        )
        assert gone is not None, "the withdrawn service never left the browser"
        assert gone["t"] - withdrawn_at < WITHDRAW_BOUND
        # The other one stays.
        late = browser.wait_for(lambda e: e["event"] == "remove", 1.5)
        assert late is None
    finally:
        browser.stop()


def test_a_url_service_carries_its_path_in_txt_and_a_new_record_shows_on_sighup(
    node, lab
):
    host, network = node
    write_record(host, CHAT)
    assert mdns.ensure_responder(host, network)
    browser = start_browser(lab.namespace("c1"), "_http._tcp")
    try:
        write_record(host, WIKI)
        assert mdns.reload_responder(host)
        added = browser.wait_for(lambda e: e["event"] == "add", 6)
        assert added is not None
        assert added["name"] == "Wiki (n1)._http._tcp.local."
        assert added["txt"] == {
            "path": "/doku.php",
            "url": "http://10.213.1.1:8090/doku.php",
        }
    finally:
        browser.stop()


def test_the_responder_never_answers_on_another_interface(node, lab, uplink):
    host, network = node
    write_record(host, CHAT)
    write_record(host, VOICE)
    assert mdns.sync_responder(host, network) == "started", responder_log(host)
    client = browse_once(lab.namespace("c1"), TYPES, 4)
    assert len([e for e in client if e["event"] == "add"]) == 2
    outside = browse_once(uplink, TYPES, 4)
    assert outside == []


def test_hostile_records_are_ignored_and_the_responder_keeps_running(node, lab):
    host, network = node
    write_record(host, CHAT)
    write_record(host, b"\xff\xfe not utf-8", name="broken")
    write_record(host, {**VOICE, "port": "64738"})
    write_record(host, {**VOICE, "id": "huge", "name": "x" * 100_000})
    assert mdns.sync_responder(host, network) == "started", responder_log(host)
    events = browse_once(lab.namespace("c1"), TYPES, 4)
    assert [e["name"] for e in events if e["event"] == "add"] == [
        "Text chat (n1)._irc._tcp.local."
    ]
    assert mdns.responder_running(host)
    log = host.files.path(mdns.LOGFILE).read_text()
    assert "ignoring record 'broken.json': not UTF-8" in log
    assert "ignoring record 'voice.json': port is not a number" in log
    assert "ignoring record 'huge.json'" in log


def test_stop_removes_the_process_and_the_pid_file(node):
    host, network = node
    write_record(host, CHAT)
    assert mdns.sync_responder(host, network) == "started", responder_log(host)
    pidfile = host.files.path(mdns.PIDFILE)
    pid = int(pidfile.read_text())
    with open(f"/proc/{pid}/comm") as comm:
        assert comm.read().strip() == "byz-mdns"
    assert mdns.sync_responder(host, network) == "reloaded"

    remove_record(host, "chat")
    assert mdns.sync_responder(host, network) == "stopped"
    assert not pidfile.exists()
    # start-stop-daemon reports it gone once its program image is released;
    # the kernel finishes the exit a moment later.
    deadline = time.monotonic() + 2
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    assert not mdns.responder_running(host)
    assert mdns.sync_responder(host, network) == "idle"
