"""The mesh bench counts and reads correctly; nothing here asserts a time.

The pure parts (the route poller with a fake clock, nft counters, the
summaries and the table) run anywhere; one lab test runs the real thing on
a tiny mesh (a 3-node line after apply, a 4-node sync) and checks that the
figures are complete and consistent, not how fast they are.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from bench import meshnet, run
from portal.lab import LabSpec, list_namespaces

NFT_JSON = json.dumps(
    {
        "nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "inet", "name": "bench_http", "handle": 1}},
            {"chain": {"family": "inet", "table": "bench_http", "name": "out"}},
            {
                "rule": {
                    "family": "inet",
                    "table": "bench_http",
                    "chain": "out",
                    "expr": [
                        {"match": {"op": "==", "right": 80}},
                        {"counter": {"packets": 12, "bytes": 1500}},
                    ],
                }
            },
            {
                "rule": {
                    "family": "inet",
                    "table": "bench_http",
                    "chain": "in",
                    "expr": [{"counter": {"packets": 10, "bytes": 4000}}],
                }
            },
        ]
    }
)


def _net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_every_node_must_route_to_every_other_nodes_mesh_address_and_subnet():
    wanted = meshnet.wanted_routes(LabSpec(nodes=3, topology="line", clients=0))
    assert wanted["n2"] == {
        _net("10.213.0.1/32"),
        _net("10.213.1.0/24"),
        _net("10.213.0.3/32"),
        _net("10.213.3.0/24"),
    }
    assert all(len(prefixes) == 4 for prefixes in wanted.values())


class FakeMesh:
    """Routes that appear at given fake times; each read costs 1 time unit."""

    def __init__(self, appear: dict[str, float], lost: dict[str, float] | None = None):
        self.now = 0.0
        self.appear = appear
        self.lost = lost or {}
        self.reads: list[str] = []

    def clock(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.now += 1

    def routes(self, node: str) -> set[ipaddress.IPv4Network]:
        self.reads.append(node)
        self.now += 1
        gone = self.lost.get(node)
        if self.now >= self.appear[node] and not (
            gone and gone[0] <= self.now < gone[1]
        ):
            return {_net("10.0.0.0/8")}
        return set()


def test_convergence_is_the_moment_the_last_node_was_complete():
    mesh = FakeMesh({"n1": 0, "n2": 10})
    wanted = {"n1": {_net("10.0.0.0/8")}, "n2": {_net("10.0.0.0/8")}}
    moment, passes = meshnet.wait_routes(
        mesh.routes, wanted, clock=mesh.clock, pause=mesh.pause
    )
    # n2 is complete on the read that ends at 10 or later; the confirming
    # reads of both nodes after that do not move the moment.
    assert 10 <= moment < mesh.now
    assert mesh.reads[-2:] == ["n1", "n2"]
    # n1 was complete at once and is read again only to confirm.
    assert mesh.reads.count("n1") == 2
    assert passes > 1


def test_a_route_lost_before_the_confirmation_keeps_the_poller_waiting():
    mesh = FakeMesh({"n1": 0, "n2": 3}, lost={"n1": (2, 8)})
    wanted = {"n1": {_net("10.0.0.0/8")}, "n2": {_net("10.0.0.0/8")}}
    moment, _ = meshnet.wait_routes(
        mesh.routes, wanted, clock=mesh.clock, pause=mesh.pause
    )
    assert moment >= 8
    assert mesh.reads.count("n1") > 2


def test_no_convergence_names_the_nodes_still_missing_routes():
    mesh = FakeMesh({"n1": 0, "n2": 1e9})
    wanted = {"n1": {_net("10.0.0.0/8")}, "n2": {_net("10.0.0.0/8")}}
    with pytest.raises(TimeoutError, match="n2"):
        meshnet.wait_routes(
            mesh.routes, wanted, timeout=50, clock=mesh.clock, pause=mesh.pause
        )


def test_case_summary_counts_only_converged_repetitions():
    case = meshnet.Case(5, "grid", 3)
    runs = [
        {
            "from_first_seconds": 3.0,
            "from_last_seconds": 1.0,
            "apply_seconds": 2.0,
            "error": None,
        },
        {"error": "no convergence"},
        {
            "from_first_seconds": 5.0,
            "from_last_seconds": 2.0,
            "apply_seconds": 3.0,
            "error": None,
        },
    ]
    summary = meshnet.summarise_case(case, runs)
    assert summary["case"] == "grid-5"
    assert (summary["repetitions"], summary["converged"]) == (3, 2)
    assert summary["from_first_median"] == 4.0
    assert summary["from_first_max"] == 5.0
    assert summary["from_last_max"] == 2.0
    assert meshnet.mesh_failures({"convergence": [summary]}) == [
        "mesh grid-5 did not always converge after apply"
    ]


def test_default_cases_cover_5_10_20_nodes_in_line_and_grid():
    assert {c.name for c in meshnet.DEFAULT_CASES} == {
        f"{t}-{n}" for n in (5, 10, 20) for t in ("line", "grid")
    }
    assert all(c.repetitions == 1 for c in meshnet.QUICK_CASES)


def test_nft_counters_are_summed_per_chain():
    assert meshnet.parse_counters(NFT_JSON) == {
        "out": {"packets": 12, "bytes": 1500},
        "in": {"packets": 10, "bytes": 4000},
    }
    assert meshnet.parse_counters("") == {}


def _sync(seconds: float, seen: int, doc_bytes: int) -> dict:
    return {
        "seconds": seconds,
        "candidates": seen,
        "seen": [f"10.213.0.{i}" for i in range(2, seen + 2)],
        "refused": {},
        "unreachable": {},
        "bytes_fetched": doc_bytes,
    }


def test_a_round_takes_the_difference_of_the_counters():
    before = {"sent_bytes": 100, "received_bytes": 1000, "packets": 5}
    after = {"sent_bytes": 600, "received_bytes": 4000, "packets": 25}
    figures = meshnet.round_figures(_sync(0.4, 3, 700), before, after)
    assert figures["fetched"] == 3
    assert figures["document_bytes"] == 700
    assert figures["http_bytes"] == 3500
    assert (figures["http_sent_bytes"], figures["http_received_bytes"]) == (500, 3000)
    assert figures["http_packets"] == 20


def test_sync_summary_keeps_the_first_round_apart_and_counts_both_directions():
    zero = {"sent_bytes": 0, "received_bytes": 0, "packets": 0}

    def counted(total: int) -> dict:
        return {"sent_bytes": 0, "received_bytes": total, "packets": 1}

    rounds = [
        meshnet.round_figures(_sync(0.9, 3, 600), zero, counted(5000)),
        meshnet.round_figures(_sync(0.3, 3, 600), zero, counted(3000)),
        meshnet.round_figures(_sync(0.5, 3, 600), zero, counted(3100)),
    ]
    summary = meshnet.summarise_sync(4, "line", rounds, period=30.0)
    assert summary["first_seconds"] == 0.9
    assert summary["seconds_median"] == 0.4
    assert summary["http_bytes_median"] == 3050
    # fetching every other node's document and serving one's own to each
    assert summary["node_bytes_per_period"] == 6100
    assert summary["node_bytes_per_second"] == pytest.approx(6100 / 30)
    assert summary["complete"] is True
    rounds[2]["fetched"] = 2
    incomplete = meshnet.summarise_sync(4, "line", rounds, period=30.0)
    assert meshnet.mesh_failures({"directory": [incomplete]}) == [
        "directory sync line-4 did not fetch every node"
    ]


def test_report_shows_both_tables_and_a_failed_sync():
    case = meshnet.summarise_case(
        meshnet.Case(5, "line", 1),
        [
            {
                "from_first_seconds": 2.5,
                "from_last_seconds": 1.25,
                "apply_seconds": 1.0,
                "error": None,
            }
        ],
    )
    zero = {"sent_bytes": 0, "received_bytes": 0, "packets": 0}
    sync = meshnet.summarise_sync(
        20,
        "grid",
        [meshnet.round_figures(_sync(0.4, 19, 4615), zero, dict(zero))],
        period=30.0,
    )
    text = run.render_report(
        {
            "mesh": {
                "convergence": [case],
                "directory": [sync, {"case": "line-20", "error": "boom"}],
            }
        }
    )
    assert "Convergence after apply" in text
    assert "line-5" in text and "2.50" in text and "1.25" in text
    assert "19/19" in text and "4,615" in text
    assert "line-20" in text and "FAILED" in text


def test_mesh_flags_choose_the_cases():
    assert run.parse_args([]).mesh is False
    assert run.parse_args(["--mesh"]).mesh is True
    assert run.parse_args(["--no-mesh"]).no_mesh is True


@pytest.mark.lab
@pytest.mark.django_db(transaction=True)
def test_a_tiny_mesh_converges_after_apply_and_syncs_every_document():
    """Real labs: the figures exist and agree with each other."""
    from portal.lab.pytest_plugin import new_test_lab, require_root

    require_root()
    lab = new_test_lab()
    try:
        (summary,) = meshnet.run_apply_convergence(
            lab, [meshnet.Case(3, "line", 1)], say=lambda _line: None
        )
        assert summary["converged"] == 1, summary["runs"]
        first = summary["runs"][0]
        assert first["from_first_seconds"] >= first["from_last_seconds"] > 0
        assert first["from_first_seconds"] >= first["apply_seconds"]
        assert lab.prefix not in {n.split("-")[0] for n in list_namespaces()}

        sync = meshnet.time_directory_sync(lab, 4, "line", 2, say=lambda _line: None)
        assert sync["complete"] is True
        for figures in sync["rounds"]:
            assert figures["fetched"] == 3 and figures["failed"] == 0
            # every document crossed the wire inside its HTTP answer
            assert figures["http_received_bytes"] > figures["document_bytes"] > 0
            assert figures["http_sent_bytes"] > 0
        assert lab.prefix not in {n.split("-")[0] for n in list_namespaces()}
        assert not lab.base_dir.exists()
    finally:
        lab.down()


def test_mesh_lab_prefix_is_the_bench_own():
    assert meshnet.MESH_LAB_PREFIX not in (
        run.NODE_LAB_PREFIX,
        run.CONVERGENCE_LAB_PREFIX,
    )
