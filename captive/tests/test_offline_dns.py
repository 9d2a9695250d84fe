"""The node's DNS answer for outside names while the mesh is offline."""

from __future__ import annotations

import pytest

from captive import probes
from captive.models import CaptiveSettings, PortalInterface
from captive.selectors import offline_dns_answer
from meshnet.state import MeshState

pytestmark = pytest.mark.django_db


def test_portal_on_and_offline_answers_every_outside_name_with_the_node():
    PortalInterface.objects.create(name="br-lan", enabled=True)
    assert offline_dns_answer() == probes.OFFLINE_ADDRESS
    assert MeshState.from_db().offline_dns_answer == probes.OFFLINE_ADDRESS


def test_an_uplink_brings_back_real_dns():
    PortalInterface.objects.create(name="br-lan", enabled=True)
    row = CaptiveSettings.load()
    row.uplink_online = True
    row.save()
    assert offline_dns_answer() is None
    assert MeshState.from_db().offline_dns_answer is None


def test_portal_off_changes_nothing_in_dns():
    PortalInterface.objects.create(name="br-lan", enabled=False)
    assert offline_dns_answer() is None
