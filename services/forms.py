"""Forms of the services pages; the checks live in :mod:`services.values`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .catalogue import CatalogueEntry


class ServiceSettingsForm(forms.Form):
    """One field per operator setting of a catalogue entry.

    The form only collects text; :func:`services.services.update_settings`
    checks and quotes it, and its refusal lands on the field.
    """

    def __init__(self, *args: Any, entry: CatalogueEntry, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entry = entry
        for setting in entry.settings:
            common = {
                "label": setting.label_title,
                "help_text": setting.help_text,
                "required": setting.required,
            }
            if setting.kind == "boolean":
                field: forms.Field = forms.BooleanField(**{**common, "required": False})
            elif setting.kind == "choice":
                field = forms.ChoiceField(
                    choices=[(c, c) for c in setting.choices], **common
                )
            elif setting.kind == "integer":
                field = forms.CharField(max_length=12, **common)
            elif setting.kind == "password":
                field = forms.CharField(
                    max_length=128,
                    widget=forms.PasswordInput(render_value=False),
                    **common,
                )
                keep = _("Leave empty to keep the current one.")
                field.help_text = (
                    f"{setting.help_text} {keep}" if setting.help else str(keep)
                )
            else:
                field = forms.CharField(max_length=400, strip=False, **common)
            self.fields[setting.key] = field

    def submitted_values(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Cleaned form data; an empty password keeps the stored one."""
        values = dict(self.cleaned_data)
        for setting in self.entry.settings:
            if setting.kind == "password" and not values.get(setting.key):
                values[setting.key] = stored.get(setting.key)
        return values
