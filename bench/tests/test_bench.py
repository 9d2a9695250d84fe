"""The bench's own logic: parsing, ratios, the wrk script, memory reading.

No test here asserts on a time or a speed: the figures belong to the bench
run, these only check that the bench counts and reads correctly.
"""

from __future__ import annotations

import http.server
import importlib
import json
import os
import threading
from pathlib import Path

import pytest

from bench import convergence, memory, run, stats, web

SMAPS_ROLLUP = """\
55d0c0a00000-7ffc3b9fe000 ---p 00000000 00:00 0                          [rollup]
Rss:               81234 kB
Pss:               60321 kB
Pss_Anon:          50000 kB
Shared_Clean:      20000 kB
Private_Clean:      1200 kB
Private_Dirty:     54000 kB
Swap:                  0 kB
"""


def test_smaps_rollup_fields_are_read_in_bytes():
    fields = memory.parse_smaps_rollup(SMAPS_ROLLUP)
    assert fields["Rss"] == 81234 * 1024
    assert fields["Pss"] == 60321 * 1024
    assert fields["Private_Dirty"] == 54000 * 1024
    assert "55d0c0a00000-7ffc3b9fe000 ---p 00000000 00" not in fields


def test_memory_of_a_live_process_orders_rss_pss_uss():
    own = memory.component_memory("me", os.getpid())
    assert [p.pid for p in own.processes][0] == os.getpid()
    assert own.rss >= own.pss >= own.uss > 0


def test_memory_summary_checks_pss_total_against_the_target():
    big = memory.ComponentMemory(
        "web",
        (memory.ProcessMemory(1, "x", "x", 300 * memory.MIB, 160 * memory.MIB, 1),),
    )
    small = memory.ComponentMemory(
        "web",
        (memory.ProcessMemory(1, "x", "x", 300 * memory.MIB, 140 * memory.MIB, 1),),
    )
    assert memory.summarise([big])["pss_within_target"] is False
    assert memory.summarise([small])["pss_within_target"] is True
    assert memory.summarise([small])["total_rss_mb"] == 300.0


def test_wrk_report_is_the_last_json_line():
    out = 'Running 1s test\n{"rps": 1.0}\nnoise\n{"rps": 2.5, "non_2xx": 0}\n'
    assert web.parse_wrk_output(out) == {"rps": 2.5, "non_2xx": 0}
    with pytest.raises(web.BenchError):
        web.parse_wrk_output("unable to connect\n")


@pytest.mark.parametrize(
    "html",
    [
        b'<input type="hidden" name="csrfmiddlewaretoken" value="abc123">',
        b"<input value='abc123' name='csrfmiddlewaretoken' type=hidden>",
    ],
)
def test_csrf_token_is_found_in_either_attribute_order(html):
    assert web.csrf_token_from(html) == "abc123"
    assert web.csrf_token_from(b"<form></form>") is None


def test_rounds_rotate_which_target_goes_first():
    items = ["static", "dashboard", "jobs"]
    assert web.rotated(items, 0) == items
    assert web.rotated(items, 1) == ["dashboard", "jobs", "static"]
    assert web.rotated(items, 4) == ["dashboard", "jobs", "static"]


def _report(rps: float, non_2xx: int = 0) -> dict:
    return {
        "rps": rps,
        "p50_ms": 10.0,
        "p95_ms": 20.0,
        "p99_ms": 30.0,
        "requests": 100,
        "bytes": 5000,
        "errors": 0,
        "non_2xx": non_2xx,
    }


def test_ratio_is_taken_within_each_round_then_the_median():
    results = web.WebResults(web.Load(rounds=3))
    results.runs["static"] = [_report(1000), _report(2000), _report(1000)]
    results.runs["page"] = [_report(100), _report(100), _report(300)]
    summary = results.summary("static")["page"]
    # Per round 0.1, 0.05, 0.3: median 0.1, not median(page)/median(static).
    assert summary["ratio_to_static_median"] == pytest.approx(0.1)
    assert summary["ratio_to_static_spread"] == pytest.approx((0.05, 0.3))
    assert summary["rps_median"] == 100
    assert summary["bytes_per_response"] == 50


def test_a_run_with_non_2xx_answers_is_not_valid():
    results = web.WebResults(web.Load(rounds=1))
    results.runs["static"] = [_report(1000)]
    results.runs["dashboard"] = [_report(100, non_2xx=3)]
    report = {"node": {"web": results.to_dict("static")}, "errors": []}
    assert any("dashboard" in problem for problem in run.failures(report))
    results.runs["dashboard"] = [_report(100)]
    report = {"node": {"web": results.to_dict("static")}, "errors": []}
    assert run.failures(report) == []


def test_convergence_summary_counts_only_converged_repetitions():
    case = convergence.Case(5, "line", 3)
    runs = [
        {"babel_seconds": 3.0, "up_seconds": 4.0, "error": None},
        {"error": "did not converge"},
        {"babel_seconds": 5.0, "up_seconds": 6.0, "error": None},
    ]
    summary = convergence.summarise_case(case, runs)
    assert summary["converged"] == 2
    assert summary["babel_seconds_median"] == 4.0
    assert summary["up_seconds_max"] == 6.0
    assert run.failures({"lab": [summary], "errors": []}) == [
        "lab line-5 did not always converge"
    ]


def test_median_and_ratio_ignore_missing_values():
    assert stats.median([None, 3.0, 1.0]) == 2.0
    assert stats.median([None]) is None
    assert stats.ratio(1.0, 0) is None
    assert stats.ratio(None, 2.0) is None


def test_table_aligns_columns():
    text = stats.table(["a", "bb"], [["x", "1"], ["yyy", "22"]])
    lines = text.splitlines()
    assert lines[0] == "a    bb"
    assert lines[2] == "x     1"
    assert lines[3] == "yyy  22"


def test_stale_work_dirs_of_dead_runs_are_removed(tmp_path):
    dead = tmp_path / f"{run.WORK_PREFIX}dead"
    dead.mkdir()
    # A pid above the kernel's pid_max is never alive.
    (dead / run.OWNER_FILE).write_text("99999999\n")
    alive = tmp_path / f"{run.WORK_PREFIX}alive"
    alive.mkdir()
    (alive / run.OWNER_FILE).write_text(f"{os.getpid()}\n")
    assert run.remove_stale_work_dirs(tmp_path) == [dead]
    assert alive.exists() and not dead.exists()


def test_bench_environment_drops_nothing_it_needs():
    env = run.bench_environment(Path("/tmp/w"), root=False)
    assert env["BYZANTIUM_STATE_DIR"] == "/tmp/w/state"
    assert env["BYZANTIUM_HOST_MODE"] == "dry-run"
    assert env["DJANGO_SETTINGS_MODULE"] == "portal.settings.dev"
    assert run.bench_environment(Path("/x"), root=True)["BYZANTIUM_HOST_MODE"] == "lab"


def test_static_app_serves_the_chosen_file(tmp_path, monkeypatch):
    page = tmp_path / "page.html"
    page.write_bytes(b"<h1>hello</h1>")
    monkeypatch.setenv("BENCH_STATIC_FILE", str(page))
    static_app = importlib.reload(importlib.import_module("bench.static_app"))
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(static_app.application({}, start_response))
    assert body == b"<h1>hello</h1>"
    assert seen["status"] == "200 OK"
    assert seen["headers"]["Content-Length"] == "14"


class _Redirecting(http.server.BaseHTTPRequestHandler):
    """Answers like a portal page without a session: 302 to the login."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        self.send_response(302)
        self.send_header("Location", "/login/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_wrk_script_counts_redirects_as_non_2xx():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = web.Target("redirect", server.server_address[1], "/")
        load = web.Load(connections=2, threads=1)
        report = web.run_wrk(target, load, 1, {"X-Forwarded-Proto": "https"})
    finally:
        server.shutdown()
        server.server_close()
    assert report["requests"] > 0
    assert report["non_2xx"] == report["requests"]
    assert report["statuses"] == {"302": report["requests"]}
    assert json.dumps(report)
