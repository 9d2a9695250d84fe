"""The node's own settings and state that the dashboard and setup need.

Three small tables:

- :class:`NodeSettings` (one row): what the operator chose in the first-run
  wizard (node name, language), whether setup is done, and the hash of the
  one-time setup secret while it is not.
- :class:`SetupAttempt`: failed guesses of that secret, per client address,
  so the wizard can be throttled across every web worker process.
- :class:`NodeStatus` (one row): the last snapshot of the system that the
  worker collected (the web process never runs a system command itself).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SINGLETON_ID = 1


def hash_setup_secret(secret: str) -> str:
    """SHA-256 of a normalised setup secret.

    The secret carries about 100 random bits, so a plain hash is enough: a
    slow password hash would protect nothing more, while this keeps the check
    constant-time and cheap. Only this hash is stored in the database; the
    plaintext lives in a root-only file the web process cannot read.
    """
    return hashlib.sha256(normalise_setup_secret(secret).encode()).hexdigest()


def normalise_setup_secret(secret: str) -> str:
    """Forgive what people do when they copy a code: case, spaces, dashes."""
    return "".join(ch for ch in secret.upper() if ch.isalnum())


class NodeSettings(models.Model):
    """What the operator set up for this node; exactly one row (pk 1)."""

    node_name = models.CharField(
        _("node name"),
        max_length=63,
        blank=True,
        help_text=_("How this node is called on the mesh and on its pages."),
    )
    language = models.CharField(_("language"), max_length=8, default="en")
    setup_completed_at = models.DateTimeField(
        _("setup completed"), null=True, blank=True
    )
    setup_secret_hash = models.CharField(max_length=64, blank=True, editable=False)
    setup_secret_created_at = models.DateTimeField(
        null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("node settings")
        verbose_name_plural = _("node settings")

    def __str__(self) -> str:
        return self.node_name or "node"

    @classmethod
    def load(cls) -> NodeSettings:
        """The one row, created empty on first use."""
        obj, _created = cls.objects.get_or_create(pk=SINGLETON_ID)
        return obj

    @classmethod
    def peek(cls) -> NodeSettings:
        """The one row if it exists, else an unsaved empty one (no write)."""
        return cls.objects.filter(pk=SINGLETON_ID).first() or cls(pk=SINGLETON_ID)

    @property
    def setup_done(self) -> bool:
        return self.setup_completed_at is not None

    def setup_secret_matches(self, secret: str) -> bool:
        """Whether ``secret`` is the current one-time secret (constant time)."""
        if self.setup_done or not self.setup_secret_hash:
            return False
        return hmac.compare_digest(self.setup_secret_hash, hash_setup_secret(secret))


class SetupAttempt(models.Model):
    """A wrong setup secret typed from ``address``: the throttle counts these."""

    address = models.CharField(max_length=45, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("setup attempt")
        verbose_name_plural = _("setup attempts")

    def __str__(self) -> str:
        return f"{self.address} {self.created_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def recent_failures(cls, address: str, window: timedelta) -> int:
        return cls.objects.filter(
            address=address, created_at__gte=timezone.now() - window
        ).count()


class NodeStatus(models.Model):
    """The last snapshot of the system, written by the ``portal.sample_status``
    job and read by the dashboard; exactly one row (pk 1).

    ``data`` is the JSON of :class:`portal.status.StatusSnapshot`.
    """

    collected_at = models.DateTimeField(_("collected at"))
    data = models.JSONField(_("snapshot"), default=dict)

    class Meta:
        verbose_name = _("node status")
        verbose_name_plural = _("node status")

    def __str__(self) -> str:
        return f"status {self.collected_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def latest(cls) -> NodeStatus | None:
        return cls.objects.filter(pk=SINGLETON_ID).first()

    @classmethod
    def store(cls, data: dict[str, Any]) -> NodeStatus:
        obj, _created = cls.objects.update_or_create(
            pk=SINGLETON_ID, defaults={"data": data, "collected_at": timezone.now()}
        )
        return obj
