"""Captive portal firewall: sets of clients against per-client rules.

``python -m bench --captive`` (root only; add ``--no-web --no-lab`` to run
this section alone). Three namespaces under the bench-only prefix ``bfw``
are built for the run and removed at the end, whatever happens:

    bfw-cl (one client) --lan0-- bfw-nd (the node) --up0-- bfw-up ("Internet")

Measured:

- ``insert``: authorising 5,000 clients in one batch
  (:func:`captive.firewall_ops.authorise`, one ``nft -f -``) on a fresh
  table, and reading all 5,000 back with their counters in one call
  (:func:`~captive.firewall_ops.read_state`); beside it, loading the same
  5,000 clients as per-client rules (one ``nft -f`` of a chain).
- ``forwarding``: for the one real client, TCP throughput (iperf3, bulk),
  UDP packet rate (iperf3, 64-byte datagrams, as fast as the client can
  send: the per-packet cost of the firewall shows here, where TCP's large
  offloaded segments hide it) and round-trip latency (ping, 200 echoes),
  with 10 and with 5,000 clients authorised, in two designs:

  - ``sets``: the portal's table (:mod:`captive.firewall`): every packet
    does three hash lookups and one timer refresh, whatever the number of
    clients;
  - ``rules``: the classic design (nodogsplash-style): one rule per client
    (``ether saddr M ip saddr I accept``) in a linear chain every packet
    from a client walks, then a reject. The client under test is the last
    rule (the newest client), the worst case; the average client walks
    half the chain.

  The four cases run interleaved, ``rounds`` times, and the medians are
  reported with the ratios 5,000 / 10 per design and sets / rules at 5,000.

iperf3 is Debian's ``iperf3`` package (``make deps`` installs it).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import median

PREFIX = "bfw"
CLIENT_NS, NODE_NS, UPSTREAM_NS = f"{PREFIX}-cl", f"{PREFIX}-nd", f"{PREFIX}-up"
CLIENT_IP, NODE_LAN_IP = "10.213.9.100", "10.213.9.1"
NODE_UP_IP, UPSTREAM_IP = "203.0.113.1", "203.0.113.2"
LAN, UPLINK = "lan0", "up0"
MANY, FEW = 5000, 10
CLASSIC_TABLE = "bench_classic"


def _run(argv: list[str], *, timeout: float = 60, check: bool = True) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def _in(namespace: str, *argv: str, timeout: float = 60) -> str:
    return _run(["ip", "netns", "exec", namespace, *argv], timeout=timeout)


def _namespaces() -> set[str]:
    text = _run(["ip", "-j", "netns", "list"])
    return {entry["name"] for entry in json.loads(text or "[]")}


def tear_down() -> None:
    """Remove the bench namespaces and everything running in them."""
    from captive.firewall_lab import _kill_namespace

    for namespace in (CLIENT_NS, NODE_NS, UPSTREAM_NS):
        if namespace in _namespaces():
            _kill_namespace(namespace)


def build() -> None:
    """Client, node and upstream, linked and routed (IPv4 only)."""
    tear_down()
    for namespace in (CLIENT_NS, NODE_NS, UPSTREAM_NS):
        _run(["ip", "netns", "add", namespace])
        _run(["ip", "-n", namespace, "link", "set", "lo", "up"])
    _run(
        ["ip", "link", "add", "eth0", "netns", CLIENT_NS, "type", "veth",
         "peer", "name", LAN, "netns", NODE_NS]
    )  # fmt: skip
    _run(
        ["ip", "link", "add", UPLINK, "netns", NODE_NS, "type", "veth",
         "peer", "name", "eth0", "netns", UPSTREAM_NS]
    )  # fmt: skip
    plan = [
        (CLIENT_NS, ["address", "add", f"{CLIENT_IP}/24", "dev", "eth0"]),
        (CLIENT_NS, ["link", "set", "eth0", "up"]),
        (CLIENT_NS, ["route", "add", "default", "via", NODE_LAN_IP]),
        (NODE_NS, ["address", "add", f"{NODE_LAN_IP}/24", "dev", LAN]),
        (NODE_NS, ["address", "add", f"{NODE_UP_IP}/24", "dev", UPLINK]),
        (NODE_NS, ["link", "set", LAN, "up"]),
        (NODE_NS, ["link", "set", UPLINK, "up"]),
        (UPSTREAM_NS, ["address", "add", f"{UPSTREAM_IP}/24", "dev", "eth0"]),
        (UPSTREAM_NS, ["link", "set", "eth0", "up"]),
        (UPSTREAM_NS, ["route", "add", "10.213.9.0/24", "via", NODE_UP_IP]),
    ]
    for namespace, argv in plan:
        _run(["ip", "-n", namespace, *argv])
    _in(NODE_NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")


def fake_clients(count: int) -> list[tuple[str, str]]:
    """``count`` distinct (MAC, IP) pairs, none of them the real client."""
    pairs = []
    for index in range(count):
        mac = (
            f"02:bf:00:{index >> 16 & 255:02x}:{index >> 8 & 255:02x}:{index & 255:02x}"
        )
        ip = f"10.{100 + (index >> 16)}.{index >> 8 & 255}.{index & 255}"
        pairs.append((mac, ip))
    return pairs


def client_mac() -> str:
    links = json.loads(_in(CLIENT_NS, "ip", "-j", "link", "show", "eth0"))
    return links[0]["address"]


def classic_ruleset(clients: list[tuple[str, str]]) -> str:
    """Per-client rules in a linear chain, the real client last."""
    lines = [
        f"table inet {CLASSIC_TABLE} {{}}",
        f"delete table inet {CLASSIC_TABLE}",
        f"table inet {CLASSIC_TABLE} {{",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        f'\t\tiifname "{LAN}" jump clients',
        "\t}",
        "\tchain clients {",
    ]
    lines += [f"\t\tether saddr {mac} ip saddr {ip} accept" for mac, ip in clients]
    lines += [
        "\t\tmeta l4proto tcp reject with tcp reset",
        "\t\treject with icmpx admin-prohibited",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def nft_stdin(text: str) -> float:
    """Apply an nft batch in the node; returns the seconds it took."""
    started = time.monotonic()
    subprocess.run(
        ["ip", "netns", "exec", NODE_NS, "nft", "-f", "-"],
        input=text,
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return time.monotonic() - started


def delete_table(name: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", NODE_NS, "nft", "delete", "table", "inet", name],
        capture_output=True,
    )


class Setup:
    """The firewall of the node in one of the four cases."""

    def __init__(self, work: Path) -> None:
        from captive.firewall import FirewallConfig
        from portal.host.files import FileStore
        from portal.host.node import Host
        from portal.host.runner import NamespaceRunner

        self.host = Host(
            mode="lab", runner=NamespaceRunner(NODE_NS), files=FileStore(work)
        )
        self.config = FirewallConfig(
            interfaces=(LAN,), portal_port=8080, session_timeout=86400
        )
        self.mac = client_mac()

    def clients(self, count: int) -> list[tuple[str, str]]:
        return [*fake_clients(count - 1), (self.mac, CLIENT_IP)]

    def sets(self, count: int) -> float:
        """The portal's table with ``count`` clients; returns the insert time."""
        from captive import firewall_ops
        from captive.firewall import Client

        delete_table(CLASSIC_TABLE)
        firewall_ops.enable(self.host, self.config, keep_clients=False)
        batch = [Client(mac, ip) for mac, ip in self.clients(count)]
        started = time.monotonic()
        firewall_ops.authorise(self.host, self.config, batch, forget_flows=False)
        return time.monotonic() - started

    def rules(self, count: int) -> float:
        """The classic per-client chain; returns the load time."""
        from captive import firewall_ops

        firewall_ops.disable(self.host)
        return nft_stdin(classic_ruleset(self.clients(count)))

    def clear(self) -> None:
        from captive import firewall_ops

        firewall_ops.disable(self.host)
        delete_table(CLASSIC_TABLE)


def measure_insert(setup: Setup, repetitions: int) -> dict[str, Any]:
    from captive import firewall_ops

    insert, read, classic = [], [], []
    read_count = 0
    for _ in range(repetitions):
        insert.append(setup.sets(MANY))
        started = time.monotonic()
        state = firewall_ops.read_state(setup.host)
        read.append(time.monotonic() - started)
        read_count = len(state.authorised) if state else 0
        classic.append(setup.rules(MANY))
    setup.clear()
    return {
        "clients": MANY,
        "insert_seconds_median": median(insert),
        "insert_seconds": insert,
        "read_seconds_median": median(read),
        "read_clients": read_count,
        "classic_load_seconds_median": median(classic),
    }


def iperf(args: list[str], seconds: float) -> dict[str, Any]:
    text = _in(
        CLIENT_NS, "iperf3", "-c", UPSTREAM_IP, "-t", f"{seconds:g}", "-J", *args,
        timeout=seconds + 30,
    )  # fmt: skip
    return json.loads(text)["end"]


def tcp_gbps(seconds: float) -> float:
    end = iperf([], seconds)
    return end["sum_received"]["bits_per_second"] / 1e9


def udp_kpps(seconds: float) -> float:
    end = iperf(["-u", "-b", "0", "-l", "64"], seconds)
    summary = end["sum"]
    received = summary["packets"] - summary["lost_packets"]
    return received / summary["seconds"] / 1000


_RTT = re.compile(r"time=([0-9.]+) ms")


def ping_ms(count: int = 200) -> dict[str, float | None]:
    text = _in(CLIENT_NS, "ping", "-c", str(count), "-i", "0.005", UPSTREAM_IP)
    times = sorted(float(value) for value in _RTT.findall(text))
    if len(times) < count * 0.9:
        raise RuntimeError(f"ping lost {count - len(times)} of {count} echoes")
    return {
        "p50_ms": times[len(times) // 2],
        "p95_ms": times[int(len(times) * 0.95) - 1],
    }


CASES = (("sets", FEW), ("sets", MANY), ("rules", FEW), ("rules", MANY))


def measure_forwarding(
    setup: Setup, rounds: int, seconds: float, say: Callable[[str], None]
) -> dict[str, Any]:
    server = subprocess.Popen(
        ["ip", "netns", "exec", UPSTREAM_NS, "iperf3", "-s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs: dict[str, list[dict[str, Any]]] = {f"{d}-{n}": [] for d, n in CASES}
    try:
        time.sleep(0.5)
        for round_number in range(rounds):
            for design, count in CASES:
                getattr(setup, design)(count)
                name = f"{design}-{count}"
                run = {"tcp_gbps": tcp_gbps(seconds), "udp_kpps": udp_kpps(seconds)}
                run.update(ping_ms())
                runs[name].append(run)
                say(
                    f"  round {round_number + 1} {name}: "
                    f"{run['tcp_gbps']:.2f} Gbit/s, {run['udp_kpps']:.0f} kpps, "
                    f"ping p50 {run['p50_ms']:.3f} ms"
                )
    finally:
        server.terminate()
        server.wait(timeout=5)
        setup.clear()
    summary = {
        name: {
            key: median([run[key] for run in values])
            for key in ("tcp_gbps", "udp_kpps", "p50_ms", "p95_ms")
        }
        for name, values in runs.items()
    }

    def ratio(a: str, b: str, key: str) -> float | None:
        low = summary[b][key]
        return summary[a][key] / low if low else None

    ratios = {}
    for key in ("tcp_gbps", "udp_kpps", "p50_ms"):
        ratios[key] = {
            "sets_5000_over_10": ratio(f"sets-{MANY}", f"sets-{FEW}", key),
            "rules_5000_over_10": ratio(f"rules-{MANY}", f"rules-{FEW}", key),
            "sets_over_rules_at_5000": ratio(f"sets-{MANY}", f"rules-{MANY}", key),
        }
    return {
        "rounds": rounds,
        "seconds": seconds,
        "summary": summary,
        "ratios": ratios,
        "runs": runs,
    }


def run_captive_firewall(
    work: Path,
    *,
    rounds: int = 2,
    seconds: float = 3.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build, measure, tear down (always)."""
    work.mkdir(parents=True, exist_ok=True)
    try:
        say("Captive firewall: building client, node and upstream namespaces...")
        build()
        setup = Setup(work)
        say(f"  inserting {MANY} clients in one batch")
        insert = measure_insert(setup, repetitions=3)
        say(
            f"  {insert['insert_seconds_median'] * 1000:.0f} ms to insert, "
            f"{insert['read_seconds_median'] * 1000:.0f} ms to read back"
        )
        forwarding = measure_forwarding(setup, rounds, seconds, say)
        iperf_version = _run(["iperf3", "--version"]).splitlines()[0]
        return {"insert": insert, "forwarding": forwarding, "iperf3": iperf_version}
    finally:
        tear_down()


def render(result: dict[str, Any]) -> str:
    """The report lines of this section."""
    from bench.stats import fmt, table

    insert = result["insert"]
    parts = [
        f"\nCaptive firewall: {insert['clients']} clients in one batch: "
        f"{fmt(insert['insert_seconds_median'] * 1000)} ms "
        f"(read back with counters: {fmt(insert['read_seconds_median'] * 1000)} ms; "
        f"classic chain load: {fmt(insert['classic_load_seconds_median'] * 1000)} ms)"
    ]
    forwarding = result["forwarding"]
    rows = [
        [
            name,
            fmt(values["tcp_gbps"], 2),
            fmt(values["udp_kpps"]),
            fmt(values["p50_ms"], 3),
            fmt(values["p95_ms"], 3),
        ]
        for name, values in forwarding["summary"].items()
    ]
    parts.append(
        f"Forwarding for one client ({forwarding['rounds']} rounds of "
        f"{forwarding['seconds']:g} s, medians)"
    )
    parts.append(table(["case", "TCP Gbit/s", "UDP kpps", "p50 ms", "p95 ms"], rows))
    ratio_rows = [
        [key, *(fmt(value, 3) for value in values.values())]
        for key, values in forwarding["ratios"].items()
    ]
    parts.append(
        table(
            ["ratio", "sets 5000/10", "rules 5000/10", "sets/rules @5000"], ratio_rows
        )
    )
    return "\n".join(parts)
