"""Shared helpers for the access, setup and dashboard tests."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from portal.models import NodeSettings

ADMIN_USERNAME = "operator"
ADMIN_PASSWORD = "correct-horse-battery-9"  # noqa: S105


class HttpsClient(Client):
    """A test client whose every request arrives over HTTPS (as via nginx)."""

    def generic(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["secure"] = True
        return super().generic(*args, **kwargs)


def finish_setup(node_name: str = "library-2") -> Any:
    """Mark the node set up and create its administrator; return the user."""
    user = get_user_model().objects.create_superuser(
        username=ADMIN_USERNAME, email="", password=ADMIN_PASSWORD
    )
    node = NodeSettings.load()
    node.node_name = node_name
    node.setup_completed_at = timezone.now()
    node.setup_secret_hash = ""
    node.save()
    return user


def logged_in_client(**kwargs: Any) -> HttpsClient:
    """An HTTPS client logged in as the administrator (setup must be done)."""
    client = HttpsClient(**kwargs)
    user = get_user_model().objects.get(username=ADMIN_USERNAME)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client
