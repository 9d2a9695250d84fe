"""Where the host layer reports what it did while a job runs.

The job machinery installs a sink with :func:`recording_to` for the length of
a job; every runner and the file store call :func:`emit` after each command
or write. Outside a job (a management command, a test) nothing is installed
and the records go nowhere, unless a test installs its own list.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

LogSink = Callable[[dict[str, Any]], None]

_current_sink: ContextVar[LogSink | None] = ContextVar("host_log_sink", default=None)


def emit(record: dict[str, Any]) -> None:
    """Hand one record (a command result or a file write) to the sink."""
    sink = _current_sink.get()
    if sink is not None:
        sink(record)


@contextlib.contextmanager
def recording_to(sink: LogSink) -> Iterator[None]:
    """Send every host record inside the block to ``sink``."""
    token = _current_sink.set(sink)
    try:
        yield
    finally:
        _current_sink.reset(token)
