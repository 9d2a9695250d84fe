"""Job kinds for the test suite only: never registered on a real node.

:func:`portal.jobqueue.registry.load` imports this module only when
``BYZANTIUM_TEST_JOBS=1`` *and* the settings module is
``portal.settings.test``. A production or ``make run`` worker never has
these kinds, so a job naming one is refused like any unknown name.
"""

from __future__ import annotations

import time
from pathlib import Path

from portal.host.builders.inspect import link_show
from portal.host.node import current_host
from portal.host.runner import SystemRunner

from .errors import JobFailed
from .log import note
from .registry import registered_job

CONFIG_PATH = "/etc/byz-test/big.conf"


@registered_job("testing.inspect", title="Inspect the loopback interface")
def inspect_loopback(*, label: str = "") -> dict[str, object]:
    """Run one real, read-only command and note something."""
    note(f"inspecting lo {label}".strip())
    result = SystemRunner().run(link_show("lo"))
    return {"returncode": result.returncode, "label": label}


@registered_job("testing.fail")
def fail(*, message: str) -> None:
    """An expected failure with the caller's message."""
    note("about to fail")
    raise JobFailed(message)


@registered_job("testing.crash")
def crash() -> None:
    """An unexpected error."""
    raise RuntimeError("boom")


@registered_job("testing.write_big_config")
def write_big_config(*, fill: str, megabytes: int, marker: str = "") -> dict[str, int]:
    """Write a large config file with the host's FileStore.

    Large so that a test can kill the worker while the file is being
    written. ``marker`` is touched first, so the test knows the job began.
    """
    if marker:
        Path(marker).touch()
    content = (fill * 1024 * 1024 * megabytes)[: 1024 * 1024 * megabytes]
    current_host().files.write(CONFIG_PATH, content)
    return {"bytes": len(content)}


@registered_job("testing.sleep")
def sleep(*, seconds: float, marker: str = "") -> None:
    """Sleep, after touching ``marker``: a job to kill in the middle."""
    if marker:
        Path(marker).touch()
    time.sleep(seconds)


@registered_job("testing.tick", every=3600, routine=True)
def tick() -> dict[str, str]:
    """A periodic routine job."""
    return {"tick": "ok"}
