"""Models of the gateway app: how this node shares its uplink, and what it saw.

One row (:class:`GatewaySettings`, pk 1) holds both the operator's choices
(which uplink, how it gets its address, sharing, DNS, the check, Tor) and
the observed state the periodic uplink check keeps (online or not, the run
of results behind that verdict, the resolvers the uplink's DHCP lease
named). Forms validate every value before it is stored; the apply code
validates again before anything reaches a command or a file.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

SINGLETON_ID = 1
MIN_CHECK_INTERVAL = 5
MAX_CHECK_INTERVAL = 600
DEFAULT_CHECK_TARGETS = ["9.9.9.9", "1.1.1.1", "8.8.8.8"]


def default_check_targets() -> list[str]:
    return list(DEFAULT_CHECK_TARGETS)


class Addressing(models.TextChoices):
    DHCP = "dhcp", _("automatic (DHCP)")
    STATIC = "static", _("fixed address")


class DnsChoice(models.TextChoices):
    UPLINK = "uplink", _("the uplink's own DNS servers")
    CUSTOM = "custom", _("DNS servers I choose")
    PUBLIC = "public", _("well-known public DNS servers")


class GatewayMode(models.TextChoices):
    """What the dashboard says: how this node reaches the Internet."""

    NONE = "none", _("none")
    DIRECT = "direct", _("direct")
    TOR = "tor", _("via Tor")


class GatewaySettings(models.Model):
    """This node's uplink and how it shares it with the mesh; one row (pk 1)."""

    uplink_interface = models.CharField(
        _("uplink interface"), max_length=15, blank=True
    )
    addressing = models.CharField(
        _("uplink address"),
        max_length=8,
        choices=Addressing.choices,
        default=Addressing.DHCP,
    )
    static_address = models.CharField(
        _("address with prefix"), max_length=18, blank=True
    )
    static_router = models.GenericIPAddressField(
        _("router"), protocol="IPv4", null=True, blank=True
    )
    sharing = models.BooleanField(_("share the uplink with the mesh"), default=False)
    dns_mode = models.CharField(
        _("DNS servers"),
        max_length=8,
        choices=DnsChoice.choices,
        default=DnsChoice.UPLINK,
    )
    dns_servers = models.JSONField(_("chosen DNS servers"), default=list, blank=True)
    check_targets = models.JSONField(
        _("check targets"), default=default_check_targets, blank=True
    )
    check_interval_seconds = models.PositiveIntegerField(
        _("check every (seconds)"),
        default=10,
        validators=[
            MinValueValidator(MIN_CHECK_INTERVAL),
            MaxValueValidator(MAX_CHECK_INTERVAL),
        ],
    )
    fail_threshold = models.PositiveSmallIntegerField(
        _("failed checks before withdrawing"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
    )
    pass_threshold = models.PositiveSmallIntegerField(
        _("passed checks before announcing"),
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
    )
    tor_enabled = models.BooleanField(
        _("send the mesh's traffic through Tor"), default=False
    )
    onion_services = models.JSONField(_("onion services"), default=list, blank=True)

    # Observed by the uplink check, never set by a form.
    uplink_online = models.BooleanField(default=False, editable=False)
    health = models.JSONField(default=dict, editable=False)
    lease_dns_servers = models.JSONField(default=list, editable=False)
    # The interfaces that could be an uplink, as the last scan saw them
    # (gateway.uplink.UplinkCandidate as dicts): the web process never runs
    # commands, so the pages show this copy.
    candidates = models.JSONField(default=list, editable=False)
    scanned_at = models.DateTimeField(null=True, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)
    # How far the gateway's tor has bootstrapped (0-100), read by the uplink
    # check from tor's log; None while Tor mode is off or tor is not running.
    # "Internet via Tor" means little until it reaches 100.
    tor_progress = models.PositiveSmallIntegerField(
        null=True, blank=True, editable=False
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("gateway settings")
        verbose_name_plural = _("gateway settings")

    def __str__(self) -> str:
        return f"gateway settings ({self.uplink_interface or 'no uplink'})"

    @classmethod
    def load(cls) -> GatewaySettings:
        """The one row, created with defaults on first use."""
        obj, _created = cls.objects.get_or_create(pk=SINGLETON_ID)
        return obj

    @property
    def mode(self) -> str:
        """none / direct / tor, as the dashboard says it."""
        if not (self.sharing and self.uplink_interface and self.uplink_online):
            return GatewayMode.NONE
        return GatewayMode.TOR if self.tor_enabled else GatewayMode.DIRECT
