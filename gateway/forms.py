"""The gateway settings form: every value checked, with a message that says
what was wrong and what would be right.

Anything hostile (spaces, ``;``, ``$( )``, newlines, non-ASCII, over-long
values) is refused here with a clear message, and nothing is saved; the
apply code checks the same values again before they reach a command.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.host.errors import InvalidValue

from .apply import UplinkConfig, validate_uplink
from .models import (
    MAX_CHECK_INTERVAL,
    MIN_CHECK_INTERVAL,
    Addressing,
    DnsChoice,
)

_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}\Z")
_SEPARATORS = re.compile(r"[,\s]+")
MAX_DNS_SERVERS = 4
MAX_CHECK_TARGETS = 4
MAX_LIST_TEXT = 200


def _shown(value: str) -> str:
    return repr(value[:30])


def _address_list(text: str, *, maximum: int, what: str) -> list[str]:
    """Addresses separated by spaces or commas; refuses anything else."""
    if len(text) > MAX_LIST_TEXT:
        raise ValidationError(
            _("At most %(count)s characters."), params={"count": MAX_LIST_TEXT}
        )
    words = [word for word in _SEPARATORS.split(text.strip()) if word]
    if len(words) > maximum:
        raise ValidationError(
            _("At most %(count)s addresses."), params={"count": maximum}
        )
    addresses = []
    for word in words:
        try:
            address = ipaddress.ip_address(word)
        except ValueError:
            raise ValidationError(
                _("%(value)s is not an IP address (like 9.9.9.9)."),
                params={"value": _shown(word)},
            ) from None
        if what == "check" and (
            address.version != 4
            or not address.is_global
            and not _documentation(address)
        ):
            raise ValidationError(
                _("%(value)s is not a public IPv4 address on the Internet."),
                params={"value": _shown(word)},
            )
        if what == "dns" and (address.is_unspecified or address.is_multicast):
            raise ValidationError(
                _("%(value)s cannot be a DNS server."), params={"value": _shown(word)}
            )
        if str(address) not in addresses:
            addresses.append(str(address))
    return addresses


def _documentation(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The documentation prefixes stand in for the Internet in the lab."""
    return any(
        address in ipaddress.ip_network(block)
        for block in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
    ) if address.version == 4 else False  # fmt: skip


class GatewaySettingsForm(forms.Form):
    """Uplink, sharing, DNS, the uplink check and Tor, in one form."""

    uplink_interface = forms.CharField(
        label=_("Uplink interface"),
        required=False,
        max_length=40,
        strip=False,
        help_text=_(
            "The interface with the Internet connection, like eth0 or usb0 (see "
            "the list above). Empty: this node has no uplink."
        ),
    )
    addressing = forms.ChoiceField(
        label=_("How the uplink gets its address"),
        choices=Addressing.choices,
        widget=forms.RadioSelect,
        initial=Addressing.DHCP,
        help_text=_(
            "Automatic suits a home router, a phone or a satellite terminal. "
            "Choose a fixed address only if your provider gave you one."
        ),
    )
    static_address = forms.CharField(
        label=_("Fixed address with prefix"),
        required=False,
        max_length=40,
        strip=False,
        help_text=_("Like 192.0.2.7/24. Only for a fixed address."),
    )
    static_router = forms.CharField(
        label=_("Router"),
        required=False,
        max_length=40,
        strip=False,
        help_text=_("The provider's router, like 192.0.2.1. Only for a fixed address."),
    )
    sharing = forms.BooleanField(
        label=_("Share the uplink with the whole mesh"),
        required=False,
        help_text=_(
            "Every phone and every node of the mesh may then reach the Internet "
            "through this node. The mesh learns of it only while the uplink check "
            "passes."
        ),
    )
    dns_mode = forms.ChoiceField(
        label=_("DNS servers for Internet names"),
        choices=DnsChoice.choices,
        widget=forms.RadioSelect,
        initial=DnsChoice.UPLINK,
        help_text=_(
            "The uplink's own servers are usually fastest; if it names none, "
            "well-known public servers are used."
        ),
    )
    dns_servers = forms.CharField(
        label=_("Your DNS servers"),
        required=False,
        max_length=MAX_LIST_TEXT + 40,
        strip=False,
        help_text=_("Up to four addresses separated by spaces, like 9.9.9.9 1.1.1.1."),
    )
    check_targets = forms.CharField(
        label=_("Addresses the uplink check pings"),
        max_length=MAX_LIST_TEXT + 40,
        strip=False,
        help_text=_(
            "Up to four public IPv4 addresses. The uplink works while any one of "
            "them answers."
        ),
    )
    check_interval_seconds = forms.IntegerField(
        label=_("Check every (seconds)"),
        min_value=MIN_CHECK_INTERVAL,
        max_value=MAX_CHECK_INTERVAL,
    )
    fail_threshold = forms.IntegerField(
        label=_("Failed checks in a row before the mesh stops using this uplink"),
        min_value=1,
        max_value=20,
    )
    pass_threshold = forms.IntegerField(
        label=_("Passed checks in a row before the mesh uses it again"),
        min_value=1,
        max_value=20,
    )
    tor_enabled = forms.BooleanField(
        label=_("Send the mesh's Internet traffic through Tor"),
        required=False,
        help_text=_(
            "Web pages and other TCP connections go through Tor, and so do names; "
            "anything Tor cannot carry is blocked. Slower, but the uplink's "
            "provider cannot see what people visit."
        ),
    )
    onion_services = forms.MultipleChoiceField(
        label=_("Publish these services as onion services"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("People outside the mesh can then reach them over Tor."),
    )

    def __init__(
        self,
        *args: Any,
        onion_choices: list[tuple[str, str]] = (),  # type: ignore[assignment]
        mesh_interfaces: list[str] = (),  # type: ignore[assignment]
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["onion_services"].choices = list(onion_choices)
        self.mesh_interfaces = set(mesh_interfaces)

    def clean_uplink_interface(self) -> str:
        value = self.cleaned_data["uplink_interface"]
        if value == "":
            return ""
        if not _IFNAME.match(value):
            raise ValidationError(
                _(
                    "%(value)s is not an interface name: 1 to 15 letters, digits, "
                    "'-', '_' or '.', without spaces."
                ),
                params={"value": _shown(value)},
            )
        if value in self.mesh_interfaces or value in ("lo", "bat0", "br-lan"):
            raise ValidationError(
                _(
                    "%(value)s belongs to the mesh; the uplink must be another "
                    "interface."
                ),
                params={"value": value},
            )
        return value

    def clean_dns_servers(self) -> list[str]:
        return _address_list(
            self.cleaned_data["dns_servers"], maximum=MAX_DNS_SERVERS, what="dns"
        )

    def clean_check_targets(self) -> list[str]:
        targets = _address_list(
            self.cleaned_data["check_targets"], maximum=MAX_CHECK_TARGETS, what="check"
        )
        if not targets:
            raise ValidationError(_("Give at least one address to check."))
        return targets

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        uplink = data.get("uplink_interface")
        if data.get("addressing") == Addressing.STATIC and uplink:
            try:
                checked = validate_uplink(
                    UplinkConfig(
                        interface=uplink,
                        addressing="static",
                        address=data.get("static_address", ""),
                        router=data.get("static_router", ""),
                    )
                )
            except InvalidValue as error:
                self.add_error("static_address", str(error))
            else:
                data["static_address"] = checked.address
                data["static_router"] = checked.router
        else:
            data["static_address"] = ""
            data["static_router"] = None
        if data.get("dns_mode") == DnsChoice.CUSTOM and not data.get("dns_servers"):
            self.add_error("dns_servers", _("Give at least one DNS server."))
        if data.get("sharing") and not uplink:
            self.add_error("sharing", _("Choose the uplink interface first."))
        if data.get("tor_enabled") and not data.get("sharing"):
            self.add_error("tor_enabled", _("Tor mode needs sharing to be on."))
        return data
