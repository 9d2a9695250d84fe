"""apply_mesh for real: five lab nodes in a line, configured by the portal.

The lab builds only the "hardware" (``bare``: namespaces, veth links, each
node's client bridge). Nodes n2..n5 are then configured with
:func:`meshnet.apply.apply_mesh` on their own Host and MeshState; node n1
through the real job path: settings in the database, the
``apply_mesh_settings`` service queues ``meshnet.apply_mesh``, and the job
runner executes it against ``current_host()`` in lab host mode. Real babeld,
dnsmasq and dhclient run throughout.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import subprocess
from types import SimpleNamespace
from unittest import mock

import pytest
from django.conf import settings
from django.test import override_settings

from meshnet import babel_config, dnsmasq_config
from meshnet.apply import BABELD, DNSMASQ, LAB_TUNING, apply_mesh, running_pid
from meshnet.models import MeshInterface, MeshSettings
from meshnet.state import MeshState
from portal.host import log
from portal.lab.lab import pid_alive
from portal.lab.spec import client_gateway, client_subnet, mesh_address
from portal.models import Job, JobStatus

# django_db on every test also makes pytest-django create the test database
# the module fixture writes n1's settings to.
pytestmark = [pytest.mark.lab, pytest.mark.django_db]

NODES = ["n1", "n2", "n3", "n4", "n5"]


def _apply_n1_through_the_job(lab) -> Job:
    """Store n1's lab state in the models and run ``meshnet.apply_mesh``."""
    from meshnet.routing_services import apply_mesh_settings
    from portal.jobqueue.execution import run_job

    state = lab.node_state("n1")
    row = MeshSettings.load()
    row.mesh_address = state.mesh_address
    row.client_subnet = state.client_subnet
    row.save()
    for interface in state.interfaces:
        MeshInterface.objects.create(
            name=interface.name, role=interface.role, medium=interface.medium
        )
    portal = dataclasses.replace(
        settings.PORTAL, host_mode="lab", lab_prefix=lab.prefix, lab_node="n1"
    )
    with (
        override_settings(PORTAL=portal),
        mock.patch("portal.jobqueue.services.push"),  # no Redis: run it here
    ):
        assert portal.lab_dir == lab.base_dir
        job = apply_mesh_settings()
        run_job(job_id=str(job.pk), kind=job.kind)
    job.refresh_from_db()
    return job


@pytest.fixture(scope="module")
def mesh(make_module_lab, django_db_setup, django_db_blocker):
    lab = make_module_lab(nodes=5, topology="line", clients=5, bare=True)
    reports = {}
    for node in NODES[1:]:
        reports[node] = apply_mesh(
            lab.node_host(node), lab.node_state(node), tuning=LAB_TUNING
        )
    with django_db_blocker.unblock():
        try:
            job = _apply_n1_through_the_job(lab)
            n1_state = MeshState.from_db()
            job_status, job_result, job_error = job.status, job.result, job.error
        finally:
            MeshInterface.objects.all().delete()
            MeshSettings.objects.all().delete()
            Job.objects.all().delete()
    lab.start_clients()
    lab.wait_converged(timeout=60)
    return SimpleNamespace(
        lab=lab,
        reports=reports,
        n1_state=n1_state,
        job=SimpleNamespace(status=job_status, result=job_result, error=job_error),
    )


def test_node1_was_configured_by_the_job(mesh):
    assert mesh.job.status == JobStatus.COMPLETED, mesh.job.error
    assert mesh.job.result["babeld"] == "started"
    assert mesh.job.result["dnsmasq"] == "started"
    for node in NODES[1:]:
        assert mesh.reports[node].babeld == "started"


def test_every_node_routes_to_every_other_nodes_client_subnet(mesh):
    for node in NODES:
        routes = {str(prefix) for prefix in mesh.lab.routes(node)}
        for other in NODES:
            if other != node:
                assert str(client_subnet(other)) in routes, (node, other)
                assert f"{mesh_address(other)}/32" in routes, (node, other)


def test_only_own_prefixes_are_announced(mesh):
    result = mesh.lab.exec(
        "n1", ["ip", "-j", "-4", "route", "show", "proto", "babel"], capture=True
    )
    for entry in json.loads(result.stdout):
        network = ipaddress.ip_network(entry["dst"])
        assert network.prefixlen in (24, 32)
        assert network.subnet_of(ipaddress.ip_network("10.213.0.0/16"))


def test_client_of_node5_reaches_a_web_server_on_node1(mesh, tmp_path):
    (tmp_path / "index.html").write_text("byzantium node n1\n")
    server = subprocess.Popen(
        [
            "ip", "netns", "exec", mesh.lab.namespace("n1"),
            "python3", "-m", "http.server", "8080",
            "--bind", str(client_gateway("n1")), "--directory", str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://{client_gateway('n1')}:8080/index.html"
        for _attempt in range(50):
            result = mesh.lab.exec(
                "c5", ["curl", "-s", "-m", "3", url], capture=True, timeout=10
            )
            if result.returncode == 0:
                break
            subprocess.run(["sleep", "0.1"], check=False)
        assert result.stdout == "byzantium node n1\n", result.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_client_takes_a_lease_from_the_dnsmasq_the_portal_rendered(mesh):
    lab = mesh.lab
    client = lab.status().member("c5")
    assert client.node == "n5"
    address = ipaddress.ip_interface(client.address)
    assert address.network == client_subnet("n5")
    assert address.ip != client_gateway("n5")
    leases = lab.node_path("n5", dnsmasq_config.LEASE_FILE).read_text()
    assert str(address.ip) in leases and " c5 " in leases
    rendered = dnsmasq_config.render(
        lab.node_state("n5"), lab.node_files("n5"), LAB_TUNING.dhcp
    )
    assert lab.node_path("n5", dnsmasq_config.CONFIG).read_text() == rendered
    route = lab.exec("c5", ["ip", "-j", "route", "show", "default"], capture=True)
    assert json.loads(route.stdout)[0]["gateway"] == str(client_gateway("n5"))


def test_every_rendered_config_is_accepted_by_its_daemon(mesh, tmp_path):
    lab = mesh.lab
    for node in NODES:
        babel_text = lab.node_path(node, babel_config.CONFIG).read_text()
        babel_config.check_with_babeld(babel_text, scratch=tmp_path)
        check = subprocess.run(
            [
                "dnsmasq",
                "--test",
                f"--conf-file={lab.node_path(node, dnsmasq_config.CONFIG)}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("node", ["n1", "n3"])
def test_applying_the_same_state_twice_changes_nothing(mesh, node):
    lab = mesh.lab
    host = lab.node_host(node)
    pids = (running_pid(host, BABELD), running_pid(host, DNSMASQ))
    assert None not in pids
    # n1 got its state from the database (through the job): the same again.
    state = mesh.n1_state if node == "n1" else lab.node_state(node)
    records = []
    with log.recording_to(records.append):
        report = apply_mesh(host, state, tuning=LAB_TUNING)
    assert report.steps == []
    assert (report.babeld, report.dnsmasq) == ("unchanged", "unchanged")
    commands = [r["argv"] for r in records if r["type"] == "command"]
    assert commands, "the apply reads the node's state"
    assert all(argv[:2] in (["ip", "-j"], ["sysctl", "-n"]) for argv in commands)
    writes = [r for r in records if r["type"] in ("write", "remove")]
    assert all(r["type"] == "write" and not r["changed"] for r in writes)
    assert (running_pid(host, BABELD), running_pid(host, DNSMASQ)) == pids


def test_a_changed_state_restarts_babeld_cleanly_and_the_mesh_recovers(mesh):
    """Runs last: node 5 becomes a gateway (a new babeld.conf), then reverts."""
    lab = mesh.lab
    host = lab.node_host("n5")
    old_pid = running_pid(host, BABELD)
    gateway = dataclasses.replace(lab.node_state("n5"), announce_default_route=True)
    report = apply_mesh(host, gateway, tuning=LAB_TUNING)
    assert report.babeld == "restarted" and report.dnsmasq == "unchanged"
    new_pid = running_pid(host, BABELD)
    assert new_pid and new_pid != old_pid
    assert not pid_alive(old_pid)  # gone (or a zombie awaiting its reaper)
    config = lab.node_path("n5", babel_config.CONFIG).read_text()
    assert "redistribute ip 0.0.0.0/0 le 0 allow" in config
    apply_mesh(host, lab.node_state("n5"), tuning=LAB_TUNING)
    lab.wait_converged(timeout=60)
