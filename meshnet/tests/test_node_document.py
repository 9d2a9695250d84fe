"""The node's own document, the check of other nodes' documents, the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.cache import cache

from meshnet import node_document as nd
from meshnet.models import MeshSettings
from portal.models import NodeSettings


def _valid() -> dict:
    return nd.build_node_document(
        name="library-2",
        mesh_address="10.41.7.1",
        client_subnet="10.41.8.0/24",
        gateway=True,
        services=[
            nd.ServiceOffer(
                id="chat", name="Chat", port=8065, url="http://10.41.7.1:8065/"
            )
        ],
        timestamp=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        version="0.1.0",
    ).to_json()


def test_built_document_lists_addresses_subnet_gateway_services_version_and_time() -> (
    None
):
    data = _valid()
    assert data == {
        "schema": "byzantium-node/1",
        "name": "library-2",
        "mesh_address": "10.41.7.1",
        "addresses": ["10.41.7.1", "10.41.8.1"],
        "client_subnet": "10.41.8.0/24",
        "gateway": True,
        "services": [
            {
                "id": "chat",
                "name": "Chat",
                "protocol": "http",
                "port": 8065,
                "url": "http://10.41.7.1:8065/",
                "purpose": "",
            }
        ],
        "version": "0.1.0",
        "timestamp": "2024-05-01T12:00:00+00:00",
    }


def test_a_built_document_passes_its_own_check() -> None:
    document = nd.parse_document(json.dumps(_valid()).encode())
    assert document.name == "library-2"
    assert document.gateway is True
    assert document.services[0].port == 8065
    assert document.timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_unknown_keys_of_a_newer_node_are_dropped() -> None:
    data = _valid() | {"future": {"x": 1}}
    assert "future" not in nd.parse_document(json.dumps(data).encode()).to_json()


def test_software_version_comes_from_pyproject() -> None:
    assert nd.software_version() == "0.1.0"


HOSTILE = {
    "script in the name": {"name": "<script>alert(1)</script>"},
    "html in a service name": {"services": [{"id": "chat", "name": "<b>x</b>"}]},
    "space and semicolon in the name": {"name": "a b;c"},
    "shell in the name": {"name": "$(reboot)"},
    "newline in the name": {"name": "a\nb"},
    "non-ascii name": {"name": "café"},
    "over-long name": {"name": "a" * 64},
    "name is a number": {"name": 42},
    "gateway is a string": {"gateway": "yes"},
    "address is not an address": {"mesh_address": "10.0.0.999"},
    "addresses is a dict": {"addresses": {"a": 1}},
    "too many addresses": {"addresses": ["10.0.0.1"] * 17},
    "subnet is garbage": {"client_subnet": "10.0.0.0/33"},
    "service is a list": {"services": [[1]]},
    "service id with a dot": {"services": [{"id": "a.b", "name": "x"}]},
    "service port out of range": {
        "services": [{"id": "a", "name": "x", "port": 70000}]
    },
    "service port is a bool": {"services": [{"id": "a", "name": "x", "port": True}]},
    "javascript url": {
        "services": [{"id": "a", "name": "x", "url": "javascript:alert(1)"}]
    },
    "duplicate service ids": {
        "services": [{"id": "a", "name": "x"}, {"id": "a", "name": "y"}]
    },
    "too many services": {
        "services": [{"id": f"s{i}", "name": "x"} for i in range(65)]
    },
    "markup in a service purpose": {
        "services": [{"id": "a", "name": "x", "purpose": "<img src=x>"}]
    },
    "over-long service purpose": {
        "services": [{"id": "a", "name": "x", "purpose": "a" * 201}]
    },
    "service purpose is a number": {
        "services": [{"id": "a", "name": "x", "purpose": 7}]
    },
    "timestamp is not a time": {"timestamp": "yesterday"},
    "timestamp without zone": {"timestamp": "2024-05-01T12:00:00"},
    "wrong schema": {"schema": "other/1"},
    "version with markup": {"version": "<1>"},
}


@pytest.mark.parametrize("change", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_or_malformed_documents_are_refused(change: dict) -> None:
    data = _valid() | change
    with pytest.raises(nd.DocumentError):
        nd.parse_document(json.dumps(data).encode())


@pytest.mark.parametrize(
    "body",
    [
        b"x" * (nd.MAX_DOCUMENT_BYTES + 1),
        b"\xff\xfe not utf-8",
        b"<html>not json</html>",
        b"[1, 2, 3]",
        b'{"schema": "byzantium-node/1", "name": "a", "gateway": NaN}',
        b"[" * 5000 + b"]" * 5000,
        b"",
    ],
    ids=["oversized", "not utf-8", "html", "a list", "NaN", "deep nesting", "empty"],
)
def test_bodies_that_are_not_a_small_json_object_are_refused(body: bytes) -> None:
    with pytest.raises(nd.DocumentError):
        nd.parse_document(body)


def test_registered_service_providers_fill_the_services_list() -> None:
    def provider():
        return [nd.ServiceOffer(id="pad", name="Pad", port=9001)]

    nd.register_service_provider(provider)
    try:
        assert [s.id for s in nd.local_services()] == ["pad"]
    finally:
        nd.unregister_service_provider(provider)
    assert nd.local_services() == ()


# -- the API -------------------------------------------------------------------


@pytest.fixture
def configured_node(db):
    cache.clear()
    NodeSettings.objects.update_or_create(pk=1, defaults={"node_name": "alpha"})
    MeshSettings.objects.update_or_create(
        pk=1,
        defaults={"mesh_address": "10.9.0.1", "client_subnet": "10.9.1.0/24"},
    )
    cache.clear()
    yield
    cache.clear()


def test_api_answers_over_plain_http_with_the_node_document(
    client, configured_node
) -> None:
    response = client.get("/api/v1/node")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert data["name"] == "alpha"
    assert data["mesh_address"] == "10.9.0.1"
    assert data["client_subnet"] == "10.9.1.0/24"
    assert data["addresses"] == ["10.9.0.1", "10.9.1.1"]
    assert data["gateway"] is False
    assert data["services"] == []
    # What we publish passes what every other node checks.
    assert nd.parse_document(response.content).name == "alpha"


def test_api_is_cached_no_query_after_the_first(
    client, configured_node, django_assert_max_num_queries, django_assert_num_queries
) -> None:
    with django_assert_max_num_queries(2):
        client.get("/api/v1/node")
    with django_assert_num_queries(0):
        for _ in range(20):
            assert client.get("/api/v1/node").status_code == 200


def test_api_shows_a_change_at_once_after_a_save(client, configured_node) -> None:
    client.get("/api/v1/node")
    settings_row = MeshSettings.load()
    settings_row.announce_default_route = True
    settings_row.save()
    assert json.loads(client.get("/api/v1/node").content)["gateway"] is True
    NodeSettings.objects.filter(pk=1).update(node_name="beta")  # no signal
    node = NodeSettings.load()
    node.node_name = "gamma"
    node.save()
    assert json.loads(client.get("/api/v1/node").content)["name"] == "gamma"


def test_api_refuses_writes(client, configured_node) -> None:
    assert client.post("/api/v1/node").status_code == 405


def test_a_service_purpose_travels_in_the_document_and_passes_the_check() -> None:
    data = _valid()
    data["services"][0]["purpose"] = "Talk with everyone on the mesh"
    checked = nd.validate_document(data)
    assert checked.services[0].purpose == "Talk with everyone on the mesh"
    assert checked.to_json()["services"][0]["purpose"] == (
        "Talk with everyone on the mesh"
    )
