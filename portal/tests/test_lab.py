"""The lab for real: namespaces, veth links, babeld, dnsmasq and dhclient.

Tests that only read a lab share one 5-node line (built once per module);
tests that build or destroy their own use ``make_lab``.
"""

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from portal.config import REPO_DIR
from portal.lab import Lab, LabSpec, list_namespaces
from portal.lab.lab import LabError, pid_alive
from portal.lab.pytest_plugin import clean_stale_test_labs, labs_root, new_test_lab
from portal.lab.spec import client_gateway, client_subnet, mesh_address

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def line5(make_module_lab):
    return make_module_lab(nodes=5, topology="line", clients=2)


def _routes(lab, node):
    return {str(prefix) for prefix in lab.routes(node)}


def test_five_nodes_in_a_line_converge(line5):
    for node in line5.spec().node_names:
        routes = _routes(line5, node)
        for other in line5.spec().node_names:
            if other != node:
                assert f"{mesh_address(other)}/32" in routes
                assert str(client_subnet(other)) in routes
    print(
        f"\n5 nodes (line) converged {line5.converged_after:.2f} s after babeld started"
    )
    assert line5.converged_after < 30


def test_babel_routes_are_installed_by_babeld(line5):
    result = line5.exec(
        "n1", ["ip", "-j", "-4", "route", "show", "proto", "babel"], capture=True
    )
    babel = {entry["dst"] for entry in json.loads(result.stdout)}
    assert "10.213.0.5" in babel and "10.213.5.0/24" in babel
    # Nothing but the nodes' own prefixes is announced into the mesh.
    for dst in babel:
        network = ipaddress.ip_network(dst)
        assert network.prefixlen in (24, 32)
        assert network.subnet_of(ipaddress.ip_network("10.213.0.0/16"))


def test_client_takes_a_dhcp_lease_from_its_node(line5):
    status = line5.status()
    client = status.member("c1")
    assert client.node == "n1"
    address = ipaddress.ip_interface(client.address)
    assert address.network == client_subnet("n1")
    leases = line5.node_path("n1", "/var/lib/byzantium/dnsmasq.leases").read_text()
    assert str(address.ip) in leases and " c1 " in leases
    route = line5.exec("c1", ["ip", "-j", "route", "show", "default"], capture=True)
    assert json.loads(route.stdout)[0]["gateway"] == str(client_gateway("n1"))
    ping = line5.exec("c1", ["ping", "-c", "1", "-W", "2", str(client_gateway("n1"))])
    assert ping.returncode == 0


def test_second_client_sits_on_the_second_node(line5):
    client = line5.status().member("c2")
    assert client.node == "n2"
    assert ipaddress.ip_interface(client.address).network == client_subnet("n2")


def test_client_reaches_the_far_end_of_the_mesh(line5):
    ping = line5.exec("c1", ["ping", "-c", "1", "-W", "2", str(mesh_address("n5"))])
    assert ping.returncode == 0
    ping = line5.exec("c1", ["ping", "-c", "1", "-W", "2", str(client_gateway("n5"))])
    assert ping.returncode == 0


def test_client_dns_comes_from_the_lease_and_never_from_the_machine(line5):
    machine_before = Path("/etc/resolv.conf").read_bytes()
    inside = line5.exec("c1", ["cat", "/etc/resolv.conf"], capture=True).stdout
    assert f"nameserver {client_gateway('n1')}" in inside
    assert Path("/etc/resolv.conf").read_bytes() == machine_before
    assert "10.213." not in machine_before.decode(errors="replace")


def test_status_lists_namespaces_links_and_live_daemons(line5):
    status = line5.status()
    prefix = line5.prefix
    assert status.namespaces == [f"{prefix}-n{i}" for i in range(1, 6)] + [
        f"{prefix}-c1",
        f"{prefix}-c2",
    ]
    assert status.links == [
        ("n1", "n2"),
        ("n1", "c1"),
        ("n2", "n3"),
        ("n2", "c2"),
        ("n3", "n4"),
        ("n4", "n5"),
    ]
    programs = sorted({daemon.program for _, daemon in status.daemons})
    assert programs == ["babeld", "dhclient", "dnsmasq"]
    assert all(daemon.alive and daemon.pid for _, daemon in status.daemons)
    n1 = status.member("n1")
    lo = next(i for i in n1.interfaces if i.name == "lo")
    assert "10.213.0.1/32" in lo.addresses
    json.dumps(status.to_dict())  # JSON-able as it is


def test_babeld_socket_is_the_read_only_one(line5):
    socket_path = line5.node_path("n3", "/run/byzantium/babeld.sock")
    assert socket_path.is_socket()
    config = line5.node_path("n3", "/etc/byzantium/babeld.conf").read_text()
    assert f"local-path {socket_path}" in config
    assert "readwrite" not in config
    assert (line5.folder("n1") / "root").is_dir()


def test_nothing_of_the_lab_appears_in_the_machines_namespace(line5):
    with open("/proc/net/dev") as handle:
        names = {line.split(":")[0].strip() for line in handle.readlines()[2:]}
    assert not names & {"br-lan", "eth0@", "to-n1", "to-n2", "cl-c1"}


def test_exec_runs_inside_the_namespace_and_passes_the_exit_code(line5):
    result = line5.exec(
        "node-2", ["ip", "-j", "address", "show", "dev", "lo"], capture=True
    )
    assert "10.213.0.2" in result.stdout
    assert line5.exec("client-1", ["sh", "-c", "exit 7"]).returncode == 7


def test_exec_refuses_names_outside_the_lab(line5):
    for name in ("n9", "c7", "byz-n1", "lo", "n1; ls"):
        with pytest.raises((LabError, ValueError)):
            line5.exec(name, ["true"])


def test_ring_and_grid_give_the_expected_links(make_lab):
    ring = make_lab(nodes=4, topology="ring", clients=0, converge=False)
    assert ring.status().links == [
        ("n1", "n2"),
        ("n1", "n4"),
        ("n2", "n3"),
        ("n3", "n4"),
    ]
    grid = make_lab(nodes=5, topology="grid", clients=0)
    assert grid.status().links == [
        ("n1", "n2"),
        ("n1", "n4"),
        ("n2", "n3"),
        ("n2", "n5"),
        ("n4", "n5"),
    ]
    assert grid.converged_after is not None


def _lab_processes(lab):
    pids = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(lab.base_dir) in cmdline and process.status() != psutil.STATUS_ZOMBIE:
            pids.add(process.info["pid"])
    return pids


def test_down_leaves_no_namespace_link_process_or_file(make_lab):
    lab = make_lab(nodes=3, clients=1, converge=False)
    daemons = [daemon.pid for _, daemon in lab.status().daemons]
    assert len(daemons) == 3 + 3 + 1  # babeld and dnsmasq per node, one dhclient
    assert _lab_processes(lab) >= set(daemons)
    lab.down()
    assert not [n for n in list_namespaces() if n.startswith(f"{lab.prefix}-")]
    assert not any(pid_alive(pid) for pid in daemons)
    assert not _lab_processes(lab)
    assert not lab.base_dir.exists()
    assert not list(Path("/etc/netns").glob(f"{lab.prefix}-*"))
    with open("/proc/net/dev") as handle:
        assert "to-n2" not in handle.read()
    lab.down()  # twice is harmless


def test_stale_lab_of_a_killed_run_is_cleaned_by_the_next_up(make_lab):
    """A process builds a lab and is SIGKILLed; the next ``up`` clears it."""
    lab = new_test_lab()
    script = (
        "import os, signal, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings.test'\n"
        "django.setup()\n"
        "from pathlib import Path\n"
        "from portal.lab import Lab, LabSpec\n"
        f"lab = Lab({lab.prefix!r}, Path({str(lab.base_dir)!r}),\n"
        "          owner_pid=os.getpid())\n"
        "lab.up(LabSpec(nodes=2, clients=1))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    try:
        run = subprocess.run([sys.executable, "-c", script], cwd=REPO_DIR, timeout=60)
        assert run.returncode == -signal.SIGKILL
        stale = lab.status()
        old_pids = [daemon.pid for _, daemon in stale.daemons if daemon.alive]
        assert len(old_pids) == 5 and len(stale.namespaces) == 3
        lab.up(LabSpec(nodes=1, clients=0))
        assert not any(pid_alive(pid) for pid in old_pids)
        assert lab.status().namespaces == [f"{lab.prefix}-n1"]
        assert not (lab.base_dir / "c1").exists()
    finally:
        lab.down()


def test_session_cleanup_leaves_young_labs_alone(make_lab):
    orphan = new_test_lab()
    orphan.owner_pid = 2**22 - 1  # no such process
    orphan.up(LabSpec(nodes=1, clients=0))
    try:
        assert orphan.prefix not in clean_stale_test_labs()
        assert orphan.status().namespaces == [f"{orphan.prefix}-n1"]
    finally:
        orphan.down()


def test_session_cleanup_removes_labs_of_dead_runs_only(make_lab):
    alive = make_lab(nodes=1, clients=0, converge=False)
    orphan = new_test_lab()
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan.owner_pid = dead.pid
    orphan.up(LabSpec(nodes=1, clients=0))
    try:
        removed = clean_stale_test_labs(min_age=0)
        assert orphan.prefix in removed
        assert alive.prefix not in removed
        assert not orphan.base_dir.exists()
        assert alive.status().namespaces == [f"{alive.prefix}-n1"]
    finally:
        orphan.down()


def test_down_refuses_to_delete_a_folder_that_is_not_a_lab(tmp_path):
    (tmp_path / "precious").write_text("keep me")
    lab = Lab("ltzzz", tmp_path)
    with pytest.raises(LabError):
        lab.down()
    assert (tmp_path / "precious").exists()


def test_one_node_lab_has_no_mesh_but_serves_its_clients(make_lab):
    lab = make_lab(nodes=1, clients=1)
    client = lab.status().member("c1")
    assert ipaddress.ip_interface(client.address).network == client_subnet("n1")


@pytest.mark.parametrize("nodes", [10])
def test_ten_nodes_in_a_line_converge(make_lab, nodes):
    started = time.monotonic()
    lab = make_lab(nodes=nodes, topology="line", clients=0)
    print(
        f"\n{nodes} nodes (line) converged {lab.converged_after:.2f} s after babeld "
        f"started; whole build {time.monotonic() - started:.2f} s"
    )
    assert not lab.missing_routes(lab.spec())
    assert labs_root() in lab.base_dir.parents
    assert os.path.basename(lab.base_dir) == lab.prefix
