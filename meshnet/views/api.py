"""The node's public API under /api/v1/, served on the plain-HTTP side.

``GET /api/v1/node`` is this node's document (see
:mod:`meshnet.node_document`): every other node's directory job fetches it
every sync period, and phones may too, so it must cost next to nothing. The
JSON bytes are cached (the default cache, per process) and forgotten as soon
as this process saves the settings they are built from; a change made by
another process (the worker choosing addresses) shows within
``CACHE_SECONDS``. No system command runs here.
"""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_safe

from portal.models import NodeSettings

from ..models import MeshSettings
from ..node_document import cached_document_bytes, invalidate_cached_document

for _model in (MeshSettings, NodeSettings):
    post_save.connect(
        invalidate_cached_document,
        sender=_model,
        dispatch_uid=f"meshnet-node-document-{_model.__name__}-save",
    )
    post_delete.connect(
        invalidate_cached_document,
        sender=_model,
        dispatch_uid=f"meshnet-node-document-{_model.__name__}-delete",
    )


@require_safe
def node_document(request: HttpRequest) -> HttpResponse:
    """This node's public JSON document (GET and HEAD only, no login)."""
    response = HttpResponse(cached_document_bytes(), content_type="application/json")
    response["Cache-Control"] = "max-age=10"
    response["X-Content-Type-Options"] = "nosniff"
    return response


urlpatterns: list[URLPattern] = [
    path("node", node_document, name="node"),
]
