"""A lab gateway node driven like the gateway app drives a real one.

The lab's "Internet" itself (namespace, web and DNS servers, uplink
addresses) is :mod:`portal.lab.internet`; this module adds what needs the
gateway app: :class:`GatewayNode`, the ``gateway.check_uplink`` job's loop
without a database, for the gateway's lab tests and bench. Test and bench
equipment, not portal code.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from portal.lab.internet import (
    DNS_ADDRESS,
    UPLINK,
    WEB_ADDRESS,
    uplink_address,
    uplink_router,
)

# -- a gateway node without a database: the check loop of the job ------------


class GatewayNode:
    """Drives one lab node as the ``gateway.check_uplink`` job drives a real
    one: a check every ``interval`` seconds through the same functions
    (:func:`gateway.health.check_uplink`, :func:`gateway.health.observe`),
    and on a change of verdict the same :func:`gateway.apply.apply_gateway`.
    Runs in a thread; ``changes`` records (monotonic time, online).
    """

    def __init__(self, lab: Any, node: str, *, interval: float = 0.3,
                 fail_threshold: int = 3, pass_threshold: int = 2) -> None:  # fmt: skip
        from gateway.apply import GatewayPlan, UplinkConfig

        index = int(node[1:])
        self.lab, self.node = lab, node
        self.host = lab.node_host(node)
        self.state = lab.node_state(node)
        self.interval = interval
        self.thresholds = {
            "fail_threshold": fail_threshold,
            "pass_threshold": pass_threshold,
        }
        self.plan = GatewayPlan(
            uplink=UplinkConfig(
                UPLINK, "static", uplink_address(index), uplink_router(index)
            ),
            sharing=True,
            online=False,
            upstream_servers=(DNS_ADDRESS,),
        )
        self.changes: list[tuple[float, bool]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def apply(self, **changes: Any):  # noqa: ANN201 - a GatewayReport
        from dataclasses import replace

        from gateway.apply import apply_gateway

        self.plan = replace(self.plan, **changes)
        return apply_gateway(self.host, self.plan, self.state)

    def remove(self):  # noqa: ANN201 - a GatewayReport
        from gateway.apply import remove_gateway

        return remove_gateway(self.host, self.state)

    def start(self) -> None:
        from gateway.health import UplinkHealth

        self.health = UplinkHealth(online=self.plan.online)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from gateway.health import check_uplink, observe

        while not self._stop.is_set():
            started = time.monotonic()
            try:
                passed = check_uplink(self.host, UPLINK, (WEB_ADDRESS,))
                self.health, changed = observe(self.health, passed, **self.thresholds)
                if changed:
                    self.changes.append((time.monotonic(), self.health.online))
                    self.apply(online=self.health.online)
            except Exception as error:  # reported by the test
                self.errors.append(f"{type(error).__name__}: {error}")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
