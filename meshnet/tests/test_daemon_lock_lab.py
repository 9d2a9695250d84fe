"""Two workers restarting one node's dnsmasq at the same moment.

The privileged worker (a gateway or mesh apply) and the captive lane (the
portal following the uplink) both re-render dnsmasq; when the gateway's
uplink comes up they do it at the same moment. Without the daemon's lock
file the second start found the first one's sockets taken ("Address
already in use") and its job failed. Here several threads re-render a real
lab node's dnsmasq with alternating upstreams, each change a restart.
"""

from __future__ import annotations

import threading

import psutil
import pytest

from meshnet import dnsmasq_config
from meshnet.apply import refresh_dnsmasq

pytestmark = [pytest.mark.lab]

WORKERS = 4
ROUNDS = 6


@pytest.fixture(scope="module")
def lab(make_module_lab):
    return make_module_lab(nodes=1, clients=0)


def test_concurrent_restarts_all_succeed_and_leave_one_dnsmasq(lab):
    host, state = lab.node_host("n1"), lab.node_state("n1")
    errors: list[str] = []
    outcomes: list[str] = []
    start = threading.Barrier(WORKERS)

    def worker(index: int) -> None:
        start.wait()
        for round_ in range(ROUNDS):
            upstream = (f"198.51.100.{1 + (index + round_) % 2}",)
            try:
                outcomes.append(refresh_dnsmasq(host, state, upstream_servers=upstream))
            except Exception as error:  # every one is a failure of the test
                errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(outcomes) == WORKERS * ROUNDS
    assert "restarted" in outcomes
    config = str(lab.node_path("n1", dnsmasq_config.CONFIG))
    running = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "dnsmasq"
        and any(config in arg for arg in p.info["cmdline"] or ())
    ]
    assert len(running) == 1, running
