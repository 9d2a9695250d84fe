"""Operator forms of the captive portal: settings, and MAC rules.

Forms validate; services write. Bad input gets a message in the operator's
language and changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.host import validate
from portal.host.errors import InvalidValue

from .models import (
    MAX_IDLE_SECONDS,
    MAX_MESSAGE_LENGTH,
    MAX_SESSION_SECONDS,
    MIN_IDLE_SECONDS,
    MIN_SESSION_SECONDS,
    MacRuleKind,
)

# Control characters other than line breaks and tabs have no place in a
# notice shown to people (and confuse terminals and logs).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
INTERFACE_PREFIX = "interface_"


class PortalSettingsForm(forms.Form):
    """Timeouts, message, restart behaviour, and the portal per interface."""

    session_timeout = forms.IntegerField(
        label=_("Session length (seconds)"),
        min_value=MIN_SESSION_SECONDS,
        max_value=MAX_SESSION_SECONDS,
        help_text=_(
            "How long a phone stays let through after tapping Continue, whatever "
            "it does (default 14400, four hours)."
        ),
    )
    idle_timeout = forms.IntegerField(
        label=_("Idle time-out (seconds)"),
        min_value=MIN_IDLE_SECONDS,
        max_value=MAX_IDLE_SECONDS,
        help_text=_(
            "A phone silent for this long is sent back to the welcome page "
            "(default 1800, half an hour). The kernel counts it, not a program."
        ),
    )
    message = forms.CharField(
        label=_("Message to visitors"),
        required=False,
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Shown at the top of the welcome page, e.g. where to find water. "
            "Plain text; shown exactly as typed."
        ),
    )
    restore_after_restart = forms.BooleanField(
        label=_("Let phones back in after a restart"),
        required=False,
        help_text=_(
            "After a restart, phones already let through keep their access for "
            "the rest of their session."
        ),
    )

    def __init__(self, *args: Any, interfaces: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.interface_names = interfaces
        for name in interfaces:
            self.fields[INTERFACE_PREFIX + name] = forms.BooleanField(
                label=_("Captive portal on %(interface)s") % {"interface": name},
                required=False,
            )

    def clean_message(self) -> str:
        message = self.cleaned_data["message"].replace("\r\n", "\n")
        if _CONTROL.search(message):
            raise ValidationError(
                _("The message contains control characters; type plain text.")
            )
        return message.strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        session, idle = data.get("session_timeout"), data.get("idle_timeout")
        if session and idle and idle > session:
            raise ValidationError(
                _("The idle time-out cannot be longer than the session.")
            )
        return data

    @property
    def interfaces(self) -> dict[str, bool]:
        return {
            name: bool(self.cleaned_data.get(INTERFACE_PREFIX + name))
            for name in self.interface_names
        }


class MacRuleForm(forms.Form):
    """Block a MAC, or let it through always without the welcome page."""

    mac = forms.CharField(
        label=_("MAC address"),
        max_length=17,
        help_text=_("Six pairs of hex digits, e.g. 3c:22:fb:12:34:56."),
    )
    kind = forms.ChoiceField(label=_("Rule"), choices=MacRuleKind.choices)
    note = forms.CharField(label=_("Note"), max_length=100, required=False)

    def clean_mac(self) -> str:
        try:
            return validate.mac_address(self.cleaned_data["mac"].strip())
        except InvalidValue as error:
            raise ValidationError(str(error)) from None

    def clean_note(self) -> str:
        note = self.cleaned_data["note"]
        if _CONTROL.search(note) or "\n" in note:
            raise ValidationError(_("The note must be one line of plain text."))
        return note.strip()
