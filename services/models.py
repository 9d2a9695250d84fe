"""What the portal stores about each catalogued service.

The catalogue (``services/catalogue/``) says what a service *is*; a
:class:`ServiceState` row says what the operator wants of it on this node
(on or off, settings), what was generated for it (secrets) and what the
framework last saw (observed state, health). Whether a service really runs
is read from the system by the jobs; the row keeps the last reading so the
web process, which runs no command, can show it.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ObservedState(models.TextChoices):
    """A service's state in the operator's words."""

    OFF = "off", _("off")
    STARTING = "starting", _("starting")
    RUNNING = "running", _("running")
    FAILING = "failing", _("failing")
    MISSING = "missing", _("missing packages")
    STOPPING = "stopping", _("stopping")


class ServiceState(models.Model):
    """Desired and observed state of one catalogued service on this node."""

    service_id = models.CharField(_("service"), max_length=32, unique=True)
    enabled = models.BooleanField(
        _("switched on"),
        default=False,
        help_text=_("What the operator asked for; boot brings the service to it."),
    )
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    # Generated once per node; never a default password.
    secrets = models.JSONField(_("generated secrets"), default=dict, blank=True)
    secrets_unseen = models.BooleanField(
        _("generated passwords not yet shown"), default=False
    )
    on_uplink = models.BooleanField(
        _("also reachable from the uplink"),
        default=False,
        help_text=_("Only for services that allow it; off by default."),
    )
    observed = models.CharField(
        _("state"),
        max_length=16,
        choices=ObservedState.choices,
        default=ObservedState.OFF,
    )
    observed_at = models.DateTimeField(_("state read at"), null=True, blank=True)
    missing_packages = models.JSONField(_("missing packages"), default=list)
    last_health_at = models.DateTimeField(_("last health check"), null=True)
    last_health_ok = models.BooleanField(_("last health check passed"), null=True)
    last_health_message = models.CharField(
        _("last health check result"), max_length=300, blank=True
    )
    consecutive_failures = models.PositiveIntegerField(
        _("failed checks in a row"), default=0
    )
    client_address = models.CharField(
        _("address people use"),
        max_length=100,
        blank=True,
        help_text=_("Read from the service (an onion address) when it starts."),
    )
    withdrawn = models.BooleanField(
        _("withdrawn from announcements"),
        default=False,
        help_text=_("Set after repeated failed checks, cleared when it recovers."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("service state")
        verbose_name_plural = _("service states")
        ordering = ("service_id",)

    def __str__(self) -> str:
        return f"{self.service_id} ({self.observed})"
