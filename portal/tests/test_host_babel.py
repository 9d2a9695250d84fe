"""babeld's local socket: parsing recorded text, protocol edge cases, and a
real babeld pair in two namespaces joined by a veth link."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.host.babel import BabelNotRunning, parse_dump, read_dump
from portal.host.errors import HostError

HEADER = (
    "BABEL 1.0\nversion babeld-1.12.1\nhost vm\nmy-id 60:a6:96:93:1d:58:de:a6\nok\n"
)
# Recorded from babeld 1.12.1 (plus an rtt neighbour, a down interface and
# an unknown field, as newer versions and timestamps produce).
DUMP = (
    "add interface byzh-va up true ipv6 fe80::ecb4:ceff:fe4a:1d58\n"
    "add interface wlan9 up false\n"
    "add neighbour 55ddeb663eb0 address fe80::8013:1cff:fe86:7291 if byzh-va "
    "reach fff8 ureach 0000 rxcost 96 txcost 96 cost 96\n"
    "add neighbour 55ddeb663ef0 address fe80::1 if byzh-va reach ffff ureach 0000 "
    "rxcost 256 txcost 300 rtt 1.250 rttcost 12 cost 312 future-field 7\n"
    "add xroute 10.99.0.1/32-0.0.0.0/0 prefix 10.99.0.1/32 from 0.0.0.0/0 metric 0\n"
    "add route 55ddeb664410 prefix 10.99.0.2/32 from 0.0.0.0/0 installed yes "
    "id 18:07:a0:d7:91:80:9a:14 metric 96 refmetric 0 via fe80::8013:1cff:fe86:7291 "
    "if byzh-va\n"
    "add route 55ddeb664490 prefix 10.99.0.3/32 from 0.0.0.0/0 installed no "
    "id 18:07:a0:d7:91:80:9a:15 metric 65535 refmetric 96 via fe80::1 if byzh-va\n"
    "ok\n"
)


def test_parse_dump_reads_every_kind():
    dump = parse_dump(HEADER + DUMP)
    assert dump.version == "babeld-1.12.1" and dump.host == "vm"
    assert dump.my_id == "60:a6:96:93:1d:58:de:a6"
    up, down = dump.interfaces
    assert up.name == "byzh-va" and up.up and up.ipv6 == "fe80::ecb4:ceff:fe4a:1d58"
    assert down.name == "wlan9" and not down.up and down.ipv6 is None
    plain, timed = dump.neighbours
    assert plain.address == "fe80::8013:1cff:fe86:7291" and plain.interface == "byzh-va"
    assert plain.reach == 0xFFF8 and plain.rxcost == 96 and plain.cost == 96
    assert plain.rtt is None and plain.rttcost is None
    assert timed.rtt == 1.25 and timed.rttcost == 12 and timed.cost == 312
    (xroute,) = dump.xroutes
    assert xroute.prefix == "10.99.0.1/32" and xroute.source_prefix == "0.0.0.0/0"
    chosen, other = dump.routes
    assert chosen.installed and chosen.prefix == "10.99.0.2/32" and chosen.metric == 96
    assert chosen.router_id == "18:07:a0:d7:91:80:9a:14" and chosen.via.startswith(
        "fe80"
    )
    assert not other.installed and other.refmetric == 96
    assert dump.installed_routes == (chosen,)


def test_parse_dump_refuses_text_that_is_not_babel():
    with pytest.raises(HostError):
        parse_dump("HTTP/1.1 200 OK\n")


class FakeBabeld:
    """A Unix socket server that answers like babeld, or misbehaves."""

    def __init__(
        self, path: Path, header: bytes, answer: bytes, delay: float = 0
    ) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.header, self.answer, self.delay = header, answer, delay
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.sendall(self.header)
            request = conn.recv(100)
            self.requests.append(request)
            time.sleep(self.delay)
            try:
                for start in range(0, len(self.answer), 1000):
                    conn.sendall(self.answer[start : start + 1000])
                time.sleep(self.delay)
            except OSError:
                pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "babeld.sock"


def test_read_dump_talks_the_protocol(sock_path):
    fake = FakeBabeld(sock_path, HEADER.encode(), DUMP.encode())
    try:
        dump = read_dump(sock_path)
    finally:
        fake.close()
    assert fake.requests == [b"dump\n"]
    assert len(dump.neighbours) == 2 and len(dump.routes) == 2


def test_read_dump_times_out_on_a_silent_babeld(sock_path):
    fake = FakeBabeld(sock_path, HEADER.encode(), b"add interface x up true\n", delay=3)
    started = time.monotonic()
    try:
        with pytest.raises(HostError, match="in time"):
            read_dump(sock_path, timeout=0.5)
    finally:
        fake.close()
    assert time.monotonic() - started < 2


def test_read_dump_caps_the_answer_size(sock_path):
    huge = b"add interface x up true\n" * 10_000
    fake = FakeBabeld(sock_path, HEADER.encode(), huge + b"ok\n")
    try:
        with pytest.raises(HostError, match="larger than"):
            read_dump(sock_path, max_bytes=50_000)
    finally:
        fake.close()


def test_read_dump_reports_a_refused_dump(sock_path):
    fake = FakeBabeld(sock_path, HEADER.encode(), b"bad\n")
    try:
        with pytest.raises(HostError, match="refused"):
            read_dump(sock_path)
    finally:
        fake.close()


def test_read_dump_says_babeld_is_not_running(tmp_path):
    with pytest.raises(BabelNotRunning, match="not running"):
        read_dump(tmp_path / "missing.sock")
    stale = tmp_path / "stale.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(stale))
    server.close()  # the socket file stays, nobody listens: a crashed babeld
    with pytest.raises(BabelNotRunning):
        read_dump(stale)


# --- the real thing ---------------------------------------------------------------


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture(scope="module")
def babel_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Namespaces byzh-<pid>a/b joined by a veth pair, real babeld in each."""
    folder = tmp_path_factory.mktemp("babel")
    tag = f"byzh-{os.getpid() % 100000}"
    names = {"a": f"{tag}a", "b": f"{tag}b"}
    addresses = {"a": "10.99.0.1/32", "b": "10.99.0.2/32"}
    sockets = {side: folder / f"{side}.sock" for side in names}
    try:
        for name in names.values():
            _run("ip", "netns", "add", name)
        # The veth pair is created inside namespace a: the machine's own
        # namespace never sees it.
        _run(
            "ip", "-n", names["a"], "link", "add", "va", "type", "veth",
            "peer", "name", "vb", "netns", names["b"],
        )  # fmt: skip
        for side, name in names.items():
            _run("ip", "-n", name, "link", "set", "lo", "up")
            _run("ip", "-n", name, "link", "set", f"v{side}", "up")
            _run("ip", "-n", name, "addr", "add", addresses[side], "dev", "lo")
            conf = folder / f"{side}.conf"
            conf.write_text(
                f"local-path {sockets[side]}\n"
                f"interface v{side} hello-interval 0.2 update-interval 1\n"
                "redistribute local ip 10.99.0.0/16 allow\n"
                "redistribute local deny\n"
            )
            _run(
                "ip", "netns", "exec", name, "babeld", "-D",
                "-I", str(folder / f"{side}.pid"), "-L", str(folder / f"{side}.log"),
                "-S", str(folder / f"{side}.state"), "-c", str(conf),
            )  # fmt: skip
        yield sockets
    finally:
        for side, name in names.items():
            pid_file = folder / f"{side}.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
                except (ValueError, ProcessLookupError):
                    pass
        time.sleep(0.3)
        for name in names.values():
            # Anything still running in our namespaces was started by us.
            pids = subprocess.run(
                ["ip", "netns", "pids", name], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ValueError, ProcessLookupError):
                    pass
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.mark.lab
def test_real_babeld_reports_neighbour_and_route(babel_pair):
    deadline = time.monotonic() + 20
    dump = None
    while time.monotonic() < deadline:
        try:
            dump = read_dump(babel_pair["a"])
        except BabelNotRunning:
            dump = None
        # A neighbour is listed before its first IHU arrives (cost 65535);
        # wait for the link to be usable both ways, not just seen.
        if (
            dump
            and dump.neighbours
            and dump.installed_routes
            and all(n.cost < 65535 for n in dump.neighbours)
        ):
            break
        time.sleep(0.2)
    assert dump is not None, "babeld in namespace a never answered"
    assert dump.version.startswith("babeld-1.12")
    assert dump.my_id and dump.interfaces[0].name == "va" and dump.interfaces[0].up
    (neighbour,) = dump.neighbours
    assert neighbour.interface == "va" and neighbour.address.startswith("fe80:")
    assert neighbour.reach != 0 and neighbour.cost < 65535
    assert [r.prefix for r in dump.installed_routes] == ["10.99.0.2/32"]
    assert [x.prefix for x in dump.xroutes] == ["10.99.0.1/32"]
    other = read_dump(babel_pair["b"])
    assert other.my_id != dump.my_id
    assert dump.installed_routes[0].router_id == other.my_id
