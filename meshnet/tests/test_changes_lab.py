"""Apply with rollback on a real lab node, with a real worker.

A three-node line (n1 - n2 - n3) with real babeld; the portal manages n1
(lab host mode), and a real ``rqworker`` (the one ``make run`` starts) runs
the jobs against it. An address change is applied to n1 for real: the new
/32 is on n1's loopback and its neighbours reach it over babel. Unconfirmed,
it is rolled back by the deadline, also when the worker was killed and
restarted in between (the deadline is in the database, not in a process);
confirmed, it stays.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from meshnet import change_services as services
from meshnet.changes import CHANGEABLE_FIELDS
from meshnet.models import ChangeState, PendingChange
from portal.lab.lab import Lab
from portal.tests.access_helpers import HttpsClient, finish_setup
from portal.tests.redis_fixture import RedisServer, WorkerProcess

pytestmark = [
    pytest.mark.lab,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

OLD = "10.213.0.1"
NEW = "10.213.0.77"


class LabWorker(WorkerProcess):
    """The worker of a portal in lab host mode managing the test lab's n1."""

    def __init__(self, redis: RedisServer, workdir: Path, lab: Lab) -> None:
        super().__init__(redis, workdir)
        self.lab = lab

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(
            BYZANTIUM_HOST_MODE="lab",
            BYZANTIUM_LAB_PREFIX=self.lab.prefix,
            BYZANTIUM_FILES_ROOT=str(self.lab.folder("n1") / "root"),
        )
        return env


@pytest.fixture(scope="module")
def lab(make_module_lab: Callable[..., Lab]) -> Lab:
    return make_module_lab(nodes=3, topology="line", clients=0)


@pytest.fixture
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="byz-change-worker-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def managed_n1(lab: Lab, use_redis: RedisServer) -> Lab:
    """The database holds n1's lab state, as if the operator had set it up."""
    finish_setup(node_name="n1")
    services.write_state(lab.node_state("n1"), list(CHANGEABLE_FIELDS))
    return lab


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def loopback_addresses(lab: Lab, node: str) -> set[str]:
    result = lab.exec(
        node, ["ip", "-j", "-4", "addr", "show", "dev", "lo"], capture=True
    )
    data = json.loads(result.stdout or "[]")
    return {info["local"] for iface in data for info in iface.get("addr_info", ())} - {
        "127.0.0.1"
    }


def pings(lab: Lab, node: str, address: str) -> bool:
    try:
        result = lab.exec(
            node, ["ping", "-n", "-c", "1", "-W", "1", address], capture=True, timeout=5
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def state_of(change: PendingChange) -> str:
    return PendingChange.objects.get(pk=change.pk).state


def wait_state(change: PendingChange, state: str, timeout: float, worker) -> None:
    try:
        wait_for(lambda: state_of(change) == state, timeout, f"change {state}")
    except AssertionError:
        row = PendingChange.objects.get(pk=change.pk)
        raise AssertionError(
            f"change is {row.state} ({row.message}); worker said:\n{worker.output()}"
        ) from None


def test_an_unconfirmed_change_is_rolled_back_across_a_worker_restart(
    managed_n1: Lab, use_redis: RedisServer, workdir: Path
):
    lab = managed_n1
    assert loopback_addresses(lab, "n1") == {OLD}
    worker = LabWorker(use_redis, workdir, lab).start()
    try:
        change = services.propose_change(
            kind="addresses", proposed={"mesh_address": NEW}, deadline_seconds=8
        )
        wait_state(change, ChangeState.WAITING, 60, worker)
        # The change is live on n1, and the mesh routes to the new address.
        assert loopback_addresses(lab, "n1") == {NEW}
        wait_for(lambda: pings(lab, "n2", NEW), 30, "n2 reaches the new address")

        # The worker dies; the deadline passes while no worker runs.
        worker.kill()
        deadline = PendingChange.objects.get(pk=change.pk).deadline
        time.sleep(max(0.0, (deadline - timezone.now()).total_seconds()) + 2)
        assert state_of(change) == ChangeState.WAITING
        assert loopback_addresses(lab, "n1") == {NEW}

        # A new worker rolls it back from what the database says.
        worker = LabWorker(use_redis, workdir, lab).start()
        wait_state(change, ChangeState.ROLLED_BACK, 30, worker)
    finally:
        worker.stop()
    assert loopback_addresses(lab, "n1") == {OLD}
    wait_for(lambda: pings(lab, "n2", OLD), 30, "n2 reaches the old address again")
    wait_for(lambda: pings(lab, "n3", OLD), 30, "n3 reaches the old address again")
    assert not pings(lab, "n2", NEW)


def test_the_deadline_is_kept_within_seconds_and_a_confirmed_change_stays(
    managed_n1: Lab, use_redis: RedisServer, workdir: Path
):
    lab = managed_n1
    worker = LabWorker(use_redis, workdir, lab).start()
    try:
        # Not confirmed: rolled back a few seconds after its deadline.
        first = services.propose_change(
            kind="addresses", proposed={"mesh_address": NEW}, deadline_seconds=5
        )
        wait_state(first, ChangeState.WAITING, 60, worker)
        assert loopback_addresses(lab, "n1") == {NEW}
        wait_state(first, ChangeState.ROLLED_BACK, 30, worker)
        first.refresh_from_db()
        late = (first.resolved - first.deadline).total_seconds()
        assert 0 <= late < 10, late
        assert loopback_addresses(lab, "n1") == {OLD}

        # Confirmed from another client, without a session: it stays.
        second = services.propose_change(
            kind="addresses", proposed={"mesh_address": NEW}, deadline_seconds=5
        )
        wait_state(second, ChangeState.WAITING, 60, worker)
        second.refresh_from_db()
        answer = HttpsClient(REMOTE_ADDR="10.213.1.150").post(
            reverse("meshnet:change_confirm_post", args=[second.pk]),
            {"token": second.token},
        )
        assert answer.status_code == 302
        time.sleep(max(0.0, (second.deadline - timezone.now()).total_seconds()) + 7)
        assert state_of(second) == ChangeState.CONFIRMED
        assert loopback_addresses(lab, "n1") == {NEW}
        wait_for(lambda: pings(lab, "n3", NEW), 30, "n3 reaches the kept address")
    finally:
        worker.stop()
