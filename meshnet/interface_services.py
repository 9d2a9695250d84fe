"""Writes of the interfaces part: give an interface a role, or take it back.

A new role for an interface can cut the operator off (it may be the link
they reach the node through), so every write goes through the rollback
flow of :mod:`meshnet.change_services`: the whole new interface list is
proposed, stored, applied by the worker, and rolled back unless the
operator confirms in time. The services return that
:class:`~meshnet.models.PendingChange`; the view redirects to its page.

Values are validated by :mod:`meshnet.forms_interfaces` before they get
here, and again here (the same plain functions), so a caller that skips
the form cannot store a hostile value either.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from portal.host.builders import hostapd, iw
from portal.host.errors import InvalidValue

from . import wireless
from .changes import ChangeError
from .models import InterfaceMedium, InterfaceRole, PendingChange
from .state import InterfaceState, MeshState

CHANGE_KIND = "interfaces"
MESH_MEDIA = frozenset({"ibss", "mesh-point", "wired"})
CLIENT_MEDIA = frozenset({"ap", "wired"})


class InterfaceError(ChangeError):
    """A request the interfaces part refuses; nothing was changed."""


def _checked(interface: InterfaceState) -> InterfaceState:
    """Refuse values that must never reach a command or a file."""
    try:
        iw.interface_name(interface.name)
        if interface.medium == "ibss":
            wireless.network_name(interface.essid)
            wireless.frequency_of(interface.channel)  # type: ignore[arg-type]
            iw.unicast_bssid(interface.bssid)
        elif interface.medium == "mesh-point":
            wireless.network_name(interface.mesh_id)
            wireless.frequency_of(interface.channel)  # type: ignore[arg-type]
        elif interface.medium == "ap":
            wireless.network_name(interface.essid)
            wireless.frequency_of(interface.channel)  # type: ignore[arg-type]
        if interface.passphrase:
            hostapd.passphrase(interface.passphrase)
    except InvalidValue as error:
        raise InterfaceError(str(error)) from error
    return interface


def _propose(interfaces: list[InterfaceState], user: Any) -> PendingChange:
    from .change_services import propose_change

    return propose_change(
        kind=CHANGE_KIND,
        proposed={"interfaces": [_as_dict(i) for i in interfaces]},
        user=user,
    )


def _as_dict(interface: InterfaceState) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(interface)


def _others(name: str) -> list[InterfaceState]:
    return [i for i in MeshState.from_db().interfaces if i.name != name]


def make_mesh_interface(
    *,
    name: str,
    medium: str,
    essid: str = "",
    channel: int | None = None,
    bssid: str = "",
    mesh_id: str = "",
    passphrase: str = "",
    user: Any = None,
) -> PendingChange:
    """Make ``name`` a mesh link (IBSS, 802.11s mesh point or wired).

    Only the values of the chosen kind are kept; an IBSS BSSID left empty
    is derived from ESSID and channel (see :mod:`meshnet.wireless`).
    """
    if medium not in MESH_MEDIA:
        raise InterfaceError(_("This is not a kind of mesh link."))
    if medium == "ibss":
        essid = essid or wireless.DEFAULT_IBSS_ESSID
        channel = channel or wireless.DEFAULT_IBSS_CHANNEL
        state = InterfaceState(
            name=name,
            role=InterfaceRole.MESH.value,
            medium=InterfaceMedium.IBSS.value,
            essid=essid,
            channel=channel,
            bssid=(bssid or wireless.default_bssid(essid, channel)).lower(),
        )
    elif medium == "mesh-point":
        state = InterfaceState(
            name=name,
            role=InterfaceRole.MESH.value,
            medium=InterfaceMedium.MESH_POINT.value,
            mesh_id=mesh_id or wireless.DEFAULT_MESH_ID,
            channel=channel or wireless.DEFAULT_MESH_CHANNEL,
            passphrase=passphrase,
        )
    else:
        state = InterfaceState(
            name=name,
            role=InterfaceRole.MESH.value,
            medium=InterfaceMedium.WIRED.value,
        )
    return _propose([*_others(name), _checked(state)], user)


def make_client_interface(
    *,
    name: str,
    medium: str,
    essid: str = "",
    channel: int | None = None,
    passphrase: str = "",
    user: Any = None,
) -> PendingChange:
    """Make ``name`` serve clients: an access point or a wired client port.

    A node has one client subnet, served on one interface; another client
    interface is refused until the first is released.
    """
    if medium not in CLIENT_MEDIA:
        raise InterfaceError(_("This is not a kind of client interface."))
    others = _others(name)
    serving = [i.name for i in others if i.role == InterfaceRole.CLIENTS]
    if serving:
        raise InterfaceError(
            _(
                "This node already serves clients on %(name)s. Release that "
                "interface first: a node has one client subnet."
            )
            % {"name": serving[0]}
        )
    if medium == "ap":
        state = InterfaceState(
            name=name,
            role=InterfaceRole.CLIENTS.value,
            medium=InterfaceMedium.ACCESS_POINT.value,
            essid=essid or wireless.DEFAULT_AP_ESSID,
            channel=channel or wireless.DEFAULT_AP_CHANNEL,
            passphrase=passphrase,
        )
    else:
        state = InterfaceState(
            name=name,
            role=InterfaceRole.CLIENTS.value,
            medium=InterfaceMedium.WIRED.value,
        )
    return _propose([*others, _checked(state)], user)


def release_interface(*, name: str, user: Any = None) -> PendingChange:
    """Take the mesh or client role away from ``name``.

    The worker returns the interface to an ordinary state (leaves the cell,
    stops hostapd, takes it out of batman-adv) and stops using it.
    """
    current = MeshState.from_db().interfaces
    if not any(i.name == name for i in current):
        raise InterfaceError(
            _("%(name)s has no role on the mesh to release.") % {"name": name}
        )
    return _propose([i for i in current if i.name != name], user)
