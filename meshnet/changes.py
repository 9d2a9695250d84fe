"""Plain functions behind "apply with rollback" (no database, no requests).

A change that could cut the operator off (addresses, mesh interfaces,
routing) is stored as two :class:`~meshnet.state.MeshState` dicts, the state
before and the state proposed. Everything that can be worked out from those
two values lives here, so it is tested without Django:

- :func:`merge_proposal`: a proposal given as a whole state or as a few
  changed fields becomes a full, checked state;
- :func:`changed_fields` / :func:`describe_changes`: what the change touches,
  in the operator's words (secrets are never shown, only that they changed);
- :func:`revert_state`: the state to go back to. Only the fields the change
  touched are set back, so something another part changed meanwhile (the
  gateway app switching the default route on) survives a rollback;
- :func:`reach_addresses`: where the node answers after the change, for the
  link the operator follows to confirm from the new address;
- :func:`join_result`: whether the node has joined the mesh, from a status
  snapshot taken after the change went live.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from .state import InterfaceState, MeshState

# Kinds of change; another part may use a new kind (shown as it is).
CHANGE_KINDS: dict[str, Any] = {
    "addresses": _("mesh address and client subnet"),
    "interfaces": _("mesh interfaces"),
    "routing": _("routing"),
    "mesh": _("mesh settings"),
}
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}\Z")

# Fields of MeshState a change may set. The node's name belongs to the
# portal's own settings and the captive portal's API to the captive app:
# neither is stored by a mesh change, so neither may be proposed.
CHANGEABLE_FIELDS: tuple[str, ...] = (
    "protocol",
    "mesh_address",
    "client_subnet",
    "mesh_domain",
    "babel_hmac_key",
    "dhcp_lease_seconds",
    "announce_default_route",
    "address_origin",
    "interfaces",
)
FIELD_LABELS: dict[str, Any] = {
    "protocol": _("routing protocol"),
    "mesh_address": _("mesh address"),
    "client_subnet": _("client subnet"),
    "mesh_domain": _("mesh DNS domain"),
    "babel_hmac_key": _("routing key"),
    "dhcp_lease_seconds": _("DHCP lease time (seconds)"),
    "announce_default_route": _("default route announced"),
    "address_origin": _("how the addresses were chosen"),
    "interfaces": _("interfaces"),
}
SECRET_FIELDS = frozenset({"babel_hmac_key"})
SECRET_INTERFACE_FIELDS = frozenset({"passphrase"})
INTERFACE_FIELDS = tuple(f.name for f in fields(InterfaceState))


class ChangeError(ValueError):
    """A proposal that cannot be taken; ``message`` is for the operator."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = message


def kind_label(kind: str) -> str:
    """The kind of change in words (the kind itself when unknown)."""
    return str(CHANGE_KINDS.get(kind, kind))


def check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
        raise ChangeError(_("This kind of change is not known."))
    return kind


def _interface(value: Any) -> InterfaceState:
    if isinstance(value, InterfaceState):
        return value
    if not isinstance(value, Mapping):
        raise ChangeError(_("An interface must be given as named values."))
    unknown = set(value) - set(INTERFACE_FIELDS)
    if unknown:
        raise ChangeError(
            _("An interface has values this node does not know: %(names)s.")
            % {"names": ", ".join(sorted(str(name)[:40] for name in unknown))}
        )
    try:
        return InterfaceState(**dict(value))
    except TypeError as error:
        raise ChangeError(_("An interface lacks its name, role or kind.")) from error


def merge_proposal(
    previous: MeshState, proposed: MeshState | Mapping[str, Any]
) -> MeshState:
    """The full state a proposal asks for.

    ``proposed`` is either a whole :class:`MeshState` or a mapping of the
    fields that change (``{"mesh_address": "10.9.8.7"}``); ``interfaces`` in
    a mapping is the whole new list (dicts or :class:`InterfaceState`).
    Raises :class:`ChangeError` for fields that do not exist or that a mesh
    change may not set. Values are checked by the models when they are
    stored (see :mod:`meshnet.change_services`).
    """
    if isinstance(proposed, MeshState):
        values = proposed.to_dict()
        for name in ("node_name", "captive_portal_api"):
            values[name] = getattr(previous, name)
        return MeshState.from_dict(values)
    if not isinstance(proposed, Mapping):
        raise ChangeError(_("A change must be a mesh state or named values."))
    unknown = [name for name in proposed if name not in CHANGEABLE_FIELDS]
    if unknown:
        raise ChangeError(
            _("These settings cannot be changed here: %(names)s.")
            % {"names": ", ".join(sorted(str(name)[:40] for name in unknown))}
        )
    if not proposed:
        raise ChangeError(_("The change changes nothing."))
    values = previous.to_dict()
    for name, value in proposed.items():
        if name == "interfaces":
            if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
                raise ChangeError(_("The interfaces must be given as a list."))
            values[name] = [_as_dict(_interface(item)) for item in value]
        else:
            values[name] = value
    return MeshState.from_dict(values)


def _as_dict(interface: InterfaceState) -> dict[str, Any]:
    return {name: getattr(interface, name) for name in INTERFACE_FIELDS}


def changed_fields(previous: dict[str, Any], proposed: dict[str, Any]) -> list[str]:
    """Names of the fields a change touches (in :data:`CHANGEABLE_FIELDS`)."""
    return [
        name
        for name in CHANGEABLE_FIELDS
        if _normal(name, previous.get(name)) != _normal(name, proposed.get(name))
    ]


def _normal(name: str, value: Any) -> Any:
    if name == "interfaces":
        return sorted(
            (tuple((key, item.get(key)) for key in INTERFACE_FIELDS))
            for item in value or ()
        )
    return value


@dataclass(frozen=True)
class FieldChange:
    """One line of "what changed" on the pending change page."""

    label: str
    before: str
    after: str


def _shown(name: str, value: Any) -> str:
    if name == "address_origin":
        from .models import AddressOrigin

        try:
            return str(AddressOrigin(value or "").label)
        except ValueError:
            return str(value)
    if value in (None, ""):
        return str(_("none"))
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if name in SECRET_FIELDS:
        return str(_("(set, hidden)"))
    return str(value)


def _interface_words(item: dict[str, Any]) -> str:
    parts = [f"{item.get('role')}", f"{item.get('medium')}"]
    for key in ("essid", "mesh_id", "channel", "bssid"):
        if item.get(key) not in (None, ""):
            parts.append(f"{key}={item[key]}")
    if item.get("passphrase"):
        parts.append(str(_("passphrase set")))
    if not item.get("enabled", True):
        parts.append(str(_("off")))
    return ", ".join(parts)


def describe_changes(
    previous: dict[str, Any], proposed: dict[str, Any]
) -> list[FieldChange]:
    """What the change does, field by field and interface by interface."""
    lines: list[FieldChange] = []
    for name in changed_fields(previous, proposed):
        if name != "interfaces":
            before = _shown(name, previous.get(name))
            after = _shown(name, proposed.get(name))
            if name in SECRET_FIELDS:
                before = str(_("(set, hidden)") if previous.get(name) else _("none"))
                after = str(_("changed") if proposed.get(name) else _("none"))
            lines.append(FieldChange(str(FIELD_LABELS[name]), before, after))
            continue
        old = {i.get("name"): i for i in previous.get("interfaces") or ()}
        new = {i.get("name"): i for i in proposed.get("interfaces") or ()}
        for iface in sorted(set(old) | set(new), key=str):
            before_item, after_item = old.get(iface), new.get(iface)
            if before_item == after_item:
                continue
            label = str(_("interface %(name)s") % {"name": iface})
            lines.append(
                FieldChange(
                    label,
                    _interface_words(before_item) if before_item else str(_("none")),
                    _interface_words(after_item) if after_item else str(_("removed")),
                )
            )
    return lines


def revert_state(
    current: MeshState, previous: dict[str, Any], proposed: dict[str, Any]
) -> MeshState:
    """``current`` with every field the change touched set back.

    Fields the change did not touch keep their current value: they may have
    been changed meanwhile by something else (the gateway app) and are not
    this change's to undo.
    """
    values = current.to_dict()
    for name in changed_fields(previous, proposed):
        values[name] = previous.get(name)
    return MeshState.from_dict(values)


def node_address_in(subnet: str) -> str | None:
    """The node's own address in its client subnet (the first host)."""
    try:
        network = ipaddress.IPv4Network(subnet, strict=False)
    except (ValueError, TypeError):
        return None
    if network.num_addresses < 4:
        return None
    return str(network.network_address + 1)


def reach_addresses(previous: dict[str, Any], proposed: dict[str, Any]) -> list[str]:
    """Addresses of the node after the change that were not its addresses
    before: where the operator may have to go to confirm."""
    before = {
        previous.get("mesh_address"),
        node_address_in(previous.get("client_subnet") or ""),
    }
    after = [
        proposed.get("mesh_address"),
        node_address_in(proposed.get("client_subnet") or ""),
    ]
    found: list[str] = []
    for address in after:
        if address and address not in before and address not in found:
            found.append(address)
    return found


def https_url(address: str, port: int, path: str) -> str:
    """``https://address[:port]/path`` for an IPv4 or IPv6 address."""
    host = f"[{address}]" if ":" in address else address
    netloc = host if port == 443 else f"{host}:{port}"
    return f"https://{netloc}{path}"


@dataclass(frozen=True)
class JoinResult:
    """Whether the node has neighbours on the mesh since a change went live.

    ``state`` is ``joined`` (babeld hears at least one neighbour in a
    snapshot taken after ``since``), ``waiting`` (a fresh snapshot, no
    neighbour yet), ``unknown`` (no snapshot since the change, or babeld
    could not be read).
    """

    state: str
    neighbours: int = 0
    checked_at: datetime | None = None
    error: str = ""

    @property
    def joined(self) -> bool:
        return self.state == "joined"


def join_result(
    data: dict[str, Any] | None, collected_at: datetime | None, since: datetime | None
) -> JoinResult:
    """Read a ``NodeStatus`` snapshot (see :mod:`portal.status`)."""
    if not data or collected_at is None or since is None or collected_at < since:
        return JoinResult("unknown")
    babel = data.get("babel") or {}
    if not babel.get("available"):
        return JoinResult(
            "unknown", checked_at=collected_at, error=str(babel.get("error") or "")
        )
    neighbours = [n for n in babel.get("neighbours") or () if _heard(n)]
    if neighbours:
        return JoinResult("joined", len(neighbours), collected_at)
    return JoinResult("waiting", 0, collected_at)


def _heard(neighbour: Any) -> bool:
    """A neighbour babeld has heard from lately (its reach is not zero)."""
    if not isinstance(neighbour, Mapping):
        return False
    reach = neighbour.get("reach")
    return not isinstance(reach, int) or reach & 0xFFFF != 0
