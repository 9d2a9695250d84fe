"""Template filters that show numbers the way people read them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

from portal import status

register = template.Library()


@register.filter
def human_bytes(value: int | float | None) -> str:
    """``{{ 1536|human_bytes }}`` -> ``1.5 KiB``."""
    return status.format_bytes(value)


@register.filter
def human_count(value: int | None) -> str:
    """``{{ 12345|human_count }}`` -> ``12,345`` (locale grouping)."""
    return status.format_count(value)


@register.filter
def human_duration(value: float | int | timedelta | None) -> str:
    """Seconds or a timedelta -> ``3 days 4 hours``."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return status.format_duration(value)


@register.filter
def age(value: datetime | None) -> str:
    """How long ago ``value`` was: ``12 seconds``."""
    if value is None:
        return status.format_duration(None)
    return status.format_duration((timezone.now() - value).total_seconds())


@register.filter
def result_items(value: object) -> list[tuple[str, str]]:
    """A job's JSON summary as (label, text) pairs a person can read.

    ``{"switched_on": ["ircd", "voice"]}`` -> ``[("switched on", "ircd,
    voice")]``. The keys are the jobs' own short words, so they are shown
    as they are (with spaces), not translated; anything that is not a
    mapping is one unlabelled line.
    """

    def text(item: object) -> str:
        if isinstance(item, list | tuple):
            return ", ".join(text(part) for part in item) or "—"
        if isinstance(item, dict):
            return "; ".join(f"{k}: {text(v)}" for k, v in item.items()) or "—"
        if item is None or item == "":
            return "—"
        return str(item)

    if isinstance(value, dict):
        return [(str(key).replace("_", " "), text(item)) for key, item in value.items()]
    return [("", text(value))]
