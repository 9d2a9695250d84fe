"""Desired state of the mesh side of this node, and what it learnt.

The operator's choices (and the addresses the node picked for itself) are
stored here; jobs read them by id, render configs and apply them through the
host layer. What the node learns from the mesh (the directory of other
nodes) is stored here too, so pages never ask the system themselves.

- :class:`MeshSettings` (one row): routing protocol, the node's own mesh
  address and client subnet and how they were chosen, mesh DNS domain,
  babel HMAC key, DHCP lease time, whether a default route is announced
  (decided by the gateway app).
- :class:`MeshInterface`: an interface given a role on the mesh (a mesh
  link: IBSS, 802.11s, wired) or serving clients (access point or wired
  client port), with its wireless parameters.
- :class:`PendingChange`: a change that could cut the operator off, applied
  with a deadline and rolled back unless confirmed with its token.
- :class:`DirectoryEntry`: another node of the mesh as its published
  document described it, with expiry.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SINGLETON_ID = 1

# How long a change that could cut the operator off waits for confirmation
# before it is rolled back (seconds): LuCI's 90 s by default; at least long
# enough to reconnect, at most ten minutes of a possibly broken node.
ROLLBACK_DEFAULT_SECONDS = 90
ROLLBACK_MIN_SECONDS = 30
ROLLBACK_MAX_SECONDS = 600


class RoutingProtocol(models.TextChoices):
    BABEL = "babel", _("Babel (babeld)")
    BATMAN_ADV = "batman-adv", _("B.A.T.M.A.N. advanced (batman-adv)")


class AddressOrigin(models.TextChoices):
    NONE = "", _("not chosen yet")
    AUTOMATIC = "auto", _("chosen by the node")
    MANUAL = "manual", _("set by the operator")


class MeshSettings(models.Model):
    """How this node takes part in the mesh; exactly one row (pk 1)."""

    protocol = models.CharField(
        _("routing protocol"),
        max_length=16,
        choices=RoutingProtocol.choices,
        default=RoutingProtocol.BABEL,
    )
    mesh_address = models.GenericIPAddressField(
        _("mesh address"), protocol="IPv4", null=True, blank=True
    )
    client_subnet = models.CharField(
        _("client subnet"), max_length=18, blank=True, help_text=_("Like 10.42.7.0/24.")
    )
    address_origin = models.CharField(
        _("addresses"), max_length=8, choices=AddressOrigin.choices, blank=True
    )
    addresses_checked_at = models.DateTimeField(null=True, blank=True)
    mesh_domain = models.CharField(_("mesh DNS domain"), max_length=63, default="mesh")
    babel_hmac_key = models.CharField(
        _("routing key"),
        max_length=128,
        blank=True,
        help_text=_("Shared by every node of the mesh; empty means no authentication."),
    )
    dhcp_lease_seconds = models.PositiveIntegerField(
        _("DHCP lease time (seconds)"), default=3600
    )
    announce_default_route = models.BooleanField(
        default=False,
        editable=False,
        help_text=_("Set by the gateway app while this node's uplink works."),
    )
    rollback_seconds = models.PositiveIntegerField(
        _("time to confirm a change (seconds)"),
        default=ROLLBACK_DEFAULT_SECONDS,
        validators=[
            MinValueValidator(ROLLBACK_MIN_SECONDS),
            MaxValueValidator(ROLLBACK_MAX_SECONDS),
        ],
        help_text=_(
            "A change that could cut you off is undone unless you confirm it "
            "within this time."
        ),
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("mesh settings")
        verbose_name_plural = _("mesh settings")

    def __str__(self) -> str:
        return f"mesh settings ({self.protocol})"

    @classmethod
    def load(cls) -> MeshSettings:
        """The one row, created with defaults on first use."""
        obj, _created = cls.objects.get_or_create(pk=SINGLETON_ID)
        return obj


class InterfaceRole(models.TextChoices):
    MESH = "mesh", _("mesh link")
    CLIENTS = "clients", _("serves clients")


class InterfaceMedium(models.TextChoices):
    IBSS = "ibss", _("wireless ad-hoc (IBSS)")
    MESH_POINT = "mesh-point", _("wireless 802.11s mesh point")
    WIRED = "wired", _("wired")
    ACCESS_POINT = "ap", _("wireless access point")


class MeshInterface(models.Model):
    """A network interface the operator gave a job on the mesh."""

    name = models.CharField(_("interface"), max_length=15, unique=True)
    role = models.CharField(_("role"), max_length=8, choices=InterfaceRole.choices)
    medium = models.CharField(_("kind"), max_length=12, choices=InterfaceMedium.choices)
    essid = models.CharField(_("network name (ESSID)"), max_length=32, blank=True)
    channel = models.PositiveSmallIntegerField(_("channel"), null=True, blank=True)
    bssid = models.CharField(_("cell id (BSSID)"), max_length=17, blank=True)
    mesh_id = models.CharField(_("mesh id"), max_length=32, blank=True)
    passphrase = models.CharField(_("passphrase"), max_length=63, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("mesh interface")
        verbose_name_plural = _("mesh interfaces")
        ordering = ["role", "name"]

    def __str__(self) -> str:
        return self.name


class ChangeState(models.TextChoices):
    APPLYING = "applying", _("being applied")
    WAITING = "waiting", _("waiting for confirmation")
    CONFIRMED = "confirmed", _("confirmed")
    ROLLED_BACK = "rolled-back", _("rolled back")
    FAILED = "failed", _("failed")


def _new_token() -> str:
    return secrets.token_urlsafe(24)


class PendingChange(models.Model):
    """A network change applied with a deadline (as OpenWrt LuCI does).

    ``previous`` and ``proposed`` hold the mesh state before and after as
    JSON, so a rollback restores exactly what was there. The token confirms
    the change from any address (the operator may only reach the node on its
    new address, where the old session cookie is not sent).
    """

    kind = models.CharField(max_length=32)
    token = models.CharField(max_length=64, unique=True, default=_new_token)
    state = models.CharField(
        max_length=12, choices=ChangeState.choices, default=ChangeState.APPLYING
    )
    previous = models.JSONField(default=dict)
    proposed = models.JSONField(default=dict)
    deadline = models.DateTimeField(db_index=True)
    # The confirmation window; the deadline is set again to applied + this
    # once the change is live, so a slow queue does not eat the operator's
    # time.
    window_seconds = models.PositiveIntegerField(default=ROLLBACK_DEFAULT_SECONDS)
    created = models.DateTimeField(auto_now_add=True)
    applied = models.DateTimeField(null=True, blank=True)
    resolved = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL
    )
    message = models.TextField(blank=True)

    class Meta:
        verbose_name = _("pending change")
        verbose_name_plural = _("pending changes")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.kind} ({self.state})"

    def get_absolute_url(self) -> str:
        """The operator's page of this change (login required)."""
        from django.urls import reverse

        return reverse("meshnet:change_detail", args=[self.pk])

    @staticmethod
    def deadline_after(seconds: int) -> datetime:
        return timezone.now() + timedelta(seconds=seconds)


class ConfirmAttempt(models.Model):
    """A wrong confirmation token from one client address, for throttling.

    Confirming needs no session (the operator may be on the node's new
    address), so the token is the only credential: wrong guesses are
    counted per address and refused past a limit.
    """

    address = models.CharField(max_length=64, db_index=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("wrong confirmation attempt")
        verbose_name_plural = _("wrong confirmation attempts")

    def __str__(self) -> str:
        return f"{self.address} {self.created:%Y-%m-%d %H:%M:%S}"


class DirectoryEntry(models.Model):
    """Another node of the mesh, as its ``/api/v1/node`` document said.

    Everything here came from another machine: it is untrusted, size- and
    schema-checked before it is stored, and escaped wherever it is shown.
    """

    address = models.GenericIPAddressField(_("address"), unique=True)
    name = models.CharField(_("name"), max_length=63)
    client_subnet = models.CharField(_("client subnet"), max_length=18, blank=True)
    gateway = models.BooleanField(_("gateway"), default=False)
    services = models.JSONField(default=list)
    version = models.CharField(max_length=32, blank=True)
    document = models.JSONField(default=dict)
    published_at = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("mesh directory entry")
        verbose_name_plural = _("mesh directory")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"
