"""Forms of "apply with rollback": the confirmation and the time to confirm."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ROLLBACK_MAX_SECONDS, ROLLBACK_MIN_SECONDS


class ConfirmForm(forms.Form):
    """The token travels in the form: it is the only credential needed."""

    token = forms.CharField(max_length=64, widget=forms.HiddenInput)
    action = forms.ChoiceField(
        choices=[("confirm", _("Keep the change")), ("rollback", _("Undo it now"))],
        required=False,
        widget=forms.HiddenInput,
    )


class RollbackSecondsForm(forms.Form):
    seconds = forms.IntegerField(
        label=_("Time to confirm a change (seconds)"),
        min_value=ROLLBACK_MIN_SECONDS,
        max_value=ROLLBACK_MAX_SECONDS,
        help_text=_(
            "From %(min)d to %(max)d seconds. A change that could cut you off "
            "is undone unless you confirm it within this time."
        )
        % {"min": ROLLBACK_MIN_SECONDS, "max": ROLLBACK_MAX_SECONDS},
    )
