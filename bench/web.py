"""The web benchmark: wrk against the portal's pages and a static baseline.

Each target is one URL on a loopback port. A round runs wrk once per target
(same connections, threads and duration); rounds repeat and their order of
targets rotates, so a neighbour's burst of load on this shared machine hits
different targets in different rounds and shows up as spread instead of as
a bias. The ratio page/static is taken within each round, then the median
of the rounds is reported.

Before any load, each page is fetched once and checked: it must answer 200
with the logged-in content (a redirect to the login page would otherwise be
a very fast, very wrong figure); wrk then counts every non-2xx answer.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.stats import median, ratio, spread

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "wrk_report.lua"


class BenchError(Exception):
    """Something the benchmark needs does not work; the message says what."""


@dataclass(frozen=True)
class Target:
    """One URL under load; ``expect`` must appear in its logged-in page."""

    name: str
    port: int
    path: str
    expect: tuple[str, ...] = ()
    baseline: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


@dataclass(frozen=True)
class Load:
    """How hard and how long wrk pushes."""

    connections: int = 50
    threads: int = 2
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    rounds: int = 3


# -- plain HTTP for checks and the login ---------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: gunicorn as ``make run`` binds it."""

    def __init__(self, path: Path, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                parsed = SimpleCookie()
                parsed.load(value)
                jar.update({name: morsel.value for name, morsel in parsed.items()})
        return jar


def request(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request on a fresh connection; the answer read in full."""
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def https_headers(host: str, cookies: Mapping[str, str]) -> dict[str, str]:
    """What nginx adds on the HTTPS side, plus the browser's cookies."""
    headers = {"Host": host, "X-Forwarded-Proto": "https"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return headers


_CSRF_INPUT = re.compile(
    rb'name=["\']csrfmiddlewaretoken["\']\s+value=["\']([^"\']+)["\']'
    rb'|value=["\']([^"\']+)["\']\s+name=["\']csrfmiddlewaretoken["\']'
)


def csrf_token_from(html: bytes) -> str | None:
    """The hidden CSRF field of a Django form, or None."""
    match = _CSRF_INPUT.search(html)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).decode()


def log_in(
    connect: Callable[[], http.client.HTTPConnection],
    host: str,
    username: str,
    password: str,
) -> dict[str, str]:
    """Log in through the portal's real login view; return the cookies.

    As a browser behind nginx would: GET the form over "HTTPS", then POST
    it with the CSRF cookie, the form's token and an Origin that matches
    ``host`` (the Host header sent). ``connect`` opens a new connection.
    """
    form = request(connect(), "GET", "/login/", headers=https_headers(host, {}))
    if form.status != 200:
        raise BenchError(f"GET /login/ answered {form.status}, not 200")
    cookies = form.cookies()
    token = csrf_token_from(form.body)
    if token is None or "csrftoken" not in cookies:
        raise BenchError("the login page has no CSRF token")
    headers = https_headers(host, cookies)
    headers.update(
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": f"https://{host}",
            "Referer": f"https://{host}/login/",
        }
    )
    body = urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    ).encode()
    answer = request(connect(), "POST", "/login/", headers=headers, body=body)
    cookies.update(answer.cookies())
    if answer.status != 302 or "sessionid" not in cookies:
        raise BenchError(
            f"logging in answered {answer.status} without a session "
            f"(Location: {answer.header('Location')})"
        )
    return cookies


def check_page(
    connection: http.client.HTTPConnection,
    path: str,
    *,
    host: str,
    cookies: Mapping[str, str],
    expect: Sequence[str],
) -> Answer:
    """Fetch ``path`` logged in; raise unless 200 with every ``expect`` text."""
    answer = request(connection, "GET", path, headers=https_headers(host, cookies))
    if answer.status != 200:
        raise BenchError(
            f"GET {path} answered {answer.status} "
            f"(Location: {answer.header('Location')}), not 200"
        )
    text = answer.body.decode(errors="replace")
    missing = [word for word in expect if word not in text]
    if missing:
        raise BenchError(f"GET {path} is 200 but lacks {missing!r}")
    return answer


# -- wrk ---------------------------------------------------------------------


def parse_wrk_output(stdout: str) -> dict[str, Any]:
    """The JSON line :file:`wrk_report.lua` prints (the last one wins)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    raise BenchError(f"wrk printed no report: {stdout[-500:]!r}")


def wrk_argv(
    target: Target, load: Load, seconds: float, headers: Mapping[str, str]
) -> list[str]:
    argv = [
        "wrk",
        f"--threads={load.threads}",
        f"--connections={load.connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={WRK_SCRIPT}",
    ]
    for name, value in headers.items():
        argv.append(f"--header={name}: {value}")
    argv.append(target.url)
    return argv


def run_wrk(
    target: Target, load: Load, seconds: float, headers: Mapping[str, str]
) -> dict[str, Any]:
    """One wrk run; its report plus the target's name."""
    argv = wrk_argv(target, load, seconds, headers)
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stderr.strip()}")
    report = parse_wrk_output(result.stdout)
    report["target"] = target.name
    return report


def rotated(items: Sequence[Any], round_index: int) -> list[Any]:
    """``items`` started at position ``round_index``: each round another
    target goes first."""
    if not items:
        return []
    shift = round_index % len(items)
    return list(items[shift:]) + list(items[:shift])


@dataclass
class WebResults:
    """Every wrk report by target, and the summary the table shows."""

    load: Load
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def summary(self, baseline: str) -> dict[str, dict[str, Any]]:
        """Per target: medians over rounds, spread, and ratio to ``baseline``."""
        base_runs = self.runs.get(baseline, [])
        out: dict[str, dict[str, Any]] = {}
        for name, runs in self.runs.items():
            ratios = [
                ratio(run["rps"], base["rps"])
                for run, base in zip(runs, base_runs, strict=False)
            ]
            out[name] = {
                "rounds": len(runs),
                "rps_median": median(run["rps"] for run in runs),
                "rps_spread": spread(run["rps"] for run in runs),
                "p50_ms_median": median(run["p50_ms"] for run in runs),
                "p95_ms_median": median(run["p95_ms"] for run in runs),
                "p99_ms_median": median(run["p99_ms"] for run in runs),
                "bytes_per_response": (
                    runs[0]["bytes"] // runs[0]["requests"]
                    if runs and runs[0]["requests"]
                    else None
                ),
                "errors": sum(run["errors"] for run in runs),
                "non_2xx": sum(run["non_2xx"] for run in runs),
                "ratio_to_static_median": median(ratios),
                "ratio_to_static_spread": spread(ratios),
            }
        return out

    def to_dict(self, baseline: str) -> dict[str, Any]:
        return {
            "load": {
                "connections": self.load.connections,
                "threads": self.load.threads,
                "seconds": self.load.seconds,
                "warmup_seconds": self.load.warmup_seconds,
                "rounds": self.load.rounds,
            },
            "baseline": baseline,
            "summary": self.summary(baseline),
            "runs": self.runs,
        }


def run_web_rounds(
    targets: Sequence[Target],
    load: Load,
    headers: Mapping[str, str],
    say: Any = print,
) -> WebResults:
    """Warm every target up, then ``load.rounds`` rotated rounds of wrk."""
    results = WebResults(load)
    for target in targets:
        if load.warmup_seconds > 0:
            say(f"  warm-up {target.name} ({load.warmup_seconds:g} s)")
            run_wrk(target, load, load.warmup_seconds, headers)
        results.runs[target.name] = []
    for index in range(load.rounds):
        for target in rotated(targets, index):
            report = run_wrk(target, load, load.seconds, headers)
            report["round"] = index + 1
            results.runs[target.name].append(report)
            say(
                f"  round {index + 1}/{load.rounds} {target.name:<10} "
                f"{report['rps']:>9.1f} req/s  p50 {report['p50_ms']:.1f} ms  "
                f"p95 {report['p95_ms']:.1f} ms  non-2xx {report['non_2xx']}  "
                f"errors {report['errors']}"
            )
    return results
