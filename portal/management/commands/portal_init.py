"""``manage.py portal_init``: first-run preparation, run as root by make run.

Idempotent; every run:

1. creates the state folders;
2. makes the HTTPS certificate and key on the first run
   (``<state>/tls/portal.crt`` and ``portal.key``, mode 0600) and prints the
   certificate's SHA-256 fingerprint;
3. while setup is not done, makes sure a one-time setup secret exists (the
   plaintext in ``<state>/setup-secret``, mode 0600, only its hash in the
   database) and prints it; once setup is done, deletes that file.

It needs the database migrated first (make run migrates before it).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils.translation import gettext as _

from portal import access, tls
from portal.forms import validate_node_name
from portal.host.errors import HostError
from portal.host.runner import SystemRunner
from portal.models import NodeSettings


def default_node_name() -> str:
    """The machine's host name if it is a valid node name, else "byzantium"."""
    from django.core.exceptions import ValidationError

    try:
        return validate_node_name(socket.gethostname().split(".")[0])
    except ValidationError:
        return "byzantium"


class Command(BaseCommand):
    help = "Prepare state folders, the HTTPS certificate and the one-time setup secret."

    def handle(self, *args: Any, **options: Any) -> None:
        state = settings.STATE_DIR
        for folder in (state, state / "db", state / "run"):
            folder.mkdir(parents=True, exist_ok=True)
        if NodeSettings._meta.db_table not in connection.introspection.table_names():
            raise CommandError(
                _("The database is not migrated yet: run manage.py migrate first.")
            )

        node = NodeSettings.load()
        files = tls.TlsFiles(state / "tls")
        try:
            made = tls.ensure_certificate(
                files,
                node_name=node.node_name or default_node_name(),
                runner=SystemRunner(),
            )
        except HostError as error:
            raise CommandError(
                _("Could not make the HTTPS certificate: %(error)s") % {"error": error}
            ) from error
        fingerprint = tls.fingerprint(files.cert.read_text())
        if made:
            message = _("Made the HTTPS certificate %(path)s")
        else:
            message = _("Using the HTTPS certificate %(path)s")
        self.stdout.write(message % {"path": files.cert})
        self.stdout.write(
            _("Certificate SHA-256 fingerprint: %(fingerprint)s")
            % {"fingerprint": fingerprint}
        )

        secret = access.issue_setup_secret(access.setup_secret_path())
        if secret is None:
            self.stdout.write(
                _("Setup is done; log in with the administrator account.")
            )
            return
        if os.geteuid() != 0:
            self.stderr.write(
                _(
                    "Warning: not running as root; the setup secret file is "
                    "private to this user only."
                )
            )
        self.stdout.write("")
        self.stdout.write(
            _(
                "This node is not set up yet. Open the operator panel over HTTPS "
                "and type this one-time setup secret:"
            )
        )
        self.stdout.write("")
        self.stdout.write(f"    {secret}")
        self.stdout.write("")
        self.stdout.write(
            _("(It is also in %(path)s, readable by root only.)")
            % {"path": access.setup_secret_path()}
        )
