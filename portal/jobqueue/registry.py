"""The job registry: the only functions the privileged worker will ever run.

RQ normally imports whatever dotted path a job in Redis names, so anyone who
can write to Redis could make the root worker call ``os.system``. Here a job
names a *kind* (``"meshnet.apply_mesh"``), a key in this registry, and the
worker's job class (:class:`portal.jobqueue.rq.RegisteredJob`) resolves it
here and nowhere else.

Apps register their entry points in their ``jobs`` module::

    @registered_job("meshnet.apply_mesh")
    def apply_mesh(*, settings_id: int) -> dict: ...

:func:`load` imports the ``jobs`` module of every installed app (Django's
autodiscovery); the worker calls it at start-up and :func:`enqueue_job
<portal.jobqueue.services.enqueue_job>` before it validates a kind, so a kind
is known in the web and the worker alike.

Test-only kinds live in :mod:`portal.jobqueue.testing_jobs`, which
:func:`load` imports only when the environment variable
``BYZANTIUM_TEST_JOBS`` is ``1`` *and* the settings module is the test one:
a production worker never sees them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.utils.module_loading import autodiscover_modules

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\Z")
TEST_JOBS_ENV = "BYZANTIUM_TEST_JOBS"
TEST_JOBS_MODULE = "portal.jobqueue.testing_jobs"

JobFunction = Callable[..., Any]
F = TypeVar("F", bound=JobFunction)


@dataclass(frozen=True)
class RegisteredJobKind:
    """One entry of the registry."""

    kind: str
    func: JobFunction
    # Seconds between runs for periodic work, None for on-demand jobs.
    every: int | None = None
    # Periodic read-only work: hidden from the job list, pruned after an hour.
    routine: bool = False
    # What the job does in the operator's words (translatable); the job list
    # shows it instead of the kind.
    title: str | None = None


_registry: dict[str, RegisteredJobKind] = {}
_loaded = False
_load_lock = threading.Lock()


def registered_job(
    kind: str,
    every: int | None = None,
    routine: bool = False,
    title: str | None = None,
) -> Callable[[F], F]:
    """Register ``func`` as the job ``kind`` (``"app.name"``).

    ``every`` makes it periodic (the worker enqueues it every so many
    seconds); ``routine`` marks it as background work the operator need not
    see; ``title`` (a ``gettext_lazy`` string) names it on the job pages.
    Registering the same kind twice with another function is a
    programming error and raises at import time.
    """
    if not KIND_PATTERN.match(kind):
        raise ValueError(f"job kind {kind!r} must look like 'app.name'")
    if every is not None and every < 1:
        raise ValueError("every must be at least one second")

    def decorator(func: F) -> F:
        existing = _registry.get(kind)
        if existing is not None and existing.func is not func:
            if _qualified(existing.func) != _qualified(func):
                raise ValueError(f"job kind {kind!r} is already registered")
        _registry[kind] = RegisteredJobKind(
            kind=kind, func=func, every=every, routine=routine, title=title
        )
        return func

    return decorator


def _qualified(func: JobFunction) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def test_jobs_enabled() -> bool:
    """True only in a test run that asked for the test-only job kinds.

    Both conditions are needed: the variable alone does nothing under the
    dev or production settings, so a stray environment cannot add kinds to
    a real node's worker.
    """
    return os.environ.get(TEST_JOBS_ENV) == "1" and settings.SETTINGS_MODULE.endswith(
        ".settings.test"
    )


def load() -> None:
    """Import every installed app's ``jobs`` module, once per process."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        autodiscover_modules("jobs")
        # The portal's own jobs live in this package, not in portal/jobs.py.
        from . import maintenance  # noqa: F401

        if test_jobs_enabled():
            __import__(TEST_JOBS_MODULE)
        _loaded = True


def get(kind: str) -> RegisteredJobKind | None:
    """The registry entry for ``kind``, or None when it is not registered."""
    return _registry.get(kind)


def is_registered(kind: str) -> bool:
    return kind in _registry


def all_kinds() -> list[RegisteredJobKind]:
    """Every registered kind, sorted by name."""
    return [_registry[kind] for kind in sorted(_registry)]


def periodic_kinds() -> list[RegisteredJobKind]:
    """The kinds registered with ``every=``."""
    return [entry for entry in all_kinds() if entry.every is not None]


def title_of(kind: str) -> str:
    """The words for ``kind`` on the job pages (the kind itself if none)."""
    entry = _registry.get(kind)
    if entry is None or entry.title is None:
        return kind
    return str(entry.title)
