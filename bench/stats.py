"""Small pure helpers: medians, ratios and the readable table.

Kept free of Django and of the system so the unit tests can check them
without root, a Redis or a lab.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that exist, or None when there are none."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or zero."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def spread(values: Iterable[float | None]) -> tuple[float, float] | None:
    """(min, max) of the values that exist: how noisy the rounds were."""
    present = [value for value in values if value is not None]
    return (min(present), max(present)) if present else None


def fmt(value: Any, digits: int = 1) -> str:
    """A figure for the table: fixed decimals, thousands apart, '-' if none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i])
            for i in range(len(row))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])
