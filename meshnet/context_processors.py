"""Template context from the meshnet app: a network change waiting for the
operator, so every operator page can say so (an unconfirmed change is rolled
back at its deadline, and an operator who wandered off to another page must
not lose the node's new settings by surprise)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def _open_change() -> Any:
    from .change_services import open_change

    try:
        return open_change()
    except Exception:  # noqa: BLE001 - a page must render even with no table yet
        return None


def pending_change(request: HttpRequest) -> dict[str, Any]:
    """``open_change``: the change being applied or awaiting confirmation.

    Lazy, and only for logged-in operators on the HTTPS side: public pages
    (hit by every phone on the mesh) never run the query.
    """
    user = getattr(request, "user", None)
    if not request.is_secure() or user is None or not user.is_authenticated:
        return {}
    return {"open_change": SimpleLazyObject(_open_change)}
