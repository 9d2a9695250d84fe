"""Operator access: the one-time setup secret and completing first-run setup.

Why a secret: a fresh node sits on a mesh full of strangers, and whoever
reaches the wizard first would become its administrator. ``portal_init``
(run as root by ``make run``) prints a random secret on the console and
keeps it in a root-only file; the database holds only its hash, so the
unprivileged web process can check a guess but cannot learn the secret.
Guesses are throttled per client address.
"""

from __future__ import annotations

import enum
import os
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from portal.models import NodeSettings, SetupAttempt
from portal.models.node import hash_setup_secret, normalise_setup_secret

# 32 symbols without 0/O, 1/I: 20 of them carry 100 bits and read aloud well.
SECRET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # noqa: S105
SECRET_LENGTH = 20
SETUP_ATTEMPT_LIMIT = 5
SETUP_ATTEMPT_WINDOW = timedelta(minutes=15)


class SetupError(Exception):
    """Setup cannot be completed (already done, or the secret changed)."""


class SecretCheck(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    THROTTLED = "throttled"
    CLOSED = "closed"


def setup_secret_path() -> Path:
    return settings.STATE_DIR / "setup-secret"


def generate_setup_secret() -> str:
    """A fresh secret, shown in groups of five: ``ABCDE-FGHJK-LMNPQ-RSTUV``."""
    raw = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return "-".join(raw[i : i + 5] for i in range(0, SECRET_LENGTH, 5))


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        temp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, path)


def issue_setup_secret(path: Path | None = None) -> str | None:
    """Make sure a setup secret exists while setup is not done; return it.

    Idempotent: when the file already holds the secret whose hash is in the
    database, that same secret is returned (a second ``make run`` prints the
    same code). Once setup is done the file is deleted and None returned.
    """
    path = path or setup_secret_path()
    with transaction.atomic():
        node = NodeSettings.load()
        if node.setup_done:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            return None
        try:
            existing = path.read_text().strip()
        except FileNotFoundError:
            existing = ""
        if existing and node.setup_secret_matches(existing):
            os.chmod(path, 0o600)
            return existing
        secret = generate_setup_secret()
        _write_private(path, secret + "\n")
        node.setup_secret_hash = hash_setup_secret(secret)
        node.setup_secret_created_at = timezone.now()
        node.save(update_fields=["setup_secret_hash", "setup_secret_created_at"])
        return secret


def check_setup_secret(*, secret: str, address: str) -> SecretCheck:
    """Check a guess from ``address``; wrong guesses count toward the limit."""
    node = NodeSettings.peek()
    if node.setup_done:
        return SecretCheck.CLOSED
    # Old attempts no longer count; dropping them keeps the table small
    # however many addresses a guesser uses.
    SetupAttempt.objects.filter(
        created_at__lt=timezone.now() - SETUP_ATTEMPT_WINDOW
    ).delete()
    if (
        SetupAttempt.recent_failures(address, SETUP_ATTEMPT_WINDOW)
        >= SETUP_ATTEMPT_LIMIT
    ):
        return SecretCheck.THROTTLED
    if node.setup_secret_matches(secret):
        return SecretCheck.OK
    SetupAttempt.objects.create(address=address)
    return SecretCheck.WRONG


def secret_proof(secret: str) -> str:
    """What the wizard keeps in the session between its two steps."""
    return hash_setup_secret(normalise_setup_secret(secret))


def proof_is_current(proof: str | None) -> bool:
    """Whether a session's proof still matches the secret in the database."""
    if not proof:
        return False
    node = NodeSettings.peek()
    return (
        not node.setup_done
        and bool(node.setup_secret_hash)
        and secrets.compare_digest(node.setup_secret_hash, proof)
    )


def complete_setup(
    *, proof: str, username: str, password: str, node_name: str, language: str
) -> AbstractBaseUser:
    """Create the administrator, save the node's settings, burn the secret.

    All in one transaction: either the node is set up and the secret is
    gone, or nothing changed.
    """
    with transaction.atomic():
        node = NodeSettings.load()
        if node.setup_done:
            raise SetupError("setup is already done")
        if not node.setup_secret_hash or not secrets.compare_digest(
            node.setup_secret_hash, proof
        ):
            raise SetupError("the setup secret has changed")
        user = get_user_model().objects.create_superuser(
            username=username, email="", password=password
        )
        node.node_name = node_name
        node.language = language
        node.setup_completed_at = timezone.now()
        node.setup_secret_hash = ""
        node.setup_secret_created_at = None
        node.save()
        SetupAttempt.objects.all().delete()
    return user
