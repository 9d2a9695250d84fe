"""Captive portal through the real path: tap-to-access latency, probe rates.

``python -m bench --captive`` (root only; ``--captive-portal`` runs this
part without the firewall's). One lab node ``n1`` under the bench-only
prefix ``bcp`` with one client ``c1`` and an "Internet" namespace
(:class:`captive.firewall_lab.Upstream`), running the real portal as
``make run`` runs it (:class:`captive.portal_lab.RealPortal`: the worker
with its captive lane, gunicorn with ``deploy/gunicorn.conf.py``, runnode's
nginx inside the node) on a private Redis. Everything is stopped and
removed at the end, whatever happens. Traffic stays inside the lab's
namespaces.

Measured:

- ``tap``: from the phone's POST of Continue to the first *new* connection
  the upstream answers, timed inside the client's namespace by the agent
  (:class:`captive.firewall_lab.ClientAgent`, op ``tap``: the POST, then a
  new connection every 5 ms). The path is the real one: nginx, Django's
  view writes the session and queues ``captive.authorise_client`` on
  commit, the worker's captive lane runs it (neighbour lookup, one nft
  batch, conntrack), the kernel lets the next SYN through. Each round
  kicks the phone first (through the same worker) and fetches the welcome
  page again, as a phone does. p50/p95 over ``taps`` rounds.
- ``probes``: requests per second of an Android probe
  (``GET /generate_204``, Host ``connectivitycheck.gstatic.com``) from the
  client namespace with wrk at 100 and 500 concurrent connections, twice:
  ``held`` (not let through: the firewall redirects every connection to
  the held port, nginx closes each, Django answers the portal redirect, so
  every request is a new TCP connection through the redirect) and
  ``through`` (let through, node offline: the node's own address for the
  probe host answers the exact 204 on keep-alive connections). wrk runs
  from one client address: one busy phone stands in for many.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.stats import median

PREFIX = "bcp"
# Not "bcp-up": test runs elsewhere clean up "<prefix>-up" namespaces whose
# lab folder they cannot see.
UPSTREAM_NS = "bcp-internet"
TAPS = 30
CONNECTIONS = (100, 500)
PROBE_HOST = "connectivitycheck.gstatic.com"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"
# DESIGN.md: a tap opens access within this, p95.
TAP_P95_TARGET_MS = 200.0

Say = Callable[[str], None]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` 0..1) of ``values``; None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise_taps(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """p50/p95/max of the tap rounds, in milliseconds."""
    reached = [s["reached"] * 1000 for s in samples if "reached" in s]
    answered = [s["answered"] * 1000 for s in samples if "answered" in s]
    p95 = percentile(reached, 0.95)
    return {
        "rounds": len(samples),
        "through": len(reached),
        "p50_ms": percentile(reached, 0.5),
        "p95_ms": p95,
        "max_ms": max(reached) if reached else None,
        "post_answer_p50_ms": median(answered),
        "target_p95_ms": TAP_P95_TARGET_MS,
        "within_target": p95 is not None and p95 <= TAP_P95_TARGET_MS,
    }


def summarise_tap_jobs(jobs: Sequence[tuple[Any, Any, list[dict[str, Any]]]]) -> dict:
    """Where a tap's time goes in the worker, from the jobs' own records:
    queued (row created to claimed by the lane), claimed to the nft batch
    applied (the moment the phone is through), and the nft batch itself."""
    from datetime import datetime

    queued, to_nft, nft = [], [], []
    for created, started, log in jobs:
        if created is None or started is None:
            continue
        queued.append((started - created).total_seconds() * 1000)
        for entry in log or []:
            if list(entry.get("argv", []))[:2] == ["nft", "-f"]:
                at = datetime.fromisoformat(entry["at"])
                to_nft.append((at - started).total_seconds() * 1000)
                nft.append(float(entry.get("duration") or 0) * 1000)
                break
    return {
        "queued_p50_ms": percentile(queued, 0.5),
        "queued_p95_ms": percentile(queued, 0.95),
        "claimed_to_through_p50_ms": percentile(to_nft, 0.5),
        "claimed_to_through_p95_ms": percentile(to_nft, 0.95),
        "nft_batch_p50_ms": percentile(nft, 0.5),
    }


def wrk_probe_argv(
    namespace: str, url: str, connections: int, seconds: float
) -> list[str]:
    """wrk in the client namespace against one probe URL."""
    threads = min(2, connections)
    return [
        "ip", "netns", "exec", namespace,
        "wrk", "-t", str(threads), "-c", str(connections),
        "-d", f"{seconds:g}s", "--timeout", "5s",
        "-H", f"Host: {PROBE_HOST}", "-s", str(WRK_SCRIPT), url,
    ]  # fmt: skip


def parse_wrk(stdout: str) -> dict[str, Any]:
    """The JSON line of :file:`bench/wrk_report.lua` (the last one wins)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"wrk printed no report: {stdout[-300:]!r}")


def probe_case(
    report: dict[str, Any], *, mode: str, connections: int, expected: int
) -> dict[str, Any]:
    """One wrk run as a row: how many answers were the expected status."""
    statuses = {int(k): v for k, v in report.get("statuses", {}).items()}
    # wrk_report.lua counts every answer outside 2xx by status, 2xx ones not.
    if 200 <= expected < 300:
        wrong = report["non_2xx"]
    else:
        wrong = report["requests"] - report["non_2xx"]  # a 2xx is wrong here
        wrong += sum(count for status, count in statuses.items() if status != expected)
    return {
        "mode": mode,
        "connections": connections,
        "expected_status": expected,
        "requests": report["requests"],
        "rps": report["rps"],
        "p50_ms": report["p50_ms"],
        "p95_ms": report["p95_ms"],
        "errors": report["errors"],
        "unexpected": wrong,
    }


class PortalBench:
    """The lab, the private Redis and the real portal of one run."""

    def __init__(self, work: Path, say: Say) -> None:
        self.work = work
        self.say = say
        self.lab: Any = None
        self.upstream: Any = None
        self.redis: Any = None
        self.real: Any = None
        self.agent: Any = None
        self.queues: Any = None

    def start(self) -> None:
        from django.conf import settings
        from django.core.management import call_command

        from bench.meshnet import ensure_database
        from captive.firewall_lab import ClientAgent, Upstream
        from captive.portal_lab import RealPortal, seed_database
        from captive.queue import enqueue_captive_job
        from portal.lab import Lab, LabSpec
        from portal.tests.redis_fixture import RedisServer

        self.work.mkdir(parents=True, exist_ok=True)
        self.work.chmod(0o755)
        ensure_database()
        folder = Path(tempfile.mkdtemp(prefix="byz-bench-redis-"))
        self.redis = RedisServer(folder=folder, socket=folder / "redis.sock")
        self.redis.start()
        self.queues = settings.RQ_QUEUES
        settings.RQ_QUEUES = {
            name: {**config, "URL": self.redis.url}
            for name, config in self.queues.items()
        }
        self.say(f"  lab {PREFIX}: one node, one client, an upstream...")
        # Where the worker's lab host mode looks for this prefix's nodes.
        lab_dir = settings.PORTAL.state_dir / "lab" / PREFIX
        self.lab = Lab(prefix=PREFIX, base_dir=lab_dir, owner_pid=os.getpid())
        self.lab.up(LabSpec(nodes=1, clients=1))
        self.upstream = Upstream(
            prefix=self.lab.prefix,
            node_namespace=self.lab.namespace("n1"),
            name=UPSTREAM_NS,
        )
        self.upstream.up()
        self.upstream.start_server(self.upstream.namespace, "upstream", (80,))
        call_command("flush", interactive=False, verbosity=0)
        seed_database(self.lab)
        portal_dir = self.work / "portal"
        portal_dir.mkdir()
        portal_dir.chmod(0o755)
        self.real = RealPortal(
            lab=self.lab, redis=self.redis, workdir=portal_dir, node_gunicorn=True
        )
        self.say("  the real portal: worker, gunicorn, nginx in the node...")
        self.real.start_worker()
        self.real.start_web()
        self.real.start_nginx()
        self.wait_job(enqueue_captive_job(kind="captive.apply_portal"))
        self.agent = ClientAgent(self.lab.namespace("c1"))

    def wait_job(self, job: Any, timeout: float = 30) -> None:
        from portal.models import Job, JobStatus

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = Job.objects.filter(pk=job.pk).first()
            if row is not None and row.status in JobStatus.finished():
                if row.status != JobStatus.COMPLETED:
                    raise RuntimeError(f"{row.kind}: {row.error}")
                return
            time.sleep(0.02)
        raise RuntimeError(f"{job.kind} did not finish in {timeout} s")

    def kick_everyone(self) -> None:
        from captive import services
        from captive.models import ClientSession, SessionState

        # A tap's job records its session just after the kernel let the
        # phone through: wait for that, or the kick would miss the phone.
        deadline = time.monotonic() + 10
        while ClientSession.objects.filter(state=SessionState.PENDING).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("a tap's session stayed pending")
            time.sleep(0.02)
        for row in ClientSession.objects.filter(state=SessionState.ACTIVE):
            self.wait_job(services.client_kick(session_id=row.pk))

    def welcome_form(self) -> tuple[str, str]:
        """The Continue form as a held phone gets it: any page, redirected."""
        from captive.firewall_lab import INTERNET_HOSTS
        from captive.portal_lab import NODE

        first = self.agent.http_get(INTERNET_HOSTS[0], path="/")
        head = first["body"].split("\r\n\r\n", 1)[0]
        location = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("location:")
        )
        path = "/" + location.split("://", 1)[1].split("/", 1)[1]
        page = self.agent.call("get", host=NODE, port=80, path=path, timeout=5)["body"]
        token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
        action = page.split('<form method="post" action="', 1)[1].split('"', 1)[0]
        return action.replace("&amp;", "&"), token

    def tap_once(self) -> dict[str, Any]:
        from captive.firewall_lab import INTERNET_HOSTS
        from captive.portal_lab import NODE

        self.kick_everyone()
        action, token = self.welcome_form()
        answer = self.agent.call(
            "tap",
            host=NODE,
            path=action,
            body=urlencode({"token": token}),
            poll_host=INTERNET_HOSTS[1],
            marker="upstream host=",
            timeout=5.0,
        )
        if not answer["ok"]:
            from portal.models import Job

            job = Job.objects.filter(kind="captive.authorise_client").last()
            detail = (job.status, job.error, job.result) if job else None
            raise RuntimeError(f"tap failed: {answer['error']} (job: {detail})")
        if " 302 " not in answer["status"] + " ":
            raise RuntimeError(f"Continue answered {answer['status']}")
        return answer

    def measure_taps(self, rounds: int) -> dict[str, Any]:
        from portal.models import Job

        samples = [self.tap_once() for _ in range(rounds)]
        summary = summarise_taps(samples)
        summary["samples_ms"] = [round(s["reached"] * 1000, 1) for s in samples]
        jobs = Job.objects.filter(kind="captive.authorise_client").order_by("-pk")
        summary["job"] = summarise_tap_jobs(
            [(j.created, j.started, j.log) for j in jobs[:rounds]]
        )
        return summary

    def wrk(self, url: str, connections: int, seconds: float) -> dict[str, Any]:
        argv = wrk_probe_argv(self.lab.namespace("c1"), url, connections, seconds)
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60
        )
        if result.returncode != 0:
            raise RuntimeError(f"wrk failed: {result.stderr.strip()[-300:]}")
        return parse_wrk(result.stdout)

    def measure_probes(
        self, connections: Sequence[int], seconds: float
    ) -> list[dict[str, Any]]:
        from captive import probes
        from captive.firewall_lab import INTERNET_HOSTS

        rows = []
        self.kick_everyone()
        held_url = f"http://{INTERNET_HOSTS[0]}/generate_204"
        for count in connections:
            self.wrk(held_url, min(count, 20), 1.0)  # warm up
            report = self.wrk(held_url, count, seconds)
            rows.append(
                probe_case(report, mode="held", connections=count, expected=302)
            )
            self.say(f"  held probe, {count} connections: {report['rps']:.0f} req/s")
        self.tap_once()
        through_url = f"http://{probes.OFFLINE_ADDRESS}/generate_204"
        for count in connections:
            self.wrk(through_url, min(count, 20), 1.0)
            report = self.wrk(through_url, count, seconds)
            rows.append(
                probe_case(report, mode="through", connections=count, expected=204)
            )
            self.say(
                f"  let-through probe, {count} connections: {report['rps']:.0f} req/s"
            )
        return rows

    def close(self) -> None:
        """Stop and remove everything; every step runs even if one fails."""
        import contextlib

        from django.conf import settings

        from captive import firewall_ops
        from portal.host.errors import HostError

        def disable() -> None:
            with contextlib.suppress(HostError):
                firewall_ops.disable(self.lab.node_host("n1"))

        with contextlib.ExitStack() as cleanup:
            if self.queues is not None:
                cleanup.callback(setattr, settings, "RQ_QUEUES", self.queues)
            if self.redis is not None:
                cleanup.callback(shutil.rmtree, self.redis.folder, ignore_errors=True)
                cleanup.callback(self.redis.stop)
            if self.lab is not None:
                cleanup.callback(self.lab.down)
            if self.upstream is not None:
                cleanup.callback(self.upstream.down)
            if self.lab is not None:
                cleanup.callback(disable)
            if self.real is not None:
                cleanup.callback(self.real.stop)
            if self.agent is not None:
                cleanup.callback(self.agent.close)


def run_captive_portal(
    work: Path,
    *,
    taps: int = TAPS,
    connections: Sequence[int] = CONNECTIONS,
    seconds: float = 5.0,
    say: Say = print,
) -> dict[str, Any]:
    """Start, measure, stop (always)."""
    bench = PortalBench(work, say)
    try:
        say("Captive portal through the real path")
        bench.start()
        say(f"  {taps} taps")
        tap = bench.measure_taps(taps)
        say(f"  tap to access: p50 {tap['p50_ms']:.0f} ms, p95 {tap['p95_ms']:.0f} ms")
        probe_rows = bench.measure_probes(connections, seconds)
        wrk_version = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True
        ).stdout.splitlines()
        return {
            "tap": tap,
            "probes": probe_rows,
            "seconds": seconds,
            "wrk": wrk_version[0] if wrk_version else None,
        }
    finally:
        bench.close()


def portal_failures(result: dict[str, Any] | None) -> list[str]:
    """What makes these figures invalid (the run then exits non-zero)."""
    if not result:
        return []
    problems = []
    tap = result["tap"]
    if tap["through"] != tap["rounds"]:
        problems.append(f"only {tap['through']} of {tap['rounds']} taps got through")
    for row in result["probes"]:
        if row["unexpected"] or row["errors"]:
            problems.append(
                f"{row['mode']} probe at {row['connections']} connections: "
                f"{row['unexpected']} unexpected answers, {row['errors']} errors"
            )
    return problems


def render(result: dict[str, Any]) -> str:
    """The report lines of this section."""
    from bench.stats import fmt, table

    tap = result["tap"]
    parts = [
        f"\nCaptive portal, tap to access ({tap['through']}/{tap['rounds']} taps, "
        f"POST to the first new connection upstream): p50 {fmt(tap['p50_ms'])} ms, "
        f"p95 {fmt(tap['p95_ms'])} ms, max {fmt(tap['max_ms'])} ms "
        f"(target p95 <= {fmt(tap['target_p95_ms'], 0)} ms: "
        f"{'met' if tap['within_target'] else 'NOT met'})",
    ]
    job = tap.get("job")
    if job:
        parts.append(
            f"  in the worker: queued p50 {fmt(job['queued_p50_ms'])} ms "
            f"(p95 {fmt(job['queued_p95_ms'])}), claimed to through p50 "
            f"{fmt(job['claimed_to_through_p50_ms'])} ms "
            f"(p95 {fmt(job['claimed_to_through_p95_ms'])}), nft batch p50 "
            f"{fmt(job['nft_batch_p50_ms'])} ms"
        )
    parts.append(
        f"Probe requests per second from the client ({fmt(result['seconds'], 0)} s "
        "per case, wrk)"
    )
    rows = [
        [
            f"{row['mode']} ({row['expected_status']})",
            fmt(row["connections"]),
            fmt(row["rps"]),
            fmt(row["p50_ms"], 2),
            fmt(row["p95_ms"], 2),
            fmt(row["errors"] + row["unexpected"]),
        ]
        for row in result["probes"]
    ]
    parts.append(
        table(["probe", "connections", "req/s", "p50 ms", "p95 ms", "bad"], rows)
    )
    return "\n".join(parts)
