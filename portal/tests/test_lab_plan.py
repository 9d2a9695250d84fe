"""Unit tests of the lab's plan and its builders: no root, nothing runs."""

from pathlib import Path

import pytest

from portal.host.builders import babeld, dhclient, dnsmasq, link, netns, process
from portal.host.errors import CommandNotAllowed, InvalidValue
from portal.lab import dhcp_hook
from portal.lab.spec import (
    LabSpec,
    client_gateway,
    client_subnet,
    mesh_address,
    parse_member,
    topology_edges,
)

LAB = Path("/var/lib/byz/lab/byz")


def test_netns_builders_pin_their_argv():
    assert netns.add("byz-n1").argv == ("ip", "netns", "add", "byz-n1")
    assert netns.delete("byz-n1").argv == ("ip", "netns", "delete", "byz-n1")
    assert netns.list_all().argv == ("ip", "-j", "netns", "list")
    assert netns.pids("byz-c1").argv == ("ip", "netns", "pids", "byz-c1")
    assert netns.sysctl_set("net.ipv4.ip_forward", 1).argv == (
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ip_forward=1",
    )


def test_sysctl_outside_net_is_refused():
    with pytest.raises(InvalidValue):
        netns.sysctl_set("kernel.core_pattern", 1)
    with pytest.raises(InvalidValue):
        netns.sysctl_set("net.ipv4.ip_forward=1 kernel.x", 1)


def test_veth_is_created_directly_inside_both_namespaces():
    command = link.veth_between_namespaces("to-n2", "byz-n1", "to-n1", "byz-n2")
    assert command.argv == (
        "ip",
        "link",
        "add",
        "to-n2",
        "netns",
        "byz-n1",
        "type",
        "veth",
        "peer",
        "name",
        "to-n1",
        "netns",
        "byz-n2",
    )


def test_link_builders_pin_their_argv():
    assert link.bridge_add("br-lan").argv == (
        "ip",
        "link",
        "add",
        "name",
        "br-lan",
        "type",
        "bridge",
    )
    assert link.set_up("to-n2").argv == ("ip", "link", "set", "dev", "to-n2", "up")
    assert link.set_master("cl-c1", "br-lan").argv == (
        "ip",
        "link",
        "set",
        "dev",
        "cl-c1",
        "master",
        "br-lan",
    )
    assert link.address_add("lo", "10.213.0.1/32").argv == (
        "ip",
        "address",
        "add",
        "10.213.0.1/32",
        "dev",
        "lo",
    )
    assert link.address_replace("eth0", "10.213.1.120/24").argv == (
        "ip",
        "address",
        "replace",
        "10.213.1.120/24",
        "dev",
        "eth0",
    )
    assert link.address_flush_ipv4("eth0").argv == (
        "ip",
        "-4",
        "address",
        "flush",
        "dev",
        "eth0",
    )
    assert link.default_route_replace("10.213.1.1", "eth0").argv == (
        "ip",
        "route",
        "replace",
        "default",
        "via",
        "10.213.1.1",
        "dev",
        "eth0",
    )
    assert link.show_addresses().argv == ("ip", "-j", "address", "show")
    assert link.show_ipv4_routes().argv == ("ip", "-j", "-4", "route", "show")
    assert link.show_link_details("eth0").argv == (
        "ip",
        "-j",
        "-d",
        "link",
        "show",
        "dev",
        "eth0",
    )


@pytest.mark.parametrize("bad", ["eth0; reboot", "a" * 16, "$(id)", "", "../x"])
def test_link_builders_refuse_bad_interface_names(bad):
    with pytest.raises(InvalidValue):
        link.set_up(bad)


def test_process_signal_by_pid_only():
    assert process.send_signal(1234).argv == ("kill", "-s", "TERM", "1234")
    assert process.send_signal(1234, "KILL").argv == ("kill", "-s", "KILL", "1234")
    with pytest.raises(InvalidValue):
        process.send_signal(1234, "STOP; rm")
    with pytest.raises(InvalidValue):
        process.send_signal(-1)


def _lab_node_state(node, spec):
    """The lab's MeshState of ``node`` (Lab.node_state needs no system)."""
    from portal.lab import Lab

    return Lab(prefix="byz", base_dir=LAB).node_state(node, spec)


def test_lab_node_state_is_the_address_plan_as_portal_data():
    state = _lab_node_state("n2", LabSpec(nodes=3, topology="line"))
    assert state.mesh_address == "10.213.0.2"
    assert state.client_subnet == "10.213.2.0/24"
    assert [i.name for i in state.mesh_interfaces] == ["to-n1", "to-n3"]
    assert [i.name for i in state.client_interfaces] == ["br-lan"]


def test_lab_babeld_config_is_the_portals_with_lab_timers():
    from meshnet import babel_config
    from meshnet.apply import LAB_TUNING
    from portal.host.files import FileStore

    state = _lab_node_state("n1", LabSpec(nodes=3, topology="ring"))
    text = babel_config.render(state, FileStore(LAB / "n1" / "root"), LAB_TUNING.babel)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "local-path /var/lib/byz/lab/byz/n1/root/run/byzantium/babeld.sock",
        "pid-file /var/lib/byz/lab/byz/n1/root/run/byzantium/babeld.pid",
        "state-file /var/lib/byz/lab/byz/n1/root/var/lib/byzantium/babeld.state",
        "log-file /var/lib/byz/lab/byz/n1/root/var/log/byzantium/babeld.log",
        "default hello-interval 0.5",
        "default split-horizon false",
        "interface to-n2 type wired",
        "interface to-n3 type wired",
        "redistribute local ip 10.213.0.1/32 allow",
        "redistribute ip 10.213.1.0/24 eq 24 allow",
        "redistribute local deny",
        "redistribute deny",
    ]


def test_lab_dnsmasq_config_serves_only_the_client_bridge_without_ping():
    from meshnet import dnsmasq_config
    from meshnet.apply import LAB_TUNING
    from portal.host.files import FileStore

    state = _lab_node_state("n2", LabSpec(nodes=3))
    text = dnsmasq_config.render(state, FileStore(LAB / "n2" / "root"), LAB_TUNING.dhcp)
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("interface=")] == [
        "interface=br-lan"
    ]
    assert "dhcp-range=10.213.2.2,10.213.2.254,255.255.255.0,3600" in lines
    assert "dhcp-option=option:router,10.213.2.1" in lines
    assert lines[-1] == "no-ping"


def test_babeld_start_argv_daemonises_with_its_config():
    command = babeld.start(LAB / "n1" / "babeld.conf")
    assert command.argv == ("babeld", "-D", "-c", "/var/lib/byz/lab/byz/n1/babeld.conf")
    # babeld closes its streams when it forks: its parse errors are read.
    assert not command.detach


def test_dnsmasq_argv_tests_then_starts_the_same_file():
    conf = LAB / "n2" / "dnsmasq.conf"
    assert dnsmasq.test_config(conf).argv == (
        "dnsmasq",
        "--test",
        "--conf-file=/var/lib/byz/lab/byz/n2/dnsmasq.conf",
    )
    assert dnsmasq.start(conf).argv == (
        "dnsmasq",
        "--conf-file=/var/lib/byz/lab/byz/n2/dnsmasq.conf",
    )


def test_dhclient_argv_names_every_file_and_its_own_script():
    config = dhclient.DhclientConfig(
        host_name="c1", folder=LAB / "c1", interface="eth0"
    )
    assert dhclient.start(config).argv == (
        "dhclient",
        "-4",
        "-1",
        "-cf",
        "/var/lib/byz/lab/byz/c1/dhclient.conf",
        "-lf",
        "/var/lib/byz/lab/byz/c1/dhclient.leases",
        "-pf",
        "/var/lib/byz/lab/byz/c1/dhclient.pid",
        "-sf",
        "/var/lib/byz/lab/byz/c1/dhclient-hook",
        "eth0",
    )
    assert 'send host-name "c1";' in dhclient.render_config(config)
    with pytest.raises(InvalidValue):
        dhclient.render_config(
            dhclient.DhclientConfig(host_name='c1"; x', folder=LAB, interface="eth0")
        )


def test_builders_only_make_allow_listed_commands():
    with pytest.raises(CommandNotAllowed):
        from portal.host.commands import Command

        Command(("sh", "-c", "true"))


def test_topologies_give_expected_links():
    assert topology_edges("line", 4) == [(1, 2), (2, 3), (3, 4)]
    assert topology_edges("ring", 4) == [(1, 2), (2, 3), (3, 4), (1, 4)]
    assert topology_edges("ring", 2) == [(1, 2)]
    assert topology_edges("line", 1) == []
    # 5 nodes: rows of ceil(sqrt(5)) = 3: [1 2 3] / [4 5]
    assert sorted(topology_edges("grid", 5)) == [(1, 2), (1, 4), (2, 3), (2, 5), (4, 5)]
    assert len(topology_edges("grid", 9)) == 12


def test_spec_validates_and_deals_clients_round_the_nodes():
    spec = LabSpec(nodes=3, clients=4)
    assert [spec.node_of_client(c) for c in spec.client_names] == [
        "n1",
        "n2",
        "n3",
        "n1",
    ]
    with pytest.raises(InvalidValue):
        LabSpec(nodes=0)
    with pytest.raises(InvalidValue):
        LabSpec(topology="star")
    with pytest.raises(InvalidValue):
        LabSpec(clients=-1)


def test_address_plan_is_deterministic_and_disjoint():
    assert str(mesh_address("n7")) == "10.213.0.7"
    assert str(client_subnet("n7")) == "10.213.7.0/24"
    assert str(client_gateway("n7")) == "10.213.7.1"
    subnets = {client_subnet(f"n{i}") for i in range(1, 65)}
    assert len(subnets) == 64
    assert not any(mesh_address("n1") in subnet for subnet in subnets)


@pytest.mark.parametrize(
    ("text", "member"),
    [("n1", "n1"), ("node-1", "n1"), ("c2", "c2"), ("client-12", "c12"), ("N3", "n3")],
)
def test_member_names_accept_short_and_long_forms(text, member):
    assert parse_member(text) == member


@pytest.mark.parametrize("text", ["x1", "n", "node1", "n1;ls", "host", "n0", "../n1"])
def test_member_names_refuse_anything_else(text):
    with pytest.raises(InvalidValue):
        parse_member(text)


def test_dhcp_hook_never_writes_the_machines_resolv_conf(tmp_path):
    with pytest.raises(ValueError):
        dhcp_hook.write_resolv_conf(Path("/etc/resolv.conf"), ["10.213.1.1"], "lab")
    target = tmp_path / "resolv.conf"
    dhcp_hook.write_resolv_conf(target, ["10.213.1.1"], "lab")
    assert target.read_text().splitlines()[1:] == [
        "nameserver 10.213.1.1",
        "search lab",
    ]


def test_dhcp_hook_launcher_runs_the_lab_hook_in_isolated_mode(tmp_path):
    text = dhcp_hook.render_launcher(tmp_path / "resolv.conf")
    assert text.startswith("#!") and text.splitlines()[0].endswith(" -I")
    assert "from portal.lab.dhcp_hook import main" in text
    assert str(tmp_path / "resolv.conf") in text
