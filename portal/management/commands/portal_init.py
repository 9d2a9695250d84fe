"""``manage.py portal_init``: first-run preparation, run as root by make run.

Idempotent; every run:

1. creates the state folders;
2. makes the HTTPS certificate and key on the first run
   (``<state>/tls/portal.crt`` and ``portal.key``, mode 0600) and prints the
   certificate's SHA-256 fingerprint;
3. in ``lab`` host mode, on the very first run only: stores the managed
   lab node's addresses and interfaces (the lab's address plan, which
   ``lab up`` gives that node) as the portal's mesh state, so the pages,
   the captive portal and every later job describe the node as it is
   instead of an empty one; and switches the captive portal on for the
   node's client port (``br-lan``), so the demo shows a phone held by the
   portal (DESIGN.md, "The lab"). Once the operator has changed either,
   their choice stands;
4. while setup is not done, makes sure a one-time setup secret exists (the
   plaintext in ``<state>/setup-secret``, mode 0600, only its hash in the
   database) and prints it; once setup is done, deletes that file.

It needs the database migrated first (make run migrates before it).
"""

from __future__ import annotations

import dataclasses
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

        if settings.PORTAL.host_mode == "lab":
            self._lab_mesh_state_on_first_run()
            self._lab_portal_on_first_run()

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

    def _lab_mesh_state_on_first_run(self) -> None:
        """The lab node's mesh state (the lab's address plan) in the models."""
        from django.db import transaction

        from meshnet.change_services import write_state
        from meshnet.models import AddressOrigin, MeshInterface, MeshSettings
        from portal.lab.lab import Lab
        from portal.lab.spec import LabSpec

        if MeshSettings.load().mesh_address or MeshInterface.objects.exists():
            return
        config = settings.PORTAL
        lab = Lab(prefix=config.lab_prefix, base_dir=config.lab_dir)
        spec = LabSpec(nodes=config.lab_nodes, clients=config.lab_clients)
        state = dataclasses.replace(
            lab.node_state(config.lab_node, spec),
            address_origin=AddressOrigin.MANUAL.value,
        )
        with transaction.atomic():
            write_state(
                state, ["mesh_address", "client_subnet", "address_origin", "interfaces"]
            )
        self.stdout.write(
            _(
                "Lab: node %(node)s has mesh address %(address)s and client "
                "subnet %(subnet)s (the lab's address plan)."
            )
            % {
                "node": config.lab_node,
                "address": state.mesh_address,
                "subnet": state.client_subnet,
            }
        )

    def _lab_portal_on_first_run(self) -> None:
        """Hold the lab's phone on a new lab node, as a real node would be
        set up in the field; the worker applies the queued job when it
        starts (it pushes rows queued while Redis was down)."""
        from captive.models import CaptiveSettings, PortalInterface
        from captive.services import portal_settings_update
        from portal.lab.spec import CLIENT_BRIDGE

        if PortalInterface.objects.exists():
            return
        row = CaptiveSettings.load()
        portal_settings_update(
            session_timeout=row.session_timeout,
            idle_timeout=row.idle_timeout,
            message=row.message,
            restore_after_restart=row.restore_after_restart,
            interfaces={CLIENT_BRIDGE: True},
        )
        self.stdout.write(
            _(
                "Lab: the captive portal is on for the lab node's client port "
                "%(interface)s (the operator's captive page switches it off)."
            )
            % {"interface": CLIENT_BRIDGE}
        )
