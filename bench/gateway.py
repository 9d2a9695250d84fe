"""Gateway: failover between two gateways, NAT throughput against routing.

``python -m bench --gateway`` (root only; add ``--no-web --no-lab --no-mesh``
to run this section alone). One lab under the bench-only prefix ``bgw``:
five nodes in a line, a client ``c3`` on the middle node, and the lab
"Internet" (:mod:`portal.lab.internet`) behind the uplinks of ``n1`` and
``n5``. Both gateways are configured by the gateway app's own
:func:`gateway.apply.apply_gateway` and watched by its own uplink check
(:class:`gateway.lab_internet.GatewayNode`: a check every 0.3 s, withdrawn
after 3 failures, announced after 2 passes; the lab's babeld says hello
every 0.5 s). Everything is torn down in a ``finally``.

Measured:

- ``failover``: ``repetitions`` times, the uplink of the gateway the client
  uses now is cut beyond the link (the carrier stays: the check, not the
  kernel, must notice), once the other gateway's neighbour routes through
  it (a settled mesh); the clock runs from the cut to the first HTTP
  answer the client gets through the other gateway (the Internet's server
  names the address each request came from). Beside it, the time the
  check took to withdraw the route. Then the uplink comes back and is
  announced again before the next repetition, which cuts the other one.
  Median and max.
- ``throughput``: iperf3 TCP from the client to the Internet through ``n1``
  (two mesh hops, then the uplink), with the gateway's NAT table, and
  with plain routing on the same path (the table removed, the Internet
  given a route back to the mesh): ``rounds`` interleaved rounds of
  ``seconds`` each way (upload and download, ``-R``); medians and the
  ratio NAT / routing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import median, ratio

PREFIX = "bgw"
FAILOVER_TIMEOUT = 30.0


def _peer(agent: Any) -> str | None:
    from portal.lab.internet import WEB_ADDRESS

    answer = agent.http_get(WEB_ADDRESS, timeout=0.5)
    body = answer.get("body", "") if answer.get("ok") else ""
    for word in body.split():
        if word.startswith("peer="):
            return word[5:]
    return None


def _wait_peer(agent: Any, wanted: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _peer(agent) == wanted:
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"client traffic did not reach {wanted} in {timeout:g} s")


def _current_peer(agent: Any, peers: set[str]) -> str:
    """The gateway the client's traffic leaves through now (one of ``peers``)."""
    deadline = time.monotonic() + FAILOVER_TIMEOUT
    while time.monotonic() < deadline:
        peer = _peer(agent)
        if peer in peers:
            return peer
        time.sleep(0.05)
    raise TimeoutError(f"client traffic reached none of {sorted(peers)}")


def _wait_change(node: Any, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(node.changes) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    if len(node.changes) < count:
        raise TimeoutError(f"{node.node}: no change of verdict in {timeout:g} s")


def _default_devices(namespace: str) -> list[str]:
    result = subprocess.run(
        ["ip", "-n", namespace, "-j", "-4", "route", "show", "default"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return [route.get("dev") for route in json.loads(result.stdout or "[]")]


def _wait_settled(lab: Any, other: str) -> None:
    """Until the other gateway's mesh neighbour routes the default through it:
    each failover is timed from a settled mesh."""
    neighbour = "n4" if other == "n5" else "n2"
    deadline = time.monotonic() + FAILOVER_TIMEOUT
    while time.monotonic() < deadline:
        if _default_devices(lab.namespace(neighbour)) == [f"to-{other}"]:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{neighbour} does not route through {other}")


def measure_failover(
    lab: Any,
    gateways: dict[str, Any],
    internet: Any,
    agent: Any,
    repetitions: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Cut the gateway in use, time the move to the other; ``repetitions`` times."""
    from portal.lab.internet import uplink_address

    peers = {name: uplink_address(int(name[1:])).split("/")[0] for name in gateways}
    by_peer = {address: name for name, address in peers.items()}
    runs = []
    for repetition in range(repetitions):
        current_peer = _current_peer(agent, set(by_peer))
        cut = by_peer[current_peer]
        other = next(name for name in gateways if name != cut)
        node = gateways[cut]
        before = len(node.changes)
        _wait_settled(lab, other)
        started = time.monotonic()
        internet.cut(cut)
        try:
            moved = _wait_peer(agent, peers[other], FAILOVER_TIMEOUT)
            _wait_change(node, before + 1, FAILOVER_TIMEOUT)
            withdrawn = node.changes[before][0]
            runs.append(
                {
                    "cut": cut,
                    "failover_seconds": round(moved - started, 3),
                    "withdrawn_seconds": round(withdrawn - started, 3),
                    "error": None,
                }
            )
            say(
                f"  failover {repetition + 1}: {cut} cut, traffic through {other} "
                f"after {moved - started:.2f} s (withdrawn after "
                f"{withdrawn - started:.2f} s)"
            )
        except TimeoutError as error:
            runs.append({"cut": cut, "error": str(error)})
        finally:
            internet.mend()
        _wait_change(node, before + 2, FAILOVER_TIMEOUT)  # announced again
        time.sleep(1.0)
    times = [r["failover_seconds"] for r in runs if not r["error"]]
    withdrawals = [r["withdrawn_seconds"] for r in runs if not r["error"]]
    return {
        "runs": runs,
        "repetitions": repetitions,
        "ok": len(times),
        "failover_seconds_median": median(times),
        "failover_seconds_max": max(times) if times else None,
        "withdrawn_seconds_median": median(withdrawals),
        "withdrawn_seconds_max": max(withdrawals) if withdrawals else None,
    }


class _Iperf:
    """iperf3's server in the Internet namespace, on the web server's address."""

    def __init__(self, namespace: str, address: str) -> None:
        self.address = address
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, "iperf3", "-s", "-B", address, "-1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def restart(self, namespace: str) -> None:
        self.stop()
        self.__init__(namespace, self.address)  # type: ignore[misc]
        time.sleep(0.3)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _iperf_gbps(client_ns: str, address: str, seconds: float, reverse: bool) -> float:
    argv = ["ip", "netns", "exec", client_ns, "iperf3", "-c", address,
            "-t", f"{seconds:g}", "-J"]  # fmt: skip
    if reverse:
        argv.append("-R")
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"iperf3 failed: {(result.stdout + result.stderr)[-300:]}")
    end = json.loads(result.stdout)["end"]
    return end["sum_received"]["bits_per_second"] / 1e9


def measure_throughput(
    lab: Any,
    internet: Any,
    n1: Any,
    rounds: int,
    seconds: float,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """NAT through n1 against plain routing on the same path, interleaved."""
    from gateway import nat
    from portal.lab.internet import WEB_ADDRESS, uplink_address

    client_ns = lab.namespace("c3")
    n1_ns = lab.namespace("n1")
    samples: dict[str, list[float]] = {
        "nat_upload": [], "nat_download": [],
        "routed_upload": [], "routed_download": [],
    }  # fmt: skip
    server = _Iperf(internet.namespace, WEB_ADDRESS)
    time.sleep(0.3)
    try:
        for _round in range(rounds):
            for mode in ("nat", "routed"):
                if mode == "routed":
                    subprocess.run(
                        ["ip", "netns", "exec", n1_ns, "nft", "delete", "table",
                         nat.FAMILY, nat.TABLE], check=True,
                    )  # fmt: skip
                    subprocess.run(
                        ["ip", "-n", internet.namespace, "route", "replace",
                         "10.213.0.0/16", "via", uplink_address(1).split("/")[0]],
                        check=True,
                    )  # fmt: skip
                try:
                    for direction, reverse in (("upload", False), ("download", True)):
                        server.restart(internet.namespace)
                        value = _iperf_gbps(client_ns, WEB_ADDRESS, seconds, reverse)
                        samples[f"{mode}_{direction}"].append(value)
                finally:
                    if mode == "routed":
                        subprocess.run(
                            ["ip", "-n", internet.namespace, "route", "delete",
                             "10.213.0.0/16"], check=False,
                        )  # fmt: skip
                        n1.apply()  # the gateway's own apply puts its table back
            say(
                "  throughput round: NAT "
                f"{samples['nat_upload'][-1]:.2f}/{samples['nat_download'][-1]:.2f}, "
                f"routed {samples['routed_upload'][-1]:.2f}/"
                f"{samples['routed_download'][-1]:.2f} Gbit/s (up/down)"
            )
    finally:
        server.stop()
    summary = {key: median(values) for key, values in samples.items()}
    return {
        "rounds": rounds,
        "seconds": seconds,
        "samples_gbps": samples,
        "median_gbps": summary,
        "ratio_upload": ratio(summary["nat_upload"], summary["routed_upload"]),
        "ratio_download": ratio(summary["nat_download"], summary["routed_download"]),
    }


def run_gateway(
    work: Path,
    *,
    repetitions: int = 5,
    rounds: int = 3,
    seconds: float = 5.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build the lab, measure, tear everything down (always)."""
    from captive.firewall_lab import ClientAgent
    from gateway.lab_internet import GatewayNode
    from portal.lab import Lab, LabSpec
    from portal.lab.internet import Internet, uplink_address

    work.mkdir(parents=True, exist_ok=True)
    lab = Lab(prefix=PREFIX, base_dir=work / "lab", owner_pid=os.getpid())
    spec = LabSpec(nodes=5, topology="line", clients=3)
    internet = Internet(PREFIX, work / "inet", {})
    gateways: dict[str, Any] = {}
    agent = None
    try:
        say("Gateway: a 5-node line, a client on n3, an Internet behind n1 and n5...")
        lab.up(spec)
        lab.wait_converged(timeout=60, spec=spec)
        internet.gateways = {"n1": lab.namespace("n1"), "n5": lab.namespace("n5")}
        internet.up()
        gateways = {name: GatewayNode(lab, name) for name in ("n1", "n5")}
        agent = ClientAgent(lab.namespace("c3"))
        gateways["n1"].apply(online=True)
        _wait_peer(agent, uplink_address(1).split("/")[0], FAILOVER_TIMEOUT)
        gateways["n5"].apply(online=True)
        time.sleep(2)
        for node in gateways.values():
            node.start()
        failover = measure_failover(lab, gateways, internet, agent, repetitions, say)
        for node in gateways.values():
            node.stop()
        # Throughput through n1 alone: n5 stops announcing.
        gateways["n5"].apply(sharing=False)
        gateways["n1"].apply(online=True)
        _wait_peer(agent, uplink_address(1).split("/")[0], FAILOVER_TIMEOUT)
        throughput = measure_throughput(
            lab, internet, gateways["n1"], rounds, seconds, say
        )
        errors = [node.errors for node in gateways.values() if node.errors]
        iperf_version = subprocess.run(
            ["iperf3", "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[:1]
        return {
            "failover": failover,
            "throughput": throughput,
            "check": {
                "interval_seconds": 0.3,
                "fail_threshold": 3,
                "pass_threshold": 2,
            },
            "monitor_errors": errors,
            "iperf3": iperf_version[0] if iperf_version else None,
            "python": sys.version.split()[0],
        }
    finally:
        for node in gateways.values():
            node.stop()
        if agent is not None:
            agent.close()
        internet.down()
        lab.down()


def gateway_failures(result: dict[str, Any] | None) -> list[str]:
    """Why the gateway figures do not count."""
    if not result:
        return []
    failover = result["failover"]
    found = []
    if failover["ok"] != failover["repetitions"]:
        found.append(
            f"gateway failover: {failover['repetitions'] - failover['ok']} of "
            f"{failover['repetitions']} runs did not move"
        )
    if result.get("monitor_errors"):
        found.append(f"gateway check loop errors: {result['monitor_errors']}")
    return found


def render(result: dict[str, Any]) -> str:
    """The report lines of this section."""
    from bench.stats import fmt, table

    failover = result["failover"]
    throughput = result["throughput"]
    parts = [
        f"\nGateway failover ({failover['ok']}/{failover['repetitions']} runs; check "
        "every 0.3 s, 3 failures withdraw)",
        table(
            ["clock", "median s", "max s"],
            [
                [
                    "cut -> traffic via other gateway",
                    fmt(failover["failover_seconds_median"], 2),
                    fmt(failover["failover_seconds_max"], 2),
                ],
                [
                    "cut -> route withdrawn",
                    fmt(failover["withdrawn_seconds_median"], 2),
                    fmt(failover["withdrawn_seconds_max"], 2),
                ],
            ],
        ),  # fmt: skip
        f"Gateway throughput, client on n3 through n1 ({throughput['rounds']} rounds "
        f"of {throughput['seconds']:g} s, iperf3 TCP, medians)",
    ]
    medians = throughput["median_gbps"]
    parts.append(
        table(
            ["direction", "NAT Gbit/s", "routed Gbit/s", "NAT/routed"],
            [
                [
                    "upload",
                    fmt(medians["nat_upload"], 2),
                    fmt(medians["routed_upload"], 2),
                    fmt(throughput["ratio_upload"], 3),
                ],
                [
                    "download",
                    fmt(medians["nat_download"], 2),
                    fmt(medians["routed_download"], 2),
                    fmt(throughput["ratio_download"], 3),
                ],
            ],
        )  # fmt: skip
    )
    return "\n".join(parts)
