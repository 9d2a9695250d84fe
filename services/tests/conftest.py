"""Fixtures of the services tests: a fake catalogue swapped in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services import catalogue as catalogue_module

from .fake_catalogue import write_fake_catalogue


@pytest.fixture
def fake_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """The fake catalogue as the installed one, for the test's length."""
    cat = catalogue_module.load_catalogue(write_fake_catalogue(tmp_path / "cat"))
    monkeypatch.setattr(catalogue_module, "catalogue", lambda: cat)
    yield cat
