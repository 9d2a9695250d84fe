"""``{% mesh_health_line %}``: the mesh health line for any page.

The dashboard (owned by the portal app) only adds ``{% load meshnet_status
%}{% mesh_health_line %}``; the tag reuses the page's ``snapshot`` when the
view already loaded one, so it costs no extra query there.
"""

from __future__ import annotations

from typing import Any

from django import template

from ..status import mesh_health_context

register = template.Library()


@register.inclusion_tag("meshnet/status/health_line.html", takes_context=True)
def mesh_health_line(context: template.Context) -> dict[str, Any]:
    snapshot = context.get("snapshot")
    if snapshot is None:
        return mesh_health_context()
    return mesh_health_context(snapshot)
