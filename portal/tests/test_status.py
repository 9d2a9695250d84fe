"""Status collection from recorded ``ip -j`` output and a recorded babel dump."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import translation

from portal import status
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner
from portal.jobqueue import registry

# Recorded from `ip -j -s -d addr show` in a lab node (trimmed to the keys the
# reader uses plus a few it must ignore).
IP_ADDR = json.dumps(
    [
        {
            "ifindex": 1,
            "ifname": "lo",
            "flags": ["LOOPBACK", "UP", "LOWER_UP"],
            "mtu": 65536,
            "operstate": "UNKNOWN",
            "link_type": "loopback",
            "address": "00:00:00:00:00:00",
            "addr_info": [
                {
                    "family": "inet",
                    "local": "127.0.0.1",
                    "prefixlen": 8,
                    "scope": "host",
                }
            ],
            "stats64": {
                "rx": {"bytes": 3193, "packets": 29},
                "tx": {"bytes": 3193, "packets": 29},
            },
        },
        {
            "ifindex": 7,
            "link_index": 6,
            "ifname": "byzt-n1-n2",
            "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
            "mtu": 1500,
            "qdisc": "noqueue",
            "operstate": "UP",
            "link_type": "ether",
            "address": "ee:b4:ce:4a:1d:58",
            "linkinfo": {"info_kind": "veth"},
            "addr_info": [
                {
                    "family": "inet",
                    "local": "10.99.0.1",
                    "prefixlen": 32,
                    "scope": "global",
                    "label": "byzt-n1-n2",
                },
                {
                    "family": "inet6",
                    "local": "fe80::ecb4:ceff:fe4a:1d58",
                    "prefixlen": 64,
                    "scope": "link",
                },
            ],
            "stats64": {
                "rx": {"bytes": 5_368_709, "packets": 4021, "errors": 0},
                "tx": {"bytes": 1536, "packets": 12, "errors": 0},
            },
        },
        {
            "ifindex": 9,
            "ifname": "wlan0",
            "flags": ["BROADCAST", "MULTICAST"],
            "mtu": 1500,
            "operstate": "DOWN",
            "link_type": "ether",
            "address": "60:a6:96:93:1d:58",
            "addr_info": [],
            "stats64": {
                "rx": {"bytes": 0, "packets": 0},
                "tx": {"bytes": 0, "packets": 0},
            },
        },
    ]
)

IW_DEV = """phy#0
\tInterface wlan0
\t\tifindex 9
\t\twdev 0x1
\t\taddr 60:a6:96:93:1d:58
\t\ttype managed
"""

# Recorded from babeld 1.12's local socket (header, then the dump answer).
BABEL_HEADER = (
    "BABEL 1.0\nversion babeld-1.12.1\nhost n1\nmy-id 60:a6:96:93:1d:58:de:a6\nok\n"
)
BABEL_DUMP = (
    "add interface byzt-n1-n2 up true ipv6 fe80::ecb4:ceff:fe4a:1d58 ipv4 10.99.0.1\n"
    "add neighbour 55ddeb663eb0 address fe80::8013:1cff:fe86:7291 if byzt-n1-n2 "
    "reach fff8 ureach 0000 rxcost 96 txcost 96 cost 96\n"
    "add xroute 10.99.0.1/32-0.0.0.0/0 prefix 10.99.0.1/32 from 0.0.0.0/0 metric 0\n"
    "add route 55ddeb664410 prefix 10.99.0.2/32 from 0.0.0.0/0 installed yes "
    "id 18:07:a0:d7:91:80:9a:14 metric 96 refmetric 0 "
    "via fe80::8013:1cff:fe86:7291 if byzt-n1-n2\n"
    "ok\n"
)


@pytest.fixture
def babel_socket(tmp_path):
    """A Unix socket that answers like babeld's read-only local socket."""
    path = tmp_path / "babeld.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _addr = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(BABEL_HEADER.encode())
                conn.settimeout(2)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(100)
                    if not chunk:
                        break
                    data += chunk
                if data.strip() == b"dump":
                    conn.sendall(BABEL_DUMP.encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    server.close()
    thread.join(timeout=2)


def _host(tmp_path: Path, *, ip_returncode: int = 0) -> tuple[Host, RecordingRunner]:
    runner = RecordingRunner()
    runner.answer(("ip", "-j", "-s", "-d", "addr", "show"), stdout=IP_ADDR)
    if ip_returncode:
        runner.answer(
            ("ip", "-j", "-s", "-d", "addr", "show"),
            stderr="Cannot open netlink socket",
            returncode=ip_returncode,
        )
    runner.answer(("iw", "dev"), stdout=IW_DEV)
    return Host(mode="dry-run", runner=runner, files=FileStore(tmp_path)), runner


def _uptime(tmp_path: Path, text: str = "273612.41 512345.12\n") -> Path:
    path = tmp_path / "uptime"
    path.write_text(text)
    return path


def test_status_is_collected_from_recorded_ip_and_babel_output(tmp_path, babel_socket):
    host, runner = _host(tmp_path)
    data = status.collect_status(
        host, babel_socket=babel_socket, uptime_path=_uptime(tmp_path)
    )
    assert ("ip", "-j", "-s", "-d", "addr", "show") in runner.argvs
    assert ("iw", "dev") in runner.argvs
    assert data["uptime_seconds"] == pytest.approx(273612.41)
    by_name = {iface["name"]: iface for iface in data["interfaces"]}
    assert set(by_name) == {"lo", "byzt-n1-n2", "wlan0"}
    veth = by_name["byzt-n1-n2"]
    assert veth["rx_bytes"] == 5_368_709 and veth["tx_packets"] == 12
    assert {a["address"] for a in veth["addresses"]} == {
        "10.99.0.1",
        "fe80::ecb4:ceff:fe4a:1d58",
    }
    assert by_name["wlan0"]["kind"] == "wireless"
    babel = data["babel"]
    assert babel["available"] is True
    assert babel["my_id"] == "60:a6:96:93:1d:58:de:a6"
    assert babel["route_count"] == 1
    [neighbour] = babel["neighbours"]
    assert neighbour["address"] == "fe80::8013:1cff:fe86:7291"
    assert neighbour["interface"] == "byzt-n1-n2"
    assert neighbour["cost"] == 96
    # The snapshot is stored as JSON: it must survive a round trip.
    assert json.loads(json.dumps(data)) == data


def test_babeld_not_running_is_reported_and_interfaces_still_collected(tmp_path):
    host, _runner = _host(tmp_path)
    data = status.collect_status(
        host, babel_socket=tmp_path / "missing.sock", uptime_path=_uptime(tmp_path)
    )
    assert data["babel"]["available"] is False
    assert "not running" in data["babel"]["error"]
    assert len(data["interfaces"]) == 3


def test_a_failing_ip_command_is_reported_not_raised(tmp_path):
    host, _runner = _host(tmp_path, ip_returncode=2)
    data = status.collect_status(
        host, babel_socket=tmp_path / "none.sock", uptime_path=_uptime(tmp_path)
    )
    assert data["interfaces"] == []
    assert "netlink" in data["interfaces_error"]


def test_unreadable_uptime_is_none(tmp_path):
    assert status.read_uptime(tmp_path / "nope") is None
    assert status.read_uptime(_uptime(tmp_path, "garbage")) is None


def test_iw_dev_output_gives_wireless_names():
    assert status.parse_iw_dev(IW_DEV) == frozenset({"wlan0"})
    assert status.parse_iw_dev("") == frozenset()


@pytest.mark.django_db
def test_sample_status_job_is_registered_and_stores_one_snapshot(
    tmp_path, babel_socket, monkeypatch
):
    from portal import jobs
    from portal.models import NodeStatus

    registry.load()
    entry = registry.get("portal.sample_status")
    assert entry is not None and entry.every == 15 and entry.routine
    host, _runner = _host(tmp_path)
    monkeypatch.setattr(jobs, "current_host", lambda: host)
    with override_settings(BABELD_SOCKET=babel_socket):
        summary = jobs.sample_status()
        jobs.sample_status()
    assert summary == {"interfaces": 3, "neighbours": 1, "babel": "ok"}
    assert NodeStatus.objects.count() == 1
    assert NodeStatus.latest().data["babel"]["neighbours"][0]["cost"] == 96


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, "—"),
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1536, "1.5 KiB"),
        (5_368_709, "5.1 MiB"),
        (150 * 1024**3, "150 GiB"),
    ],
)
def test_bytes_are_formatted_for_people(value, expected):
    with translation.override("en"):
        assert status.format_bytes(value) == expected


@pytest.mark.parametrize(
    "seconds,expected",
    [
        (None, "—"),
        (0, "0 seconds"),
        (1, "1 second"),
        (12, "12 seconds"),
        (125, "2 minutes 5 seconds"),
        (3600, "1 hour"),
        (86400 + 5 * 60, "1 day"),
        (3 * 86400 + 4 * 3600 + 59, "3 days 4 hours"),
    ],
)
def test_durations_are_formatted_for_people(seconds, expected):
    with translation.override("en"):
        assert status.format_duration(seconds) == expected


def test_numbers_follow_the_locale():
    with translation.override("fr"):
        # French puts a no-break space before the unit; any space will do.
        assert status.format_bytes(1536).replace("\xa0", " ") == "1,5 KiB"
