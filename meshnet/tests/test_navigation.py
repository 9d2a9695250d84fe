"""Operator pages point at the mesh pages and warn of a change to confirm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from meshnet.models import ChangeState, PendingChange
from portal.tests.access_helpers import finish_setup, logged_in_client

pytestmark = pytest.mark.django_db

BANNER = "A network change is waiting for your confirmation."


@pytest.fixture
def operator():
    finish_setup()
    return logged_in_client()


def _open_change(state: str = ChangeState.WAITING) -> PendingChange:
    return PendingChange.objects.create(
        kind="addresses",
        state=state,
        deadline=timezone.now() + timedelta(seconds=90),
    )


def test_every_operator_page_warns_of_a_change_waiting_for_confirmation(operator):
    change = _open_change()
    for path in ("/", "/jobs/", "/mesh/status/"):
        text = operator.get(path).content.decode()
        assert BANNER in text, path
        assert change.get_absolute_url() in text, path


def test_no_warning_once_the_change_is_confirmed(operator):
    _open_change(state=ChangeState.CONFIRMED)
    assert BANNER not in operator.get("/").content.decode()


def test_public_pages_never_query_or_show_pending_changes(operator):
    _open_change()
    text = Client().get("/").content.decode()
    assert BANNER not in text


def test_mesh_pages_carry_the_mesh_navigation_and_other_pages_do_not(operator):
    mesh = operator.get("/mesh/status/").content.decode()
    assert 'aria-label="Mesh pages"' in mesh
    for name in ("/mesh/directory/", "/mesh/interfaces/", "/mesh/addresses/"):
        assert f'href="{name}"' in mesh
    assert 'aria-label="Mesh pages"' not in operator.get("/jobs/").content.decode()
    assert 'href="/mesh/status/"' in operator.get("/jobs/").content.decode()


def test_mesh_root_opens_the_mesh_status_page(operator):  # type: ignore[no-untyped-def]
    response = operator.get("/mesh/", secure=True)
    assert response.status_code == 302
    assert response["Location"] == "/mesh/status/"
