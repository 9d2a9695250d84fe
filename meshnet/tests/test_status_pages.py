"""Mesh status pages and the dashboard's health line, from a recorded snapshot."""

# ruff: noqa: E501 (a recorded babeld dump has long lines)

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from meshnet.models import DirectoryEntry
from meshnet.status import DirectoryNames, build_topology, mesh_health
from portal.host.babel import parse_dump
from portal.jobqueue import health as health_module
from portal.jobqueue.health import QueueHealth
from portal.models import NodeStatus
from portal.tests.access_helpers import finish_setup, logged_in_client

pytestmark = pytest.mark.django_db

# Recorded shape of a babeld 1.12 dump: n1 hears n2 directly; n3 and a
# gateway default route are behind n2.
DUMP = """BABEL 1.0
version babeld-1.12.1
host n1
my-id 60:a6:96:93:1d:58:de:a6
ok
add interface to-n2 up true ipv6 fe80::1
add interface wlan0 up false
add neighbour 55dd address fe80::2 if to-n2 reach fff0 ureach 0000 rxcost 96 txcost 110 cost 120
add xroute 10.5.0.1/32-0.0.0.0/0 prefix 10.5.0.1/32 from 0.0.0.0/0 metric 0
add route a1 prefix 10.5.0.2/32 from 0.0.0.0/0 installed yes id 02:02 metric 120 refmetric 0 via fe80::2 if to-n2
add route a2 prefix 10.5.2.0/24 from 0.0.0.0/0 installed yes id 02:02 metric 120 refmetric 0 via fe80::2 if to-n2
add route a3 prefix 10.5.0.3/32 from 0.0.0.0/0 installed yes id 03:03 metric 216 refmetric 96 via fe80::2 if to-n2
add route a4 prefix 0.0.0.0/0 from 0.0.0.0/0 installed yes id 03:03 metric 216 refmetric 96 via fe80::2 if to-n2
ok
"""

HOSTILE = '<script>alert("x")</script>&'


def _babel() -> dict:
    dump = parse_dump(DUMP)

    def plain(obj):
        return json.loads(json.dumps(dataclasses.asdict(obj)))

    return {
        "available": True,
        "error": "",
        "neighbours": [plain(n) for n in dump.neighbours],
        "route_count": len(dump.routes),
        "xroute_count": len(dump.xroutes),
        "interfaces": [plain(i) for i in dump.interfaces],
        "routes": [plain(r) for r in dump.installed_routes],
        "xroutes": [plain(x) for x in dump.xroutes],
    }


def _snapshot(babel: dict | None = None) -> None:
    NodeStatus.store({"version": 1, "interfaces": [], "babel": babel or _babel()})


def _entry(address: str, name: str, **fields) -> DirectoryEntry:
    now = timezone.now()
    return DirectoryEntry.objects.create(
        address=address,
        name=name,
        last_seen=now,
        expires=now + timedelta(minutes=2),
        **fields,
    )


@pytest.fixture(autouse=True)
def node(db, monkeypatch):
    monkeypatch.setattr(
        health_module,
        "queue_health",
        lambda *a, **k: QueueHealth(
            redis_ok=True, worker_count=1, queued=0, message=""
        ),
    )
    finish_setup(node_name="alpha")


@pytest.fixture
def operator():
    return logged_in_client()


# -- health --------------------------------------------------------------------


def test_health_counts_links_neighbours_nodes_and_the_gateway() -> None:
    health = mesh_health({"babel": _babel()}, timezone.now())
    assert (health.links_up, health.links_total) == (1, 2)
    assert health.neighbours == 1
    assert health.nodes_reachable == 2
    assert health.gateway_reachable is True
    assert health.level == "good"
    assert health.parts == [
        "1 mesh link up",
        "1 neighbour",
        "2 nodes reachable",
        "a gateway to the Internet is reachable",
    ]


def test_health_says_plainly_when_babeld_is_down_or_nothing_collected() -> None:
    down = mesh_health({"babel": {"available": False, "error": "gone"}}, timezone.now())
    assert down.level == "bad"
    assert "not running" in down.parts[0]
    assert mesh_health(None, None).parts == [
        "The mesh status has not been collected yet."
    ]


def test_health_without_neighbours_or_gateway_warns() -> None:
    babel = _babel() | {"neighbours": [], "routes": []}
    health = mesh_health({"babel": babel}, timezone.now())
    assert health.level == "warn"
    assert health.parts[1:] == [
        "0 neighbours",
        "0 nodes reachable",
        "no gateway to the Internet",
    ]


def test_dashboard_shows_the_mesh_health_line(operator) -> None:
    _snapshot()
    page = operator.get("/").content.decode()
    assert "mesh-health--good" in page
    assert "2 nodes reachable" in page
    assert "a gateway to the Internet is reachable" in page
    # A working gateway ignores the others' default routes: it says so itself.
    from meshnet.models import MeshSettings

    MeshSettings.objects.update_or_create(
        pk=1, defaults={"announce_default_route": True}
    )
    page = operator.get("/").content.decode()
    assert "this node is the mesh&#x27;s gateway to the Internet" in page


def test_dashboard_health_line_without_snapshot(operator) -> None:
    page = operator.get("/").content.decode()
    assert "The mesh status has not been collected yet." in page


# -- pages ---------------------------------------------------------------------


def test_status_page_lists_neighbours_with_costs_and_routes_with_names(
    operator,
) -> None:
    _snapshot()
    _entry("10.5.0.2", "bravo", client_subnet="10.5.2.0/24")
    _entry("10.5.0.3", "charlie", gateway=True)
    response = operator.get("/mesh/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "fe80::2" in page
    assert "(receive 96, send 110)" in page
    assert "12 of 16" in page  # reach 0xfff0: twelve hellos heard
    for prefix in ("10.5.0.2/32", "10.5.2.0/24", "10.5.0.3/32", "0.0.0.0/0"):
        assert prefix in page
    assert "bravo" in page and "charlie" in page
    assert "Internet gateway" in page
    assert "/mesh/status/topology.svg" in page


def test_status_page_needs_login(client) -> None:
    response = client.get("/mesh/status/", secure=True)
    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_hostile_names_are_escaped_on_every_page(operator) -> None:
    _snapshot()
    _entry(
        "10.5.0.2",
        HOSTILE,
        client_subnet="10.5.2.0/24",
        services=[{"id": "x", "name": HOSTILE}],
    )
    for url in ("/mesh/status/", "/mesh/directory/", "/mesh/status/topology.svg"):
        body = operator.get(url).content.decode()
        assert "<script>" not in body, url
        assert "&lt;script&gt;" in body, url


def test_topology_svg_is_well_formed_escaped_and_script_free(operator) -> None:
    _snapshot()
    _entry("10.5.0.2", HOSTILE)
    _entry("10.5.0.3", "charlie", gateway=True)
    response = operator.get("/mesh/status/topology.svg")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    assert "default-src 'none'" in response["Content-Security-Policy"]
    root = ET.fromstring(response.content)
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in root.iter(f"{ns}text") if "label" in t.get("class", "")]
    assert labels[0] == "alpha"
    assert "charlie" in labels
    assert any(label.startswith("<script>") for label in labels)  # as text
    assert not list(root.iter(f"{ns}script"))
    assert len(list(root.iter(f"{ns}circle"))) == 3
    assert len(list(root.iter(f"{ns}line"))) == 2


@pytest.mark.parametrize("language", ["ar", "fr", "es"])
def test_topology_coordinates_are_plain_numbers_in_every_language(
    operator, language
) -> None:
    # Arabic, French and Spanish write 12,5 for 12.5: coordinates must not
    # follow the page's language, or the map is drawn in a corner.
    _snapshot()
    _entry("10.5.0.3", "charlie")
    response = operator.get("/mesh/status/topology.svg", HTTP_ACCEPT_LANGUAGE=language)
    root = ET.fromstring(response.content)
    ns = "{http://www.w3.org/2000/svg}"
    for circle in root.iter(f"{ns}circle"):
        float(circle.get("cx"))
        float(circle.get("cy"))
    for line in root.iter(f"{ns}line"):
        for attribute in ("x1", "y1", "x2", "y2"):
            float(line.get(attribute))


def test_topology_places_remote_nodes_behind_their_first_hop() -> None:
    names = DirectoryNames(by_address={"10.5.0.2": "bravo", "10.5.0.3": "charlie"})
    topology = build_topology(_babel(), names, own_name="alpha")
    kinds = {node.label: node.kind for node in topology.nodes}
    assert kinds == {"alpha": "self", "bravo": "neighbour", "charlie": "remote"}
    direct = [e for e in topology.edges if e.direct]
    behind = [e for e in topology.edges if not e.direct]
    assert [(e.a.label, e.b.label, e.cost) for e in direct] == [("alpha", "bravo", 120)]
    assert [(e.a.label, e.b.label, e.cost) for e in behind] == [
        ("bravo", "charlie", 216)
    ]
    charlie = next(n for n in topology.nodes if n.label == "charlie")
    assert charlie.gateway is True


def test_directory_page_lists_live_entries_only(operator) -> None:
    _entry("10.5.0.2", "bravo", services=[{"id": "chat", "name": "Chat"}])
    gone = _entry("10.5.0.9", "old-node")
    DirectoryEntry.objects.filter(pk=gone.pk).update(
        expires=timezone.now() - timedelta(seconds=1)
    )
    page = operator.get("/mesh/directory/").content.decode()
    assert "bravo" in page and "Chat" in page
    assert "old-node" not in page


def test_status_pages_cost_a_fixed_number_of_queries(
    operator, django_assert_max_num_queries
) -> None:
    _snapshot()
    for index in range(30):
        _entry(f"10.5.1.{index + 10}", f"node-{index}")
    with django_assert_max_num_queries(12):
        operator.get("/mesh/status/")
    with django_assert_max_num_queries(12):
        operator.get("/mesh/status/topology.svg")
