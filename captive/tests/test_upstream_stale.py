"""An upstream namespace is removed only once its lab's nodes are gone."""

from __future__ import annotations

import subprocess

import pytest

from captive.firewall_lab import remove_stale
from portal.lab import list_namespaces
from portal.lab.pytest_plugin import new_test_prefix, require_root

pytestmark = pytest.mark.lab


def _add(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)


def test_an_orphan_upstream_goes_and_one_with_a_live_lab_stays():
    require_root()
    orphan, alive = new_test_prefix(), new_test_prefix()
    created = [f"{orphan}-up", f"{alive}-up", f"{alive}-n1"]
    try:
        for name in created:
            _add(name)
        removed = remove_stale()
        namespaces = list_namespaces()
        assert f"{orphan}-up" in removed
        assert f"{orphan}-up" not in namespaces
        # Its lab may live in another checkout's folder: it is kept.
        assert f"{alive}-up" in namespaces and f"{alive}-up" not in removed
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
