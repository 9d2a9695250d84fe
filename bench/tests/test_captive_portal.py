"""The captive portal bench without root: its figures, checks and report."""

from __future__ import annotations

from bench import captive_portal as bench


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert bench.percentile(values, 0.5) == 10.0
    assert bench.percentile(values, 0.95) == 19.0
    assert bench.percentile([7.0], 0.95) == 7.0
    assert bench.percentile([], 0.5) is None


def test_tap_summary_in_milliseconds_against_the_target():
    samples = [{"answered": 0.01, "reached": s / 1000} for s in range(40, 60)]
    summary = bench.summarise_taps(samples)
    assert summary["rounds"] == summary["through"] == 20
    assert summary["p50_ms"] == 49.0
    assert summary["p95_ms"] == 58.0
    assert summary["within_target"] is True
    slow = bench.summarise_taps([*samples, *[{"reached": 0.5}] * 3])
    assert slow["within_target"] is False


def test_a_held_probe_that_gets_a_2xx_is_counted_wrong():
    report = {
        "requests": 1000,
        "rps": 500.0,
        "non_2xx": 990,
        "statuses": {"302": 980, "502": 10},
        "errors": 0,
        "p50_ms": 1.0,
        "p95_ms": 2.0,
    }
    row = bench.probe_case(report, mode="held", connections=100, expected=302)
    # 10 answers were 2xx (the online answer) and 10 were 502.
    assert row["unexpected"] == 20
    through = dict(report, non_2xx=3, statuses={"302": 3})
    row = bench.probe_case(through, mode="through", connections=500, expected=204)
    assert row["unexpected"] == 3
    failures = bench.portal_failures(
        {"tap": {"rounds": 2, "through": 2}, "probes": [row]}
    )
    assert failures == [
        "through probe at 500 connections: 3 unexpected answers, 0 errors"
    ]


def test_wrk_runs_in_the_client_namespace_with_the_probe_host():
    argv = bench.wrk_probe_argv("bcp-c1", "http://198.51.100.80/generate_204", 500, 5)
    assert argv[:4] == ["ip", "netns", "exec", "bcp-c1"]
    assert argv[argv.index("-c") + 1] == "500"
    assert f"Host: {bench.PROBE_HOST}" in argv
    assert argv[-1] == "http://198.51.100.80/generate_204"


def test_report_shows_tap_percentiles_and_rates():
    result = {
        "tap": {
            "rounds": 30,
            "through": 30,
            "p50_ms": 42.3,
            "p95_ms": 77.5,
            "max_ms": 148.7,
            "target_p95_ms": 200.0,
            "within_target": True,
        },
        "seconds": 5.0,
        "probes": [
            {
                "mode": "held",
                "connections": 500,
                "expected_status": 302,
                "rps": 1142.1,
                "p50_ms": 331.28,
                "p95_ms": 1115.87,
                "errors": 0,
                "unexpected": 0,
            }
        ],
    }
    text = bench.render(result)
    assert "p50 42.3 ms, p95 77.5 ms" in text
    assert "(target p95 <= 200 ms: met)" in text
    assert "held (302)" in text and "1,142.1" in text


def test_tap_jobs_say_how_long_they_queued_and_until_the_nft_batch():
    from datetime import UTC, datetime, timedelta

    created = datetime(2026, 12, 4, 5, 0, 0, tzinfo=UTC)
    started = created + timedelta(milliseconds=12)
    log = [
        {
            "argv": ["ip", "-j", "neigh"],
            "at": (started + timedelta(milliseconds=8)).isoformat(),
            "duration": 0.006,
        },
        {
            "argv": ["nft", "-f", "-"],
            "at": (started + timedelta(milliseconds=40)).isoformat(),
            "duration": 0.028,
        },
    ]
    summary = bench.summarise_tap_jobs([(created, started, log), (created, None, [])])
    assert summary["queued_p50_ms"] == 12.0
    assert summary["claimed_to_through_p50_ms"] == 40.0
    assert summary["nft_batch_p50_ms"] == 28.0
