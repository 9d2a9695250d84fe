"""The command plan of apply_mesh, pinned with a RecordingRunner (no root).

The runner answers the read commands (``ip -j addr``, ``sysctl -n``) as a
fresh node would, or as a node already configured would, and the tests
pin every mutating argv in order.
"""

import json
from pathlib import Path

import pytest

from meshnet import apply as mesh_apply
from meshnet.apply import LAB_TUNING, MeshApplyError, apply_mesh
from meshnet.state import InterfaceState, MeshState
from portal.host.builders import batctl
from portal.host.errors import InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner

READS = {"ip", "sysctl"}


def _state(**changes):
    values = {
        "node_name": "alpha",
        "mesh_address": "10.42.0.7",
        "client_subnet": "10.42.7.0/24",
        "interfaces": (
            InterfaceState(name="wlan0", role="mesh", medium="ibss"),
            InterfaceState(name="br-lan", role="clients", medium="wired"),
        ),
    }
    values.update(changes)
    return MeshState(**values)


def _link(name, up=False, addresses=()):
    return {
        "ifname": name,
        "ifindex": 1,
        "flags": ["BROADCAST", "UP"] if up else ["BROADCAST"],
        "operstate": "UP" if up else "DOWN",
        "addr_info": [
            {
                "family": "inet",
                "local": a.split("/")[0],
                "prefixlen": int(a.split("/")[1]),
            }
            for a in addresses
        ],
    }


def _host(tmp_path, links, sysctls=None):
    runner = RecordingRunner(strict=True)
    runner.answer(("ip", "-j", "-s", "-d", "addr", "show"), stdout=json.dumps(links))
    for key, value in (sysctls or {}).items():
        runner.answer(("sysctl", "-n", key), stdout=f"{value}\n")
    for prefix in (
        ("ip", "address"),
        ("ip", "link", "set"),
        ("sysctl", "-w"),
        ("iw",),
        ("dnsmasq",),
        ("babeld",),
        ("kill",),
    ):
        runner.answer(prefix)
    return Host(mode="dry-run", runner=runner, files=FileStore(tmp_path))


FRESH_SYSCTLS = {
    "net.ipv4.ip_forward": 0,
    "net.ipv6.conf.wlan0.disable_ipv6": 1,
}
FRESH_LINKS = [
    _link("lo", up=True, addresses=["127.0.0.1/8"]),
    _link("wlan0"),
    _link("br-lan"),
]


def _changes(runner):
    return [
        argv
        for argv in runner.argvs
        if argv[:2] not in (("ip", "-j"), ("sysctl", "-n"))
    ]


def test_fresh_node_gets_links_addresses_switches_and_both_daemons(tmp_path):
    host = _host(tmp_path, FRESH_LINKS, FRESH_SYSCTLS)
    report = apply_mesh(host, _state(), tuning=LAB_TUNING)
    root = str(tmp_path)
    assert _changes(host.runner) == [
        # The link layer: the radio joins the IBSS cell with the defaults.
        ("ip", "link", "set", "dev", "wlan0", "down"),
        ("iw", "dev", "wlan0", "set", "type", "ibss"),
        ("ip", "link", "set", "dev", "wlan0", "up"),
        (
            "iw",
            "dev",
            "wlan0",
            "ibss",
            "join",
            "commotionwireless.net",
            "2432",
            "fixed-freq",
            "02:ca:ff:ee:ba:be",
        ),
        ("ip", "link", "set", "dev", "br-lan", "up"),
        # The recorded node still reads as fresh (links down), so the routing
        # part sets them up too; on a real node they read as up by then.
        ("ip", "link", "set", "dev", "wlan0", "up"),
        ("ip", "link", "set", "dev", "br-lan", "up"),
        ("ip", "address", "replace", "10.42.0.7/32", "dev", "lo"),
        ("ip", "address", "replace", "10.42.7.1/24", "dev", "br-lan"),
        ("sysctl", "-w", "net.ipv4.ip_forward=1"),
        ("sysctl", "-w", "net.ipv6.conf.wlan0.disable_ipv6=0"),
        ("dnsmasq", "--test", f"--conf-file={root}/run/byzantium/dnsmasq-check.conf"),
        ("dnsmasq", f"--conf-file={root}/etc/byzantium/dnsmasq.conf"),
        ("babeld", "-D", "-c", f"{root}/etc/byzantium/babeld.conf"),
    ]
    assert report.babeld == "started" and report.dnsmasq == "started"
    babel = (tmp_path / "etc/byzantium/babeld.conf").read_text()
    assert "interface wlan0 type wireless" in babel
    assert "default hello-interval 0.5" in babel
    dns = (tmp_path / "etc/byzantium/dnsmasq.conf").read_text()
    assert "interface=br-lan" in dns and "no-ping" in dns
    assert (tmp_path / "etc/byzantium/mesh-hosts").exists()
    assert not (tmp_path / "run/byzantium/dnsmasq-check.conf").exists()
    record = json.loads((tmp_path / "var/lib/byzantium/mesh-applied.json").read_text())
    assert record == {"addresses": {"10.42.0.7/32": "lo", "10.42.7.1/24": "br-lan"}}


def test_configured_node_only_reads(tmp_path, monkeypatch):
    host = _host(tmp_path, FRESH_LINKS, FRESH_SYSCTLS)
    apply_mesh(host, _state())
    # The node as the first apply left it; both daemons running on our files.
    links = [
        _link("lo", up=True, addresses=["127.0.0.1/8", "10.42.0.7/32"]),
        _link("wlan0", up=True),
        _link("br-lan", up=True, addresses=["10.42.7.1/24"]),
    ]
    sysctls = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.wlan0.disable_ipv6": 0}
    again = _host(tmp_path, links, sysctls)
    monkeypatch.setattr(mesh_apply, "running_pid", lambda host, daemon: 4242)
    written = []
    from portal.host import log

    with log.recording_to(written.append):
        report = apply_mesh(again, _state())
    assert _changes(again.runner) == []
    assert not report.changed
    assert report.babeld == "unchanged" and report.dnsmasq == "unchanged"
    assert all(not r.get("changed") for r in written if r["type"] == "write")


def test_changed_address_replaces_the_old_one_and_restarts_babeld(
    tmp_path, monkeypatch
):
    host = _host(tmp_path, FRESH_LINKS, FRESH_SYSCTLS)
    apply_mesh(host, _state())
    links = [
        _link("lo", up=True, addresses=["127.0.0.1/8", "10.42.0.7/32", "10.99.0.1/32"]),
        _link("wlan0", up=True),
        _link("br-lan", up=True, addresses=["10.42.7.1/24"]),
    ]
    sysctls = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.wlan0.disable_ipv6": 0}
    again = _host(tmp_path, links, sysctls)
    monkeypatch.setattr(mesh_apply, "running_pid", lambda host, daemon: 4242)
    report = apply_mesh(again, _state(mesh_address="10.42.0.9"))
    assert _changes(again.runner) == [
        # Only what this function applied before is removed, never 10.99.0.1.
        ("ip", "address", "delete", "10.42.0.7/32", "dev", "lo"),
        ("ip", "address", "replace", "10.42.0.9/32", "dev", "lo"),
        ("kill", "-s", "TERM", "4242"),
        ("babeld", "-D", "-c", f"{tmp_path}/etc/byzantium/babeld.conf"),
    ]
    assert report.babeld == "restarted" and report.dnsmasq == "unchanged"


def test_daemons_no_longer_wanted_are_stopped(tmp_path, monkeypatch):
    host = _host(tmp_path, FRESH_LINKS, FRESH_SYSCTLS)
    monkeypatch.setattr(mesh_apply, "running_pid", lambda host, daemon: 4242)
    report = apply_mesh(
        host, _state(mesh_address=None, client_subnet="", interfaces=())
    )
    assert [argv for argv in _changes(host.runner) if argv[0] == "kill"] == [
        ("kill", "-s", "TERM", "4242"),
        ("kill", "-s", "TERM", "4242"),
    ]
    assert report.babeld == "stopped" and report.dnsmasq == "stopped"


def test_dnsmasq_refusing_its_config_stops_the_apply_with_its_reason(tmp_path):
    host = _host(tmp_path, FRESH_LINKS, FRESH_SYSCTLS)
    host.runner.answer(
        ("dnsmasq", "--test"), returncode=1, stderr="dnsmasq: bad option at line 3"
    )
    with pytest.raises(MeshApplyError, match="bad option at line 3"):
        apply_mesh(host, _state())
    assert not (tmp_path / "etc/byzantium/dnsmasq.conf").exists()
    assert not any(argv[0] == "babeld" for argv in host.runner.argvs)


def test_hostile_value_changes_nothing(tmp_path):
    host = _host(tmp_path, FRESH_LINKS, FRESH_SYSCTLS)
    bad = _state(
        interfaces=(InterfaceState(name="wlan0;reboot", role="mesh", medium="ibss"),)
    )
    with pytest.raises(InvalidValue):
        apply_mesh(host, bad)
    assert host.runner.argvs == []
    assert not any(Path(tmp_path).rglob("*"))


def test_batman_adv_plans_bat0_and_routes_over_it(tmp_path, monkeypatch):
    monkeypatch.setattr(batctl, "module_loaded", lambda sys_module=None: True)
    host = _host(
        tmp_path,
        FRESH_LINKS,
        {"net.ipv4.ip_forward": 1, "net.ipv6.conf.bat0.disable_ipv6": 0},
    )
    host.runner.answer(("ip", "link", "add"))
    host.runner.answer(("batctl", "meshif", "bat0", "interface"), stdout="")
    host.runner.answer(("batctl", "meshif", "bat0", "interface", "add"))
    apply_mesh(host, _state(protocol="batman-adv"))
    changes = _changes(host.runner)
    # The radio joins its cell first (link layer), then goes under bat0.
    assert ("iw", "dev", "wlan0", "set", "type", "ibss") in changes
    start = changes.index(("ip", "link", "add", "name", "bat0", "type", "batadv"))
    assert changes.index(("iw", "dev", "wlan0", "set", "type", "ibss")) < start
    assert changes[start : start + 3] == [
        ("ip", "link", "add", "name", "bat0", "type", "batadv"),
        ("batctl", "meshif", "bat0", "interface"),
        ("batctl", "meshif", "bat0", "interface", "add", "wlan0"),
    ]
    assert ("ip", "link", "set", "dev", "bat0", "up") in changes
    assert (
        "interface bat0 type wired"
        in (tmp_path / "etc/byzantium/babeld.conf").read_text()
    )


def test_batman_adv_without_its_kernel_module_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(batctl, "module_loaded", lambda sys_module=None: False)
    host = _host(tmp_path, FRESH_LINKS, FRESH_SYSCTLS)
    host.runner.answer(("modprobe",), returncode=1, stderr="FATAL: Module not found")
    with pytest.raises(MeshApplyError, match="batman-adv kernel module is missing"):
        apply_mesh(host, _state(protocol="batman-adv"))
    assert not any(argv[0] in ("babeld", "dnsmasq") for argv in host.runner.argvs)


def test_refresh_dnsmasq_renders_checks_and_restarts_dnsmasq_alone(tmp_path):
    from meshnet.apply import refresh_dnsmasq

    host = _host(tmp_path, FRESH_LINKS, FRESH_SYSCTLS)
    api = "http://10.42.7.1:8081/captive/api"
    outcome = refresh_dnsmasq(host, _state(captive_portal_api=api), tuning=LAB_TUNING)
    root = str(tmp_path)
    assert outcome == "started"
    assert _changes(host.runner) == [
        ("dnsmasq", "--test", f"--conf-file={root}/run/byzantium/dnsmasq-check.conf"),
        ("dnsmasq", f"--conf-file={root}/etc/byzantium/dnsmasq.conf"),
    ]
    dns = (tmp_path / "etc/byzantium/dnsmasq.conf").read_text()
    assert f'dhcp-option=114,"{api}"' in dns
    assert f"addn-hosts={root}/etc/byzantium/captive-probe-hosts" in dns
    # dnsmasq gets an (empty) probe hosts file rather than an error.
    assert (tmp_path / "etc/byzantium/captive-probe-hosts").exists()
    assert (tmp_path / "etc/byzantium/mesh-hosts").exists()


def test_refresh_dnsmasq_without_a_client_subnet_touches_nothing(tmp_path):
    from meshnet.apply import refresh_dnsmasq

    host = _host(tmp_path, FRESH_LINKS)
    assert refresh_dnsmasq(host, _state(client_subnet="")) == "not wanted"
    assert host.runner.argvs == []
