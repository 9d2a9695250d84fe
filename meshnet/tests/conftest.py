"""Fixtures shared by the meshnet tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshnet import node_document


@pytest.fixture(autouse=True)
def _no_foreign_service_providers() -> Iterator[None]:
    """Meshnet tests see only the service providers they register themselves.

    Installed apps (the services app) register their providers at start-up;
    their offers, and the queries that build them, belong to their own tests.
    """
    saved = list(node_document._service_providers)
    node_document._service_providers.clear()
    yield
    node_document._service_providers[:] = saved
