"""Views of the meshnet app: mesh status (neighbours, routes, topology,
directory) for the operator.

Every page reads the worker's last status snapshot and the directory table;
none asks the system (see :mod:`meshnet.status`). The topology is an SVG
drawn by a template (autoescaped, so a name can never become markup) and
served by the node itself, with a Content-Security-Policy that forbids
scripts even if the file is opened on its own.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone

from portal.models import NodeSettings, NodeStatus

from ..models import DirectoryEntry, MeshSettings
from ..status import (
    DirectoryNames,
    build_topology,
    mesh_health_context,
    neighbour_rows,
    route_rows,
)

SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def _snapshot_babel() -> tuple[NodeStatus | None, dict[str, Any]]:
    snapshot = NodeStatus.latest()
    data = snapshot.data if snapshot is not None else {}
    return snapshot, (data or {}).get("babel") or {}


@login_required
def mesh_status(request: HttpRequest) -> HttpResponse:
    """Health line, neighbours with link costs, routes, topology picture."""
    snapshot, babel = _snapshot_babel()
    names = DirectoryNames.load()
    context: dict[str, Any] = {
        "snapshot": snapshot,
        "babel": babel,
        "neighbours": neighbour_rows(babel, names),
        "routes": route_rows(babel, names),
        "route_count": babel.get("route_count"),
        **mesh_health_context(snapshot),
    }
    return render(request, "meshnet/status/status.html", context)


@login_required
def topology_svg(request: HttpRequest) -> HttpResponse:
    """The picture of the reachable mesh, as an SVG image."""
    _snapshot, babel = _snapshot_babel()
    topology = build_topology(
        babel,
        DirectoryNames.load(),
        own_name=NodeSettings.peek().node_name or "node",
    )
    response = render(
        request,
        "meshnet/status/topology.svg",
        {"topology": topology, "babel": babel},
        content_type="image/svg+xml; charset=utf-8",
    )
    response["Content-Security-Policy"] = SVG_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


@login_required
def directory_list(request: HttpRequest) -> HttpResponse:
    """Every node of the mesh the directory job found, with its services."""
    entries = DirectoryEntry.objects.filter(expires__gt=timezone.now()).order_by(
        "name", "address"
    )
    context = {"entries": list(entries), "domain": MeshSettings.load().mesh_domain}
    return render(request, "meshnet/status/directory.html", context)


urlpatterns: list[URLPattern] = [
    path("status/", mesh_status, name="status"),
    path("status/topology.svg", topology_svg, name="topology"),
    path("directory/", directory_list, name="directory"),
]
