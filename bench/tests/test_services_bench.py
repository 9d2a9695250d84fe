"""The services bench counts and reads correctly; nothing here asserts a time.

The summary, the failures and the table run anywhere; one lab test runs the
real thing for the chat (one repetition) and checks that the figures are
complete and consistent, and that nothing is left running.
"""

from __future__ import annotations

import pytest

from bench import run
from bench import services as bench_services
from portal.lab import list_namespaces


def _run(healthy: float, job: float, rss: float, pss: float) -> dict:
    return {
        "healthy_seconds": healthy,
        "job_seconds": job,
        "rss_mb": rss,
        "pss_mb": pss,
        "processes": 1,
        "error": None,
    }


def test_summary_takes_medians_of_the_runs_that_became_healthy():
    runs = [_run(0.5, 0.7, 6.0, 4.0), {"error": "boom"}, _run(0.3, 0.4, 8.0, 5.0)]
    summary = bench_services.summarise("ircd", runs)
    assert (summary["repetitions"], summary["healthy"]) == (3, 2)
    assert summary["healthy_seconds_median"] == pytest.approx(0.4)
    assert summary["healthy_seconds_max"] == 0.5
    assert summary["pss_mb_median"] == pytest.approx(4.5)
    assert summary["errors"] == ["boom"]
    failures = bench_services.services_failures({"services": [summary]})
    assert failures == ["service ircd healthy 2/3"]
    text = bench_services.render_services({"services": [summary]})
    assert "ircd" in text and "2/3" in text and "0.40" in text


def test_the_flag_and_the_prefix():
    assert run.parse_args([]).services is False
    assert run.parse_args(["--services"]).services is True
    assert bench_services.SERVICES_LAB_PREFIX not in (
        run.NODE_LAB_PREFIX,
        run.CONVERGENCE_LAB_PREFIX,
        "bnm",
    )
    assert {"ircd", "voice", "xmpp", "stream", "library"} <= set(
        bench_services.SERVICES
    )


@pytest.mark.lab
@pytest.mark.django_db(transaction=True)
def test_the_chat_becomes_healthy_and_its_daemon_is_measured(monkeypatch):
    from portal.lab.pytest_plugin import new_test_lab, require_root

    require_root()
    monkeypatch.setattr(bench_services, "SETTLE_SECONDS", 0.2)
    lab = new_test_lab()
    try:
        result = bench_services.run_services(
            lab.base_dir,
            services=("ircd",),
            repetitions=1,
            prefix=lab.prefix,
            say=lambda _line: None,
        )
        (row,) = result["services"]
        assert row["healthy"] == 1, row["errors"]
        (figures,) = row["runs"]
        assert 0 < figures["healthy_seconds"] <= figures["job_seconds"]
        assert figures["rss_mb"] >= figures["pss_mb"] > 0
        assert figures["processes"] == 1
        assert lab.prefix not in {n.split("-")[0] for n in list_namespaces()}
    finally:
        lab.down()
