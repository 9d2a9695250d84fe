"""pytest fixtures that give tests real labs (registered in the root conftest).

- ``make_lab(nodes=3, topology="line", clients=1, converge=True,
  bare=False) -> Lab`` builds a lab, waits for babel convergence
  (``lab.converged_after`` holds the seconds) and tears it down at the end
  of the test, failed or not. ``bare=True`` builds only namespaces, links
  and bridges: the test configures the nodes itself (``lab.node_host(n)``,
  ``lab.node_state(n)``, ``meshnet.apply.apply_mesh``) and starts the
  clients with ``lab.start_clients()``.
- ``make_module_lab`` is the same factory shared by one test module, for
  tests that only read a lab: one build instead of one per test.

Every lab gets a fresh prefix ``lt`` + three random characters, so
namespace names stay short (``ltk3x-n10``), two test runs never share a
lab, and no test ever touches the ``byz`` lab of ``make run``. Each lab
records the pytest process as its owner; at session start, labs with a test
prefix whose owner is dead (a run that was killed) are removed, while labs
of a parallel run that is still alive are left alone.

Labs need root (network namespaces); without it the lab tests fail with a
message saying so, rather than being skipped: CI runs as root.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portal.host.runner import NETNS_RUN_DIR, is_root

from .lab import MARKER, Lab, list_namespaces, pid_alive
from .spec import LabSpec

TEST_PREFIX = re.compile(r"^lt[a-z0-9]{3}\Z")
_ALPHABET = string.ascii_lowercase + string.digits
# A test lab younger than this is never judged stale: a parallel run may be
# in the middle of building it.
STALE_AFTER = 60.0

MakeLab = Callable[..., Lab]


def labs_root() -> Path:
    """Where test labs keep their folders (the test state folder's lab/)."""
    from django.conf import settings

    return settings.PORTAL.state_dir / "lab"


def new_test_prefix() -> str:
    """A prefix no namespace and no folder uses yet."""
    taken = {name.split("-", 1)[0] for name in list_namespaces()}
    root = labs_root()
    while True:
        prefix = "lt" + "".join(secrets.choice(_ALPHABET) for _ in range(3))
        if prefix not in taken and not (root / prefix).exists():
            return prefix


def new_test_lab() -> Lab:
    """A :class:`Lab` with a fresh test prefix, owned by this process."""
    import os

    prefix = new_test_prefix()
    return Lab(prefix=prefix, base_dir=labs_root() / prefix, owner_pid=os.getpid())


def _in_use(prefix: str, folder: Path, min_age: float) -> bool:
    """True when a live run owns the lab, or it is too young to judge.

    A lab younger than ``min_age`` may be one a parallel run is building
    right now (its marker may name an owner that is a short-lived helper),
    so only labs older than that are judged by their owner.
    """
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (FileNotFoundError, ValueError):
        marker = {}
    created = marker.get("created")
    if not isinstance(created, int | float):
        handles = list(NETNS_RUN_DIR.glob(f"{prefix}-*"))
        created = max((h.stat().st_mtime for h in handles), default=0.0)
    if time.time() - created < min_age:
        return True
    owner = marker.get("owner_pid")
    return isinstance(owner, int) and pid_alive(owner)


def clean_stale_test_labs(min_age: float = STALE_AFTER) -> list[str]:
    """Remove test labs whose owning test run is gone; returns their prefixes."""
    root = labs_root()
    prefixes = {
        name.split("-", 1)[0]
        for name in list_namespaces()
        if TEST_PREFIX.match(name.split("-", 1)[0])
    }
    if root.is_dir():
        prefixes |= {
            folder.name
            for folder in root.iterdir()
            if TEST_PREFIX.match(folder.name) and (folder / MARKER).exists()
        }
    removed = []
    for prefix in sorted(prefixes):
        if _in_use(prefix, root / prefix, min_age):
            continue
        Lab(prefix=prefix, base_dir=root / prefix).down()
        removed.append(prefix)
    return removed


def require_root() -> None:
    if not is_root():
        pytest.fail(
            "lab tests build network namespaces and real daemons and need root: "
            "run them as root (CI does), or deselect them with -m 'not lab'",
            pytrace=False,
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Clear labs left by killed test runs before any test builds a new one."""
    if not is_root():
        return
    try:
        clean_stale_test_labs()
    except Exception as error:  # never stop a whole session for this
        print(f"warning: could not clean stale test labs: {error}")


class _Labs:
    """The labs a fixture built, so it can take every one of them down."""

    def __init__(self) -> None:
        self.labs: list[Lab] = []

    def make(
        self,
        nodes: int = 3,
        topology: str = "line",
        clients: int = 1,
        *,
        converge: bool = True,
        timeout: float = 60.0,
        bare: bool = False,
    ) -> Lab:
        require_root()
        lab = new_test_lab()
        self.labs.append(lab)
        spec = LabSpec(nodes=nodes, topology=topology, clients=clients, bare=bare)
        lab.up(spec)
        if converge and not bare:
            lab.wait_converged(timeout=timeout, spec=spec)
        return lab

    def down_all(self) -> None:
        errors = []
        for lab in reversed(self.labs):
            try:
                lab.down()
            except Exception as error:
                errors.append(f"{lab.prefix}: {error}")
        if errors:
            raise RuntimeError("lab tear-down failed: " + "; ".join(errors))


@pytest.fixture
def make_lab() -> Iterator[MakeLab]:
    """Factory of labs, each up and converged, all removed after the test."""
    labs = _Labs()
    try:
        yield labs.make
    finally:
        labs.down_all()


@pytest.fixture(scope="module")
def make_module_lab() -> Iterator[MakeLab]:
    """Like ``make_lab``, but the labs live until the module's last test."""
    labs = _Labs()
    try:
        yield labs.make
    finally:
        labs.down_all()
