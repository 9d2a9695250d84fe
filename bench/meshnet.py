"""Mesh benchmarks: convergence after ``apply``, and one directory sync.

Both run in labs under the bench-only prefix ``bnm`` (never ``byz``, the
test suite's ``lt*`` or the other bench labs), built and torn down here in
a ``finally``, so Ctrl-C and SIGTERM (which ``bench.run`` turns into
KeyboardInterrupt) leave nothing behind; a lab left by a run that was killed
outright is removed by the next one (:meth:`portal.lab.Lab.up` starts with
a tear-down of its prefix).

Convergence after apply
-----------------------

Each repetition builds a *bare* lab (namespaces, veth links, bridges: the
hardware, no address and no daemon), then calls
:func:`meshnet.apply.apply_mesh` on every node in turn, through
:meth:`portal.lab.Lab.configure_node`, exactly what the lab and the portal's
apply job do. Clocks, all ending at *converged*: the first moment every
node's kernel table (``ip -4 route`` in its namespace, what packets really
use) holds a route to every other node's mesh ``/32`` and client ``/24``:

- ``from_first_seconds``: from the call of ``apply_mesh`` on the first node;
  what an operator who powers on a whole mesh at once waits;
- ``from_last_seconds``: from the return of ``apply_mesh`` on the last
  node; the routing protocol's own share (the last node's babeld is running
  then, nothing else is left to do but exchange hellos and updates);
- ``apply_seconds``: the applies themselves (sequential: 2 shared cores).

The poller checks only the nodes that still miss a route, so a pass stays
short (about 5 ms per node); when the last one is complete it checks every
node once more and goes on polling if a route went away in between.

Directory sync
--------------

A converged 20-node lab (grid and line) where every node but ``n1`` serves
its own document (:func:`meshnet.node_document.build_node_document`) at
``/api/v1/node`` with Python's HTTP server inside its namespace, the way
``meshnet/tests/test_directory_lab.py`` does. ``n1`` runs
:func:`meshnet.directory.sync_directory` exactly as the periodic job does
(host = n1's namespace runner and file root, candidates from babeld's
socket). Measured per round: wall time, documents fetched, document bytes
(the sync's own count) and HTTP bytes on the wire (an nftables counter in
n1's namespace on TCP port 80, both directions, IP and TCP headers
included). The first round creates every directory entry and writes the
hosts file; the next ones are the steady state a node lives in.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import median

MESH_LAB_PREFIX = "bnm"
CONVERGE_TIMEOUT = 180.0
SERVE_TIMEOUT = 30.0
DIRECTORY_NODES = 20
DIRECTORY_ROUNDS = 3
# The nftables table the bench adds inside n1's namespace to count HTTP.
COUNTER_TABLE = "bench_http"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Case:
    """A topology to time after apply, and how many times."""

    nodes: int
    topology: str
    repetitions: int

    @property
    def name(self) -> str:
        return f"{self.topology}-{self.nodes}"


DEFAULT_CASES = tuple(
    Case(nodes, topology, 3) for nodes in (5, 10, 20) for topology in ("line", "grid")
)
# The cheap set for the default run: one repetition per case.
QUICK_CASES = tuple(Case(c.nodes, c.topology, 1) for c in DEFAULT_CASES)


# -- convergence after apply ---------------------------------------------------


def wanted_routes(spec: Any) -> dict[str, set[ipaddress.IPv4Network]]:
    """Per node, the prefixes it must route to: every other node's /32 and /24."""
    from portal.lab import spec as plan

    wanted = {}
    for node in spec.node_names:
        wanted[node] = {
            prefix
            for other in spec.node_names
            if other != node
            for prefix in (
                ipaddress.IPv4Network(f"{plan.mesh_address(other)}/32"),
                plan.client_subnet(other),
            )
        }
    return wanted


def wait_routes(
    read_routes: Callable[[str], set[ipaddress.IPv4Network]],
    wanted: dict[str, set[ipaddress.IPv4Network]],
    *,
    timeout: float = CONVERGE_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> tuple[float, int]:
    """Poll until every node has its wanted routes; (moment, passes).

    The moment is the clock when the last incomplete node was found
    complete. Only incomplete nodes are read in a pass; once none is left,
    every node is read again and any that lost a route goes back in.
    """
    deadline = clock() + timeout
    pending = sorted(wanted)
    passes = 0
    while True:
        passes += 1
        done_at = None
        for node in list(pending):
            if wanted[node] <= read_routes(node):
                pending.remove(node)
                done_at = clock()
        if not pending and done_at is not None:
            pending = [n for n in sorted(wanted) if not wanted[n] <= read_routes(n)]
            if not pending:
                return done_at, passes
        if clock() >= deadline:
            raise TimeoutError(
                f"no convergence within {timeout:g} s; still missing routes on "
                + ", ".join(pending)
            )
        pause(0.02)


def time_apply(lab: Any, case: Case) -> dict[str, Any]:
    """One repetition: bare lab, apply every node, wait, tear down (always)."""
    from portal.lab import LabSpec

    spec = LabSpec(nodes=case.nodes, topology=case.topology, clients=0, bare=True)
    try:
        lab.up(spec)
        applies = []
        first = time.monotonic()
        for node in spec.node_names:
            started = time.monotonic()
            lab.configure_node(node, spec)
            applies.append(time.monotonic() - started)
        last = time.monotonic()
        converged, passes = wait_routes(lab.routes, wanted_routes(spec))
        return {
            "from_first_seconds": round(converged - first, 3),
            "from_last_seconds": round(converged - last, 3),
            "apply_seconds": round(last - first, 3),
            "apply_node_median_seconds": round(median(applies) or 0.0, 3),
            "poll_passes": passes,
            "error": None,
        }
    except Exception as error:  # noqa: BLE001 - recorded, the next run goes on
        return {"error": str(error)[:500]}
    finally:
        lab.down()


def summarise_case(case: Case, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median and max of each clock over the repetitions that converged."""
    done = [run for run in runs if run.get("error") is None]
    summary: dict[str, Any] = {
        "case": case.name,
        "nodes": case.nodes,
        "topology": case.topology,
        "repetitions": len(runs),
        "converged": len(done),
    }
    for clock in ("from_first", "from_last", "apply"):
        values = [run[f"{clock}_seconds"] for run in done]
        summary[f"{clock}_median"] = median(values)
        summary[f"{clock}_max"] = max(values) if values else None
    summary["runs"] = list(runs)
    return summary


def run_apply_convergence(
    lab: Any, cases: Sequence[Case], say: Say = print
) -> list[dict[str, Any]]:
    """Time every case on ``lab`` (its prefix is reused, one lab at a time)."""
    summaries = []
    for case in cases:
        runs = []
        for index in range(case.repetitions):
            run = time_apply(lab, case)
            runs.append(run)
            if run["error"] is None:
                say(
                    f"  {case.name:<8} #{index + 1}: converged "
                    f"{run['from_first_seconds']:.2f} s after the first apply, "
                    f"{run['from_last_seconds']:.2f} s after the last "
                    f"(applies took {run['apply_seconds']:.2f} s)"
                )
            else:
                say(f"  {case.name:<8} #{index + 1}: FAILED {run['error']}")
        summaries.append(summarise_case(case, runs))
    return summaries


# -- directory sync ------------------------------------------------------------


def node_name_of(node: str) -> str:
    """The DNS-label name a lab node publishes (``n7`` -> ``node-7``)."""
    return f"node-{node[1:]}"


@dataclass
class DocumentServers:
    """Python HTTP servers, one per lab node, each in its own namespace."""

    lab: Any
    servers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, nodes: Sequence[str]) -> None:
        """Write each node's document, start every server, wait for each."""
        from meshnet.node_document import build_node_document
        from portal.lab import spec as plan

        for node in nodes:
            folder = self.lab.folder(node) / "www"
            target = folder / "api/v1/node"
            target.parent.mkdir(parents=True, exist_ok=True)
            document = build_node_document(
                name=node_name_of(node),
                mesh_address=str(plan.mesh_address(node)),
                client_subnet=str(plan.client_subnet(node)),
                gateway=False,
            )
            target.write_bytes(document.to_bytes())
            self.servers[node] = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.lab.namespace(node),
                    sys.executable,
                    "-m",
                    "http.server",
                    "80",
                    "--bind",
                    "0.0.0.0",
                    "--directory",
                    str(folder),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for node in nodes:
            self._wait_serving(node)

    def _wait_serving(self, node: str) -> None:
        """Wait until the server answers 200 inside its namespace."""
        deadline = time.monotonic() + SERVE_TIMEOUT
        while time.monotonic() < deadline:
            if self.servers[node].poll() is not None:
                raise RuntimeError(f"the document server of {node} exited")
            result = self.lab.exec(
                node,
                [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "http://127.0.0.1/api/v1/node",
                ],
                capture=True,
            )
            if result.stdout == "200":
                return
            time.sleep(0.05)
        raise RuntimeError(f"the document server of {node} did not answer")

    def stop(self) -> None:
        for server in self.servers.values():
            if server.poll() is None:
                server.terminate()
        for server in self.servers.values():
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        self.servers.clear()


def counter_commands() -> list[list[str]]:
    """nft commands (argv) that count HTTP both ways in one namespace."""
    table = f"inet {COUNTER_TABLE}"
    return [
        ["nft", f"add table {table}"],
        ["nft", f"add chain {table} out {{ type filter hook output priority 0 ; }}"],
        ["nft", f"add chain {table} in {{ type filter hook input priority 0 ; }}"],
        ["nft", f"add rule {table} out tcp dport 80 counter"],
        ["nft", f"add rule {table} in tcp sport 80 counter"],
    ]


def parse_counters(text: str) -> dict[str, dict[str, int]]:
    """``nft -j list table`` -> {chain: {packets, bytes}} summed per chain."""
    found: dict[str, dict[str, int]] = {}
    for item in json.loads(text or "{}").get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        for expression in rule.get("expr", []):
            if not isinstance(expression, dict):
                continue
            counter = expression.get("counter")
            if isinstance(counter, dict):
                total = found.setdefault(rule["chain"], {"packets": 0, "bytes": 0})
                total["packets"] += int(counter.get("packets", 0))
                total["bytes"] += int(counter.get("bytes", 0))
    return found


def _run_checked(lab: Any, node: str, argv: list[str]) -> str:
    result = lab.exec(node, argv, capture=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
    return result.stdout


def read_http_bytes(lab: Any, node: str) -> dict[str, int]:
    """HTTP bytes and packets counted in ``node`` so far, by direction."""
    counters = parse_counters(
        _run_checked(lab, node, ["nft", "-j", "list", "table", "inet", COUNTER_TABLE])
    )
    sent = counters.get("out", {"packets": 0, "bytes": 0})
    received = counters.get("in", {"packets": 0, "bytes": 0})
    return {
        "sent_bytes": sent["bytes"],
        "received_bytes": received["bytes"],
        "packets": sent["packets"] + received["packets"],
    }


def round_figures(
    result: dict[str, Any], before: dict[str, int], after: dict[str, int]
) -> dict[str, Any]:
    """One sync round's figures from the sync summary and the two counters."""
    sent = after["sent_bytes"] - before["sent_bytes"]
    received = after["received_bytes"] - before["received_bytes"]
    return {
        "seconds": result["seconds"],
        "candidates": result["candidates"],
        "fetched": len(result["seen"]),
        "failed": len(result["refused"]) + len(result["unreachable"]),
        "document_bytes": result["bytes_fetched"],
        "http_sent_bytes": sent,
        "http_received_bytes": received,
        "http_bytes": sent + received,
        "http_packets": after["packets"] - before["packets"],
    }


def summarise_sync(
    nodes: int, topology: str, rounds: Sequence[dict[str, Any]], period: float
) -> dict[str, Any]:
    """The first (cold) round apart, medians of the steady ones, per period.

    Every node syncs once a period, fetching every other node's document and
    serving its own to every other node, so a node's HTTP traffic per period
    is what one sync fetches plus, by symmetry, as much again served.
    """
    steady = list(rounds[1:]) or list(rounds)

    def mid(key: str) -> float | None:
        return median(r[key] for r in steady)

    http_bytes = mid("http_bytes")
    return {
        "case": f"{topology}-{nodes}",
        "nodes": nodes,
        "topology": topology,
        "period_seconds": period,
        "rounds": list(rounds),
        "first_seconds": rounds[0]["seconds"] if rounds else None,
        "seconds_median": mid("seconds"),
        "seconds_max": max((r["seconds"] for r in steady), default=None),
        "fetched_median": mid("fetched"),
        "document_bytes_median": mid("document_bytes"),
        "http_bytes_median": http_bytes,
        "node_bytes_per_period": 2 * http_bytes if http_bytes is not None else None,
        "node_bytes_per_second": (
            2 * http_bytes / period if http_bytes is not None else None
        ),
        "complete": all(r["fetched"] == nodes - 1 for r in rounds),
    }


def time_directory_sync(
    lab: Any, nodes: int, topology: str, rounds: int, say: Say = print
) -> dict[str, Any]:
    """Build a converged lab, serve documents, run ``rounds`` syncs on n1."""
    from meshnet import directory
    from meshnet.models import DirectoryEntry
    from meshnet.node_document import build_node_document
    from portal.lab import LabSpec
    from portal.lab import spec as plan

    spec = LabSpec(nodes=nodes, topology=topology, clients=0)
    servers = DocumentServers(lab)
    try:
        lab.up(spec)
        lab.wait_converged(timeout=CONVERGE_TIMEOUT, spec=spec)
        servers.start(spec.node_names[1:])
        for argv in counter_commands():
            _run_checked(lab, "n1", argv)
        own = directory.OwnNode(
            document=build_node_document(
                name=node_name_of("n1"),
                mesh_address=str(plan.mesh_address("n1")),
                client_subnet=str(plan.client_subnet("n1")),
                gateway=False,
            ),
            domain="mesh",
        )
        DirectoryEntry.objects.all().delete()
        figures = []
        for index in range(rounds):
            before = read_http_bytes(lab, "n1")
            result = directory.sync_directory(
                lab.node_host("n1"),
                own=own,
                babel_socket=lab.node_path("n1", "/run/byzantium/babeld.sock"),
            ).to_json()
            figures.append(round_figures(result, before, read_http_bytes(lab, "n1")))
            say(
                f"  sync {topology}-{nodes} #{index + 1}: "
                f"{figures[-1]['fetched']}/{nodes - 1} documents in "
                f"{figures[-1]['seconds']:.2f} s, "
                f"{figures[-1]['document_bytes']} B of documents, "
                f"{figures[-1]['http_bytes']} B of HTTP"
            )
        DirectoryEntry.objects.all().delete()
        return summarise_sync(
            nodes, topology, figures, float(directory.SYNC_PERIOD_SECONDS)
        )
    finally:
        servers.stop()
        lab.down()


# -- the section ---------------------------------------------------------------


def ensure_database() -> None:
    """The directory keeps its entries in the portal's database: migrate it.

    In a bench run the state folder is fresh (and the web section, which
    migrates too, may be switched off); migrating a current one is a no-op.
    """
    from django.conf import settings
    from django.core.management import call_command

    name = str(settings.DATABASES["default"]["NAME"])
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)


def run_mesh(
    base_dir: Path,
    *,
    cases: Sequence[Case] = DEFAULT_CASES,
    sync_topologies: Sequence[str] = ("grid", "line"),
    sync_nodes: int = DIRECTORY_NODES,
    sync_rounds: int = DIRECTORY_ROUNDS,
    prefix: str = MESH_LAB_PREFIX,
    say: Say = print,
) -> dict[str, Any]:
    """Both measurements; the lab is down again when this returns or raises."""
    import os

    from portal.lab import Lab

    lab = Lab(prefix=prefix, base_dir=base_dir, owner_pid=os.getpid())
    out: dict[str, Any] = {"convergence": [], "directory": []}
    try:
        say("Convergence after apply (bare labs, apply_mesh on every node)")
        out["convergence"] = run_apply_convergence(lab, cases, say=say)
        say(f"Directory sync from n1, {sync_nodes} nodes")
        ensure_database()
        for topology in sync_topologies:
            try:
                out["directory"].append(
                    time_directory_sync(lab, sync_nodes, topology, sync_rounds, say)
                )
            except Exception as error:  # noqa: BLE001 - recorded, next one runs
                say(f"  sync {topology}-{sync_nodes}: FAILED {error}")
                out["directory"].append(
                    {"case": f"{topology}-{sync_nodes}", "error": str(error)[:500]}
                )
    finally:
        lab.down()
    return out


def mesh_failures(results: dict[str, Any] | None) -> list[str]:
    """Why the mesh figures do not count: no convergence, incomplete syncs."""
    found = []
    for case in (results or {}).get("convergence", []):
        if case["converged"] != case["repetitions"]:
            found.append(f"mesh {case['case']} did not always converge after apply")
    for sync in (results or {}).get("directory", []):
        if sync.get("error") or not sync.get("complete"):
            found.append(f"directory sync {sync['case']} did not fetch every node")
    return found


def render_mesh(results: dict[str, Any] | None) -> str:
    """The tables ``bench.run`` prints for this section."""
    from bench.stats import fmt, table

    if not results:
        return ""
    parts = []
    rows = [
        [
            case["case"],
            f"{case['converged']}/{case['repetitions']}",
            fmt(case["from_first_median"], 2),
            fmt(case["from_first_max"], 2),
            fmt(case["from_last_median"], 2),
            fmt(case["from_last_max"], 2),
            fmt(case["apply_median"], 2),
        ]
        for case in results.get("convergence", [])
    ]
    if rows:
        parts.append("\nConvergence after apply (seconds)")
        parts.append(
            table(
                [
                    "case",
                    "ok",
                    "first med",
                    "first max",
                    "last med",
                    "last max",
                    "applies",
                ],
                rows,
            )
        )
    rows = []
    for sync in results.get("directory", []):
        if sync.get("error"):
            rows.append([sync["case"], "FAILED", "", "", "", "", "", ""])
            continue
        rows.append(
            [
                sync["case"],
                fmt(sync["first_seconds"], 2),
                fmt(sync["seconds_median"], 2),
                f"{fmt(sync['fetched_median'], 0)}/{sync['nodes'] - 1}",
                fmt(int(sync["document_bytes_median"] or 0)),
                fmt(int(sync["http_bytes_median"] or 0)),
                fmt(int(sync["node_bytes_per_period"] or 0)),
                fmt(sync["node_bytes_per_second"], 0),
            ]
        )
    if rows:
        period = results["directory"][0].get("period_seconds", "?")
        parts.append(f"\nDirectory sync from n1 (period {period} s; steady medians)")
        parts.append(
            table(
                [
                    "case",
                    "first s",
                    "sync s",
                    "docs",
                    "doc B",
                    "HTTP B",
                    "node B/period",
                    "B/s",
                ],
                rows,
            )
        )
    return "\n".join(parts)
