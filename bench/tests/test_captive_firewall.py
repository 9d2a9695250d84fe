"""The captive firewall bench without root: its classic chain and report."""

from __future__ import annotations

from bench import captive_firewall as bench


def test_fake_clients_are_distinct_and_never_the_bench_client():
    clients = bench.fake_clients(bench.MANY)
    assert len({mac for mac, _ in clients}) == bench.MANY
    assert len({ip for _, ip in clients}) == bench.MANY
    assert all(ip != bench.CLIENT_IP for _, ip in clients)


def test_classic_chain_has_one_rule_per_client_and_refuses_the_rest():
    clients = [*bench.fake_clients(3), ("02:00:00:00:00:01", bench.CLIENT_IP)]
    text = bench.classic_ruleset(clients)
    rules = [line.strip() for line in text.splitlines() if "ether saddr" in line]
    assert (
        rules[-1] == f"ether saddr 02:00:00:00:00:01 ip saddr {bench.CLIENT_IP} accept"
    )
    assert len(rules) == 4
    assert text.splitlines()[:2] == [
        "table inet bench_classic {}",
        "delete table inet bench_classic",
    ]
    assert "reject with icmpx admin-prohibited" in text


def test_report_shows_ratios():
    summary = {
        name: {"tcp_gbps": 2.0, "udp_kpps": 100.0, "p50_ms": 0.05, "p95_ms": 0.07}
        for name in ("sets-10", "sets-5000", "rules-10", "rules-5000")
    }
    result = {
        "insert": {
            "clients": 5000,
            "insert_seconds_median": 0.3,
            "read_seconds_median": 0.4,
            "classic_load_seconds_median": 0.15,
        },
        "forwarding": {
            "rounds": 2,
            "seconds": 3.0,
            "summary": summary,
            "ratios": {
                "tcp_gbps": {
                    "sets_5000_over_10": 1.0,
                    "rules_5000_over_10": 0.18,
                    "sets_over_rules_at_5000": 5.9,
                }
            },
        },
    }
    text = bench.render(result)
    assert "5000 clients in one batch: 300.0 ms" in text
    assert "rules-5000" in text and "0.180" in text and "5.900" in text
