"""The gateway bench reads and reports its figures correctly; no times are
asserted. Pure parts only (the lab run is the bench itself and the lab
tests of gateway/tests/test_gateway_lab.py)."""

from __future__ import annotations

from bench import gateway, run


def _run(cut, seconds):
    return {"cut": cut, "failover_seconds": seconds, "withdrawn_seconds": 3.1,
            "error": None}  # fmt: skip


def _result(failover_runs, nat=(8.0, 9.0), routed=(10.0, 10.0)):
    times = [r["failover_seconds"] for r in failover_runs if not r.get("error")]
    return {
        "failover": {
            "runs": failover_runs,
            "repetitions": len(failover_runs),
            "ok": len(times),
            "failover_seconds_median": sorted(times)[len(times) // 2]
            if times
            else None,
            "failover_seconds_max": max(times) if times else None,
            "withdrawn_seconds_median": 3.1,
            "withdrawn_seconds_max": 3.3,
        },
        "throughput": {
            "rounds": 1,
            "seconds": 1.0,
            "median_gbps": {
                "nat_upload": nat[0],
                "nat_download": nat[1],
                "routed_upload": routed[0],
                "routed_download": routed[1],
            },  # fmt: skip
            "ratio_upload": nat[0] / routed[0],
            "ratio_download": nat[1] / routed[1],
        },
        "monitor_errors": [],
    }


def test_the_report_shows_failover_and_the_nat_over_routing_ratio():
    result = _result([_run("n1", 3.4), _run("n5", 4.2)])
    text = gateway.render(result)
    assert "2/2 runs" in text
    assert "4.20" in text and "0.800" in text and "0.900" in text
    assert gateway.gateway_failures(result) == []
    assert "Gateway failover" in run.render_report({"gateway": result, "machine": {}})


def test_a_run_that_did_not_move_makes_the_bench_invalid():
    result = _result(
        [_run("n1", 3.4), {"cut": "n5", "error": "client traffic did not reach n5"}]
    )
    assert gateway.gateway_failures(result) == [
        "gateway failover: 1 of 2 runs did not move"
    ]
    assert "gateway failover: 1 of 2 runs did not move" in run.failures(
        {"gateway": result}
    )
    assert gateway.gateway_failures(None) == []


def test_the_flag_turns_the_section_on():
    assert run.parse_args(["--gateway"]).gateway
    assert not run.parse_args([]).gateway
