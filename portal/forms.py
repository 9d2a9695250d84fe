"""Forms of the portal app: the first-run wizard.

Every field is checked here so a bad value re-renders the page with a
message in the operator's language and changes nothing.
"""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# One DNS label: 1-63 ASCII letters, digits or hyphens, no hyphen at either
# end (RFC 1123). The name is used in mesh DNS and the TLS certificate.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


def validate_node_name(value: str) -> str:
    """Return the node name in canonical (lower-case) form or refuse it."""
    name = value.strip().lower()
    if not _LABEL.match(name):
        raise ValidationError(
            _(
                "Use 1 to 63 letters (a-z), digits or hyphens, "
                "not starting or ending with a hyphen."
            ),
            code="invalid_node_name",
        )
    return name


class SetupSecretForm(forms.Form):
    """Step 1: prove access to the node's console."""

    secret = forms.CharField(
        label=_("Setup secret"),
        max_length=64,
        strip=True,
        help_text=_(
            "The code printed on the node's console by make run "
            "(also in the root-only file setup-secret in the state folder)."
        ),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
            }
        ),
    )


class SetupAdminForm(UserCreationForm):
    """Step 2: the administrator account, the node's name and language."""

    node_name = forms.CharField(
        label=_("Node name"),
        max_length=63,
        help_text=_(
            "How this node is called on the mesh, e.g. library-2: letters, digits "
            "and hyphens."
        ),
    )
    language = forms.ChoiceField(
        label=_("Language"),
        choices=settings.LANGUAGES,
        help_text=_("The language of the operator pages."),
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username",)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["username"].help_text = _(
            "Letters, digits and @ . + - _ only; at most 150 characters."
        )
        self.fields["username"].widget.attrs["autocomplete"] = "username"

    def clean_node_name(self) -> str:
        return validate_node_name(self.cleaned_data["node_name"])
