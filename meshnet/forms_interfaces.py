"""The interface page's form: what an interface becomes, with its values.

One form for every use, so the page works without JavaScript: the operator
picks the use (ad-hoc mesh, 802.11s mesh, wired mesh link, access point,
wired client port) and fills the fields of that use; fields of other uses
are ignored. Every value is checked with the same plain functions the
worker's plans use (:mod:`meshnet.wireless`, the wireless builders), plus
what only the page knows: the channels this radio has and may use.

Hostile values (spaces, ``;``, ``$( )``, line breaks, over-long text,
non-ASCII in names) are refused with a message and nothing is stored.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.host.builders import hostapd, iw
from portal.host.errors import InvalidValue

from . import wireless
from .interface_selectors import InterfaceRow, use_key
from .models import InterfaceMedium, InterfaceRole

USE_LABELS = {
    use_key(InterfaceRole.MESH, InterfaceMedium.IBSS): _(
        "Mesh link: wireless ad-hoc (IBSS)"
    ),
    use_key(InterfaceRole.MESH, InterfaceMedium.MESH_POINT): _(
        "Mesh link: wireless 802.11s mesh point"
    ),
    use_key(InterfaceRole.MESH, InterfaceMedium.WIRED): _("Mesh link: wired"),
    use_key(InterfaceRole.CLIENTS, InterfaceMedium.ACCESS_POINT): _(
        "Serve clients: wireless access point"
    ),
    use_key(InterfaceRole.CLIENTS, InterfaceMedium.WIRED): _(
        "Serve clients: wired client port"
    ),
}


class InterfaceUseForm(forms.Form):
    """Make one interface a mesh link or a client interface."""

    use = forms.ChoiceField(label=_("Use this interface as"), widget=forms.RadioSelect)
    essid = forms.CharField(
        label=_("Network name (ESSID)"),
        required=False,
        max_length=64,
        help_text=_(
            "Ad-hoc mesh: every node of the mesh uses the same name. Access "
            "point: the name phones see. Letters, digits, '.', '-' and '_'."
        ),
    )
    mesh_id = forms.CharField(
        label=_("Mesh id"),
        required=False,
        max_length=64,
        help_text=_("802.11s: every node of the mesh uses the same mesh id."),
    )
    channel = forms.TypedChoiceField(
        label=_("Channel"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_(
            "Every node of a wireless mesh uses the same channel. Only channels "
            "this radio may start a network on are listed."
        ),
    )
    bssid = forms.CharField(
        label=_("Cell id (BSSID)"),
        required=False,
        max_length=64,
        help_text=_(
            "Ad-hoc mesh only. Leave empty to use the community's cell id or one "
            "derived from network name and channel, so nodes set up alike meet "
            "in the same cell."
        ),
    )
    passphrase = forms.CharField(
        label=_("Passphrase"),
        required=False,
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_(
            "Optional. 802.11s: secures the mesh with SAE (every node needs the "
            "same passphrase). Access point: WPA2 for clients. 8 to 63 "
            "printable ASCII characters; empty means open."
        ),
    )

    def __init__(self, *args: Any, row: InterfaceRow, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.row = row
        self.fields["use"].choices = [(key, USE_LABELS[key]) for key in row.uses]
        if row.radio is not None:
            numbers = [c.number for c in row.radio.usable_channels()]
        else:
            numbers = list(wireless.CHANNELS_2GHZ[:13]) + list(wireless.CHANNELS_5GHZ)
        self.fields["channel"].choices = [("", _("default"))] + [
            (
                number,
                _("%(channel)s (%(frequency)s MHz)")
                % {"channel": number, "frequency": wireless.frequency_of(number)},
            )
            for number in numbers
        ]
        wireless_fields = ("essid", "mesh_id", "channel", "bssid", "passphrase")
        if row.category != "wireless":
            for name in wireless_fields:
                del self.fields[name]

    def clean_essid(self) -> str:
        value = self.cleaned_data.get("essid") or ""
        return self._checked(wireless.network_name, value) if value else ""

    def clean_mesh_id(self) -> str:
        value = self.cleaned_data.get("mesh_id") or ""
        return self._checked(wireless.network_name, value) if value else ""

    def clean_bssid(self) -> str:
        value = (self.cleaned_data.get("bssid") or "").strip()
        return self._checked(iw.unicast_bssid, value) if value else ""

    def clean_passphrase(self) -> str:
        value = self.cleaned_data.get("passphrase") or ""
        return self._checked(hostapd.passphrase, value) if value else ""

    def clean_channel(self) -> int | None:
        value = self.cleaned_data.get("channel")
        if value is None:
            return None
        self._checked(lambda v: wireless.check_channel(self.row.radio, v), value)
        return value

    @staticmethod
    def _checked(check: Any, value: Any) -> Any:
        try:
            result = check(value)
        except InvalidValue as error:
            raise forms.ValidationError(str(error)) from None
        return value if result is None else result

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        use = cleaned.get("use") or ""
        if use == use_key(InterfaceRole.MESH, InterfaceMedium.IBSS) and cleaned.get(
            "passphrase"
        ):
            self.add_error(
                "passphrase",
                _(
                    "An ad-hoc (IBSS) mesh cannot take a passphrase here: use an "
                    "802.11s mesh for a secured mesh."
                ),
            )
        return cleaned

    def service_arguments(self) -> dict[str, Any]:
        """Keyword arguments for the service the chosen use calls."""
        role, medium = self.cleaned_data["use"].split(":", 1)
        values: dict[str, Any] = {"name": self.row.name, "medium": medium}
        data = self.cleaned_data
        if medium == "ibss":
            values |= {
                "essid": data.get("essid", ""),
                "channel": data.get("channel"),
                "bssid": data.get("bssid", ""),
            }
        elif medium == "mesh-point":
            values |= {
                "mesh_id": data.get("mesh_id", ""),
                "channel": data.get("channel"),
                "passphrase": data.get("passphrase", ""),
            }
        elif medium == "ap":
            values |= {
                "essid": data.get("essid", ""),
                "channel": data.get("channel"),
                "passphrase": data.get("passphrase", ""),
            }
        values["role"] = role
        return values
