"""The command plans of :func:`gateway.apply.apply_gateway` and
:func:`gateway.apply.remove_gateway`, pinned argv by argv with the
recording runner; meshnet's own apply is replaced by a recorder (its plans
are pinned in meshnet's tests), so these tests see what the gateway asks of
it: the announcement, the upstreams, DNS for the mesh. The Tor helper's
module is a fake inserted into ``sys.modules``."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass

import pytest

from gateway import apply as gateway_apply
from gateway.apply import GatewayPlan, OnionChoice, UplinkConfig
from meshnet.apply import ApplyReport
from meshnet.state import InterfaceState, MeshState
from portal.host.errors import InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner

STATE = MeshState(
    node_name="n1",
    mesh_address="10.213.0.1",
    client_subnet="10.213.1.0/24",
    interfaces=(
        InterfaceState(name="to-n2", role="mesh", medium="wired"),
        InterfaceState(name="br-lan", role="clients", medium="wired"),
    ),
)
STATIC = UplinkConfig("up0", "static", "203.0.113.18/28", "203.0.113.17")
DIRECT = GatewayPlan(
    uplink=STATIC, sharing=True, online=True, upstream_servers=("198.51.100.53",)
)
ROUTE_SHOW = ("ip", "-j", "route", "show")
LIST_TABLE = ("nft", "-j", "list", "table", "ip", "byz_gateway")
OUR_ROUTE = json.dumps(
    [{"dst": "default", "gateway": "203.0.113.17", "dev": "up0", "metric": 1024}]
)


@pytest.fixture
def node(tmp_path, monkeypatch):
    runner = RecordingRunner(strict=True)
    runner.answer(("ip", "link", "set", "dev"))
    runner.answer(("ip", "address", "replace"))
    runner.answer(("ip", "address", "delete"))
    runner.answer(("ip", "-4", "address", "flush"))
    runner.answer(("ip", "route", "replace", "default"))
    runner.answer(ROUTE_SHOW, stdout="[]")
    runner.answer(("sysctl", "-n", "net.ipv4.ip_forward"), stdout="1\n")
    runner.answer(LIST_TABLE, returncode=1, stderr="No such file or directory")
    runner.answer(("nft", "-c", "-f"))
    runner.answer(("nft", "-f"))
    runner.answer(("nft", "delete", "table", "ip", "byz_gateway"))
    host = Host(mode="lab", runner=runner, files=FileStore(tmp_path))
    meshes: list[MeshState] = []

    def fake_apply_mesh(host_, state, *, tuning=None, upstream_servers=()):
        meshes.append(state)
        return ApplyReport()

    monkeypatch.setattr(gateway_apply, "apply_mesh", fake_apply_mesh)
    return types.SimpleNamespace(host=host, runner=runner, meshes=meshes, root=tmp_path)


def _real(node, path):
    return str(node.root / path.lstrip("/"))


def test_direct_sharing_configures_the_uplink_loads_the_nat_and_announces(node):
    report = gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    assert node.runner.argvs == [
        ("ip", "link", "set", "dev", "up0", "up"),
        ("ip", "address", "replace", "203.0.113.18/28", "dev", "up0"),
        ROUTE_SHOW,
        ("ip", "route", "replace", "default", "via", "203.0.113.17", "dev", "up0",
         "metric", "1024"),
        ("sysctl", "-n", "net.ipv4.ip_forward"),
        # no NAT file yet: nothing to compare, so no need to list the table
        ("nft", "-c", "-f", _real(node, gateway_apply.NAT_CHECK_FILE)),
        ("nft", "-f", _real(node, gateway_apply.NAT_FILE)),
    ]  # fmt: skip
    text = node.host.files.read_text(gateway_apply.NAT_FILE)
    assert 'oifname "up0" ip saddr @mesh_networks masquerade' in text
    assert not node.host.files.exists(gateway_apply.NAT_CHECK_FILE)
    (mesh,) = node.meshes
    assert mesh.announce_default_route and mesh.dns_for_mesh
    assert mesh.upstream_servers == ("198.51.100.53",)
    assert "loaded the NAT table" in report.steps
    record = json.loads(node.host.files.read_text(gateway_apply.APPLIED_RECORD))
    assert record["nat"] is True and record["uplink"]["interface"] == "up0"


def test_applying_again_reads_but_changes_nothing(node):
    gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    node.runner.commands.clear()
    node.runner.answer(ROUTE_SHOW, stdout=OUR_ROUTE)
    node.runner.answer(LIST_TABLE, stdout='{"nftables": []}')
    report = gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    assert node.runner.argvs == [
        ("ip", "link", "set", "dev", "up0", "up"),
        ("ip", "address", "replace", "203.0.113.18/28", "dev", "up0"),
        ROUTE_SHOW,
        ("sysctl", "-n", "net.ipv4.ip_forward"),
        LIST_TABLE,
    ]
    assert report.steps == []


def test_an_offline_uplink_keeps_the_nat_but_announces_nothing(node):
    offline = GatewayPlan(uplink=STATIC, sharing=True, online=False)
    gateway_apply.apply_gateway(node.host, offline, STATE)
    (mesh,) = node.meshes
    assert not mesh.announce_default_route and not mesh.dns_for_mesh
    assert ("nft", "-f", _real(node, gateway_apply.NAT_FILE)) in node.runner.argvs


def test_sharing_off_removes_exactly_the_table_the_route_and_the_upstreams(node):
    gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    node.runner.commands.clear()
    node.meshes.clear()
    node.runner.answer(ROUTE_SHOW, stdout=OUR_ROUTE)
    off = GatewayPlan(uplink=STATIC, sharing=False, online=True)
    report = gateway_apply.apply_gateway(node.host, off, STATE)
    assert node.runner.argvs == [
        ("ip", "link", "set", "dev", "up0", "up"),
        ("ip", "address", "replace", "203.0.113.18/28", "dev", "up0"),
        ROUTE_SHOW,
        ("nft", "delete", "table", "ip", "byz_gateway"),
    ]
    assert not node.host.files.exists(gateway_apply.NAT_FILE)
    (mesh,) = node.meshes
    assert not mesh.announce_default_route and mesh.upstream_servers == ()
    assert report.steps == ["removed the NAT table"]


def test_remove_takes_back_the_uplink_address_too(node):
    gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    node.runner.commands.clear()
    node.runner.answer(LIST_TABLE, stdout='{"nftables": []}')
    gateway_apply.remove_gateway(node.host, STATE)
    assert node.runner.argvs == [
        ("nft", "delete", "table", "ip", "byz_gateway"),
        ("ip", "address", "delete", "203.0.113.18/28", "dev", "up0"),
    ]
    assert json.loads(node.host.files.read_text(gateway_apply.APPLIED_RECORD)) == {}
    assert not node.meshes[-1].announce_default_route


def test_a_new_uplink_releases_the_old_one_first(node):
    gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    node.runner.commands.clear()
    other = UplinkConfig("eth1", "static", "192.0.2.10/24", "192.0.2.1")
    gateway_apply.apply_gateway(
        node.host, GatewayPlan(uplink=other, sharing=False), STATE
    )
    assert node.runner.argvs[:2] == [
        ("ip", "address", "delete", "203.0.113.18/28", "dev", "up0"),
        ("ip", "link", "set", "dev", "eth1", "up"),
    ]


def test_dhcp_starts_the_portals_own_dhclient_with_a_hook_of_its_own(node):
    node.runner.answer(("dhclient",))
    plan = GatewayPlan(uplink=UplinkConfig("usb0"), sharing=False)
    report = gateway_apply.apply_gateway(node.host, plan, STATE)
    folder = node.root / gateway_apply.DHCP_FOLDER.lstrip("/")
    assert node.runner.argvs == [
        ("ip", "link", "set", "dev", "usb0", "up"),
        ("dhclient", "-4", "-1", "-cf", f"{folder}/dhclient.conf",
         "-lf", f"{folder}/dhclient.leases", "-pf", f"{folder}/dhclient.pid",
         "-sf", f"{folder}/dhclient-hook", "usb0"),
        LIST_TABLE,
    ]  # fmt: skip
    hook = (folder / "dhclient-hook").read_text()
    assert str(folder / "resolv.conf") in hook and "/etc/resolv.conf" not in hook
    assert "route_metric=1024" in hook
    assert report.steps[0] == "asked for an address on usb0 by DHCP"


@pytest.mark.parametrize(
    "uplink",
    [
        UplinkConfig("up0; reboot"),
        UplinkConfig("$(reboot)"),
        UplinkConfig("up0\nflush"),
        UplinkConfig("ëth0"),
        UplinkConfig("x" * 40),
        UplinkConfig("up0", "static", "203.0.113.18", "203.0.113.17"),
        UplinkConfig("up0", "static", "203.0.113.18/28", "198.51.100.1"),
        UplinkConfig("up0", "static", "203.0.113.18/28", "203.0.113.18"),
        UplinkConfig("up0", "static", "203.0.113.18/31", "203.0.113.19"),
        UplinkConfig("up0", "static", "not an address", ""),
        UplinkConfig("up0", "pppoe"),
    ],
)
def test_hostile_or_wrong_uplink_values_change_nothing(node, uplink):
    with pytest.raises(InvalidValue):
        gateway_apply.apply_gateway(
            node.host, GatewayPlan(uplink=uplink, sharing=True), STATE
        )
    assert node.runner.argvs == [] and node.meshes == []


def test_a_ruleset_nft_refuses_is_not_loaded(node):
    node.runner.answer(("nft", "-c", "-f"), returncode=1, stderr="Error: syntax")
    with pytest.raises(gateway_apply.GatewayApplyError, match="nft refused"):
        gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    assert ("nft", "-f", _real(node, gateway_apply.NAT_FILE)) not in node.runner.argvs
    assert node.meshes == []


# -- Tor wiring (the Tor helper's module is a fake here) ---------------------


@dataclass(frozen=True)
class FakeOnion:
    name: str
    virtual_port: int
    target: str


@dataclass(frozen=True)
class FakeTorPlan:
    client_networks: tuple[str, ...]
    listen_address: str
    uplink_interface: str
    trans_port: int = 9040
    dns_port: int = 9053
    onion_services: tuple[FakeOnion, ...] = ()


@pytest.fixture
def fake_tor(monkeypatch):
    calls: list[tuple[str, object]] = []
    module = types.ModuleType("gateway.tor")
    module.TorPlan = FakeTorPlan
    module.OnionService = FakeOnion
    module.apply_tor = lambda host, plan: calls.append(("apply", plan))
    module.remove_tor = lambda host: calls.append(("remove", None))
    monkeypatch.setitem(sys.modules, "gateway.tor", module)
    return calls


TOR = GatewayPlan(
    uplink=STATIC,
    sharing=True,
    online=True,
    tor=True,
    onion_services=(OnionChoice("ircd", 6667),),
    upstream_servers=("10.213.1.1#9053",),
)


def test_tor_mode_hands_the_tor_helper_its_plan_and_loads_no_nat(node, fake_tor):
    gateway_apply.apply_gateway(node.host, TOR, STATE)
    ((what, plan),) = fake_tor
    assert what == "apply"
    assert plan == FakeTorPlan(
        client_networks=("10.0.0.0/8",),
        listen_address="10.213.1.1",
        uplink_interface="up0",
        onion_services=(FakeOnion("ircd", 6667, "10.213.1.1:6667"),),
    )
    assert not any(argv[:2] == ("nft", "-f") for argv in node.runner.argvs)
    (mesh,) = node.meshes
    assert mesh.announce_default_route  # still the mesh's way out
    assert mesh.upstream_servers == ("10.213.1.1#9053",)


def test_tor_off_calls_remove_tor_then_restores_direct_mode(node, fake_tor):
    gateway_apply.apply_gateway(node.host, TOR, STATE)
    fake_tor.clear()
    gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    assert fake_tor == [("remove", None)]
    assert ("nft", "-f", _real(node, gateway_apply.NAT_FILE)) in node.runner.argvs


def test_switching_from_direct_to_tor_deletes_our_nat_table(node, fake_tor):
    gateway_apply.apply_gateway(node.host, DIRECT, STATE)
    node.runner.commands.clear()
    gateway_apply.apply_gateway(node.host, TOR, STATE)
    assert ("nft", "delete", "table", "ip", "byz_gateway") in node.runner.argvs
    assert fake_tor[0][0] == "apply"


def test_without_the_tor_module_tor_mode_fails_clearly(node, monkeypatch):
    monkeypatch.setitem(sys.modules, "gateway.tor", None)
    with pytest.raises(gateway_apply.GatewayApplyError, match="Tor mode"):
        gateway_apply.apply_gateway(node.host, TOR, STATE)
    assert node.runner.argvs == []
