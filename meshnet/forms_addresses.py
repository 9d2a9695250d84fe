"""The form for setting the node's addresses by hand.

It checks the shape of the input with the same rules the worker applies
again (:func:`meshnet.addressing.parse_manual_addresses`), so a typo or a
hostile value is refused on the page, in the operator's language, before any
job exists. Whether the addresses are free can only be told by the worker
(it reads babeld and probes the links), so that check follows as a job.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .addressing import MAX_INPUT_LENGTH, AddressInputError, parse_manual_addresses


class ManualAddressesForm(forms.Form):
    """Mesh address and client subnet typed by the operator."""

    mesh_address = forms.CharField(
        label=_("Mesh address"),
        # Longer input reaches the validator, which says why it is refused.
        max_length=MAX_INPUT_LENGTH * 4,
        strip=False,
        help_text=_(
            "This node's own address in the mesh, like 10.42.7.99. It is put on "
            "the loopback interface and announced to the whole mesh."
        ),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "inputmode": "decimal",
                "dir": "ltr",
            }
        ),
    )
    client_subnet = forms.CharField(
        label=_("Client subnet"),
        max_length=MAX_INPUT_LENGTH * 4,
        strip=False,
        help_text=_(
            "The network this node serves to phones and laptops, a /24 to a /28, "
            "like 10.42.8.0/24. The node takes the first address (.1); DHCP "
            "hands out the rest."
        ),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "dir": "ltr"}
        ),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        mesh = cleaned.get("mesh_address")
        subnet = cleaned.get("client_subnet")
        if mesh is None or subnet is None:
            return cleaned
        try:
            address, network = parse_manual_addresses(mesh, subnet)
        except AddressInputError as error:
            self.add_error(error.field, error.message)
            return cleaned
        cleaned["mesh_address"] = str(address)
        cleaned["client_subnet"] = str(network)
        return cleaned
