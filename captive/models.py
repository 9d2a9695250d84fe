"""What the operator wants from the captive portal, and who is let through.

The database holds the *desired* state and the portal's record of clients;
the kernel (the nft sets of :mod:`captive.firewall`) holds who is let
through right now and expires them on its own. The periodic
``captive.sync_clients`` job copies the kernel's view back (counters, last
seen, expiry) and, after a restart, rebuilds the kernel's sets from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Bounds of the operator's timeouts (seconds). The hard cap keeps a session
# well inside what nft accepts (captive.firewall.MAX_TIMEOUT).
MIN_SESSION_SECONDS = 60
MAX_SESSION_SECONDS = 7 * 86400
MIN_IDLE_SECONDS = 30
MAX_IDLE_SECONDS = 86400
MAX_MESSAGE_LENGTH = 2000


class CaptiveSettings(models.Model):
    """The portal's settings for the whole node (one row, ``pk=1``).

    ``uplink_online`` is the switch between online and offline mode: with an
    uplink, authorised phones' probes reach the real Internet; without one,
    the node answers the known probe hosts itself (see
    :mod:`captive.probes`). The gateway app sets it through
    :func:`captive.services.uplink_state_set`; until then it stays offline,
    the safe answer on a mesh booted in a disaster.
    """

    session_timeout = models.PositiveIntegerField(
        _("session length (seconds)"),
        default=4 * 3600,
        validators=[
            MinValueValidator(MIN_SESSION_SECONDS),
            MaxValueValidator(MAX_SESSION_SECONDS),
        ],
        help_text=_(
            "How long a phone stays let through after tapping Continue, "
            "whatever it does. Then it sees the welcome page again."
        ),
    )
    idle_timeout = models.PositiveIntegerField(
        _("idle time-out (seconds)"),
        default=1800,
        validators=[
            MinValueValidator(MIN_IDLE_SECONDS),
            MaxValueValidator(MAX_IDLE_SECONDS),
        ],
        help_text=_(
            "A phone that sends nothing for this long is sent back to the "
            "welcome page (it has probably left)."
        ),
    )
    message = models.TextField(
        _("message to visitors"),
        blank=True,
        max_length=MAX_MESSAGE_LENGTH,
        help_text=_(
            "Shown at the top of the welcome page, e.g. an emergency notice. "
            "Plain text: line breaks are kept, HTML is shown as typed."
        ),
    )
    restore_after_restart = models.BooleanField(
        _("let clients back in after a restart"),
        default=True,
        help_text=_(
            "After the node or the portal restarts, phones that were let "
            "through keep their access for the rest of their session. Off: "
            "everyone taps Continue again."
        ),
    )
    uplink_online = models.BooleanField(
        _("the node has an Internet uplink"),
        default=False,
        help_text=_("Set by the gateway; the portal answers phones' checks itself."),
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("captive portal settings")

    def __str__(self) -> str:
        return str(_("captive portal settings"))

    @classmethod
    def load(cls) -> CaptiveSettings:
        """The settings row, created with the defaults on first use."""
        row, _created = cls.objects.get_or_create(pk=1)
        return row


class PortalInterface(models.Model):
    """A client interface (``br-lan``, an access point) and whether the
    portal holds new clients on it."""

    name = models.CharField(_("interface"), max_length=15, unique=True)
    enabled = models.BooleanField(_("captive portal on"), default=True)

    class Meta:
        verbose_name = _("client interface of the captive portal")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SessionState(models.TextChoices):
    PENDING = "pending", _("being let through")
    ACTIVE = "active", _("let through")
    ENDED = "ended", _("ended")


class EndReason(models.TextChoices):
    EXPIRED = "expired", _("session over")
    IDLE = "idle", _("idle")
    KICKED = "kicked", _("sent back by the operator")
    BLOCKED = "blocked", _("blocked by the operator")
    LOST = "lost", _("lost at a restart")
    REPLACED = "replaced", _("address given to another phone")


def is_randomised_mac(mac: str) -> bool:
    """A locally administered MAC (bit 1 of the first octet): what phones
    use for privacy, so the same phone may come back with another one."""
    try:
        return bool(int(mac.split(":", 1)[0], 16) & 0x02)
    except ValueError:
        return False


class ClientSession(models.Model):
    """One phone let through (or being let through), MAC and IP together.

    At most one row per IP is live (pending or active): DHCP gives each
    phone its own address, and the firewall's download counter is keyed by
    IP. Ended rows stay for the operator's history until pruned.
    """

    mac = models.CharField(_("MAC address"), max_length=17, db_index=True)
    ip = models.GenericIPAddressField(_("IP address"), protocol="IPv4", db_index=True)
    hostname = models.CharField(_("name"), max_length=63, blank=True)
    state = models.CharField(
        max_length=8, choices=SessionState.choices, default=SessionState.PENDING
    )
    end_reason = models.CharField(
        max_length=8, choices=EndReason.choices, default="", blank=True
    )
    since = models.DateTimeField(_("since"), default=timezone.now)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now)
    expires_at = models.DateTimeField(_("session ends"))
    ended_at = models.DateTimeField(null=True, blank=True)
    bytes_up = models.BigIntegerField(_("sent"), default=0)
    bytes_down = models.BigIntegerField(_("received"), default=0)

    class Meta:
        verbose_name = _("client session")
        ordering = ["-since"]
        indexes = [models.Index(fields=["ip", "state"])]

    def __str__(self) -> str:
        return f"{self.mac} {self.ip}"

    @property
    def randomised_mac(self) -> bool:
        return is_randomised_mac(self.mac)

    @property
    def live(self) -> bool:
        return self.state in (SessionState.PENDING, SessionState.ACTIVE)

    def seconds_remaining(self, now: datetime | None = None) -> int:
        now = now or timezone.now()
        return max(0, int((self.expires_at - now).total_seconds()))

    @staticmethod
    def ends_after(seconds: int) -> datetime:
        return timezone.now() + timedelta(seconds=seconds)


class MacRuleKind(models.TextChoices):
    BLOCKED = "blocked", _("blocked")
    ALLOWED = "allowed", _("always allowed")


class MacRule(models.Model):
    """A MAC the operator blocked or always lets through (never both)."""

    mac = models.CharField(_("MAC address"), max_length=17, unique=True)
    kind = models.CharField(_("rule"), max_length=8, choices=MacRuleKind.choices)
    note = models.CharField(_("note"), max_length=100, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("MAC rule")
        ordering = ["kind", "mac"]

    def __str__(self) -> str:
        return f"{self.mac} ({self.kind})"
