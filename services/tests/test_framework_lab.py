"""The framework in a real lab: fake services backed by real daemons.

``python3 -m http.server`` daemons are started by start-stop-daemon inside
the lab node's namespace, checked over real sockets, fetched by a client
namespace over its DHCP lease, killed, reconciled and switched off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services import announce, services
from services import catalogue as catalogue_module
from services.context import NodeNetwork
from services.models import ObservedState, ServiceState

from .fake_catalogue import write_fake_catalogue

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def lab(make_module_lab):
    return make_module_lab(nodes=1, clients=1)


@pytest.fixture
def node(lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The fake catalogue run on lab node n1; everything stopped after."""
    cat = catalogue_module.load_catalogue(write_fake_catalogue(tmp_path / "cat"))
    monkeypatch.setattr(catalogue_module, "catalogue", lambda: cat)
    monkeypatch.setattr(services, "current_host", lambda: lab.node_host("n1"))
    network = NodeNetwork.from_mesh_state(lab.node_state("n1"))
    monkeypatch.setattr(services, "node_network", lambda: network)
    monkeypatch.setattr(announce, "_network", lambda: network)
    yield lab
    for service_id in ("web-top", "web-base"):
        try:
            services.deactivate_service(service_id=service_id)
        except Exception:  # noqa: BLE001 - best-effort cleanup, lab.down follows
            pass


def fetch(lab, url: str) -> subprocess.CompletedProcess[str]:
    return lab.exec(
        "c1", ["curl", "-s", "--max-time", "3", url], capture=True, timeout=10
    )


def pid_of(lab, service_id: str) -> int:
    path = lab.node_path(
        "n1", f"/run/byzantium/services/{service_id}/supervised-http.pid"
    )
    return int(path.read_text().strip())


def wait_gone(pid: int, timeout: float = 5) -> None:
    """A killed daemon is reaped late by the machine's PID 1: a zombie is gone."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")


def test_switch_on_pulls_in_dependency_and_a_client_uses_both(node):
    services.request_activation(service_id="web-top")
    result = services.activate_service(service_id="web-top")
    assert result == {"switched_on": ["web-base", "web-top"]}
    assert fetch(node, "http://10.213.1.1:18080/index.html").stdout == (
        "<p>seeded</p>\n"
    )
    assert fetch(node, "http://10.213.1.1:18081/page.conf").returncode == 0
    rendered = node.node_path("n1", "/etc/byzantium/services/web-base/page.conf")
    assert "title = Mesh" in rendered.read_text()
    ids = [service.id for service in announce.announced_services()]
    assert ids == ["web-base", "web-top"]
    offers = {offer.id: offer for offer in announce.service_offers()}
    assert offers["web-base"].url == "http://10.213.0.1:18080/"
    mdns = node.node_path("n1", "/etc/byzantium/services/mdns/web-base.json")
    assert '"_http._tcp"' in mdns.read_text()

    services.request_deactivation(service_id="web-base")
    assert services.deactivate_service(service_id="web-base") == {
        "switched_off": ["web-top", "web-base"]
    }
    assert fetch(node, "http://10.213.1.1:18080/").returncode != 0
    assert fetch(node, "http://10.213.1.1:18081/").returncode != 0
    assert announce.announced_services() == []
    assert not mdns.exists()
    assert set(ServiceState.objects.values_list("observed", flat=True)) == {"off"}


def test_a_dead_daemon_is_started_again_by_the_next_health_check(node):
    services.request_activation(service_id="web-base")
    services.activate_service(service_id="web-base")
    dead = pid_of(node, "web-base")
    os.kill(dead, 9)
    wait_gone(dead)
    summary = services.run_health_checks()
    assert summary["restarted"] == ["web-base"]
    row = ServiceState.objects.get(service_id="web-base")
    assert row.observed == ObservedState.RUNNING and not row.withdrawn
    assert row.consecutive_failures == 0
    assert pid_of(node, "web-base") != dead
    assert fetch(node, "http://10.213.1.1:18080/").returncode == 0
    assert [s.id for s in announce.announced_services()] == ["web-base"]


def test_a_daemon_that_cannot_start_is_withdrawn_and_reconcile_recovers(node):
    services.request_activation(service_id="web-base")
    services.activate_service(service_id="web-base")
    dead = pid_of(node, "web-base")
    os.kill(dead, 9)
    wait_gone(dead)
    # Something else takes the service's port: every start fails at once.
    squatter = subprocess.Popen(
        [
            "ip", "netns", "exec", node.namespace("n1"), sys.executable, "-c",
            "import socket, time; s = socket.socket(); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('10.213.1.1', 18080)); s.listen(); print('ready', flush=True); "
            "time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        ready = squatter.stdout.readline().strip()
        assert ready == "ready", subprocess.run(
            ["ip", "netns", "exec", node.namespace("n1"), "ss", "-ltnp"],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        for round_number in range(1, services.RESTART_ATTEMPTS + 1):
            summary = services.run_health_checks()
            assert summary["restarted"] == []
            row = ServiceState.objects.get(service_id="web-base")
            assert row.observed == ObservedState.FAILING
            assert row.consecutive_failures == round_number
            assert row.withdrawn == (round_number >= services.WITHDRAW_AFTER)
        assert announce.announced_services() == []
    finally:
        squatter.kill()
        squatter.wait()
    # The port is free again, but the attempts are used up: the check no
    # longer restarts it by itself (no endless restart loop).
    assert services.run_health_checks()["restarted"] == []
    row = ServiceState.objects.get(service_id="web-base")
    assert row.observed == ObservedState.FAILING and row.withdrawn

    summary = services.reconcile_all()
    assert summary["started"] == ["web-base"]
    services.run_health_checks()
    row = ServiceState.objects.get(service_id="web-base")
    assert row.observed == ObservedState.RUNNING and not row.withdrawn
    assert [s.id for s in announce.announced_services()] == ["web-base"]


def test_reconcile_stops_a_service_stored_off_and_reads_the_system(node):
    services.request_activation(service_id="web-base")
    services.activate_service(service_id="web-base")
    ServiceState.objects.filter(service_id="web-base").update(enabled=False)
    assert services.reconcile_all()["stopped"] == ["web-base"]
    assert fetch(node, "http://10.213.1.1:18080/").returncode != 0


def test_missing_packages_are_reported_and_nothing_starts(node):
    from portal.jobqueue.errors import JobFailed

    services.request_activation(service_id="web-missing")
    with pytest.raises(JobFailed, match="apt-get install byzantium-no-such-package"):
        services.activate_service(service_id="web-missing")
    row = ServiceState.objects.get(service_id="web-missing")
    assert row.observed == ObservedState.MISSING
    assert row.missing_packages == ["byzantium-no-such-package"]
