"""``manage.py lab up|status|exec|down``: the lab from the command line.

The lab named by ``settings.PORTAL.lab_prefix`` (``byz`` for ``make run``)
with its files in ``settings.PORTAL.lab_dir``. ``up`` waits for full babel
convergence and says how long it took; ``--json`` prints the lab's status
(plus ``converged_seconds``) on stdout for scripts such as ``runnode``, and
progress goes to stderr. ``exec`` runs a developer's command inside a lab
namespace and exits with its exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from portal.host.errors import HostError
from portal.host.runner import is_root
from portal.lab import Lab, LabSpec, documents, internet
from portal.lab.lab import LabStatus
from portal.lab.spec import TOPOLOGIES


class Command(BaseCommand):
    help = "Build, inspect, use and remove the lab: mesh nodes in network namespaces."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        up = actions.add_parser(
            "up", help="(Re)build the lab and wait for convergence."
        )
        up.add_argument("--nodes", type=int, default=None)
        up.add_argument("--topology", choices=TOPOLOGIES, default="line")
        up.add_argument("--clients", type=int, default=None)
        up.add_argument("--timeout", type=float, default=120.0)
        up.add_argument("--json", action="store_true")
        up.add_argument(
            "--neighbour-documents",
            metavar="NODE",
            default=None,
            help="Every node but NODE (the one the portal manages) serves its "
            "node document at /api/v1/node, so NODE's mesh directory finds it.",
        )
        up.add_argument(
            "--internet",
            metavar="NODE",
            action="append",
            default=[],
            help="Add the lab's Internet (namespace <prefix>-inet, documentation "
            "addresses only) behind an uplink up0 of NODE, with a DHCP server "
            "on it like a home router. Repeat for more gateways.",
        )
        status = actions.add_parser("status", help="Show namespaces, links, daemons.")
        status.add_argument("--json", action="store_true")
        run = actions.add_parser("exec", help="Run a command inside a lab namespace.")
        run.add_argument("member", help="n1, node-1, c1, client-1 or inet")
        run.add_argument("argv", nargs=argparse.REMAINDER)
        actions.add_parser("down", help="Remove everything the lab created.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not is_root():
            raise CommandError(
                _("The lab needs root (it creates network namespaces); run it as root.")
            )
        config = settings.PORTAL
        lab = Lab(prefix=config.lab_prefix, base_dir=config.lab_dir)
        action = options["action"]
        try:
            if action == "up":
                self.up(lab, options, config)
            elif action == "status":
                self.show(lab.status(), as_json=options["json"])
            elif action == "exec":
                self.run_inside(lab, options["member"], options["argv"])
            elif action == "down":
                lab.down()
                self.stdout.write(_("Lab %(prefix)s removed.") % {"prefix": lab.prefix})
        except HostError as error:
            raise CommandError(str(error)) from error

    def up(self, lab: Lab, options: dict[str, Any], config: Any) -> None:
        spec = LabSpec(
            nodes=options["nodes"]
            if options["nodes"] is not None
            else config.lab_nodes,
            topology=options["topology"],
            clients=(
                options["clients"]
                if options["clients"] is not None
                else config.lab_clients
            ),
        )
        managed = options["neighbour_documents"]
        gateways = list(dict.fromkeys(options["internet"]))
        for node in [managed, *gateways]:
            if node is not None and node not in spec.node_names:
                raise CommandError(
                    _("%(node)s is not a node of this lab.") % {"node": node}
                )
        progress = self.stderr if options["json"] else self.stdout
        progress.write(
            _(
                "Building lab %(prefix)s: %(nodes)s nodes (%(topology)s), "
                "%(clients)s clients..."
            )
            % {
                "prefix": lab.prefix,
                "nodes": spec.nodes,
                "topology": spec.topology,
                "clients": spec.clients,
            }
        )
        started = time.monotonic()
        lab.up(spec)
        converged = lab.wait_converged(timeout=options["timeout"], spec=spec)
        total = time.monotonic() - started
        progress.write(
            _(
                "Converged %(converged).2f s after babeld started "
                "(%(total).2f s for the whole build)."
            )
            % {"converged": converged, "total": total}
        )
        if managed is not None:
            serving = documents.serve_documents(lab, spec, managed=managed)
            if serving:
                progress.write(
                    _("Node documents served by %(nodes)s.")
                    % {"nodes": ", ".join(serving)}
                )
        if gateways:
            self.add_internet(lab, gateways)
            progress.write(
                _(
                    "The lab's Internet is behind %(nodes)s (uplink %(uplink)s, "
                    "DHCP); web server %(web)s, DNS %(dns)s."
                )
                % {
                    "nodes": ", ".join(gateways),
                    "uplink": internet.UPLINK,
                    "web": internet.WEB_ADDRESS,
                    "dns": internet.DNS_ADDRESS,
                }
            )
        status = lab.status()
        if options["json"]:
            data = status.to_dict()
            data["converged_seconds"] = round(converged, 3)
            data["build_seconds"] = round(total, 3)
            self.stdout.write(json.dumps(data, indent=2))
        else:
            self.show(status, as_json=False)

    @staticmethod
    def add_internet(lab: Lab, gateways: list[str]) -> None:
        """The Internet namespace behind ``gateways``; its processes outlive
        this command and ``lab down`` removes them with the namespace."""
        try:
            internet.Internet(
                lab.prefix,
                lab.folder(internet.NAMESPACE_SUFFIX),
                {node: lab.namespace(node) for node in gateways},
                dhcp_nodes=tuple(gateways),
                stand_ins=True,
            ).up()
        except (RuntimeError, OSError) as error:
            lab.down()
            raise CommandError(
                _("The lab's Internet did not start: %(error)s") % {"error": error}
            ) from error

    def show(self, status: LabStatus, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(status.to_dict(), indent=2))
            return
        if not status.members:
            self.stdout.write(
                _("Lab %(prefix)s is not running.") % {"prefix": status.prefix}
            )
            return
        self.stdout.write(
            _("Lab %(prefix)s, files in %(folder)s")
            % {"prefix": status.prefix, "folder": status.base_dir}
        )
        for member in status.members:
            line = f"{member.name} ({member.namespace})"
            if member.node:
                line += " " + _("on %(node)s") % {"node": member.node}
            if member.role == "internet":
                line += " " + _("the lab's Internet")
            self.stdout.write(line)
            for interface in member.interfaces:
                addresses = " ".join(interface.addresses)
                self.stdout.write(
                    f"  {interface.name:<8} {interface.state:<8} {addresses}"
                )
            for daemon in member.daemons:
                state = _("running") if daemon.alive else _("not running")
                self.stdout.write(
                    f"  {daemon.program:<8} pid {daemon.pid or '-'}  {state}"
                )
        links = ", ".join(f"{a}-{b}" for a, b in status.links)
        self.stdout.write(_("Links: %(links)s") % {"links": links or "-"})

    def run_inside(self, lab: Lab, member: str, argv: list[str]) -> None:
        if argv and argv[0] == "--":
            argv = argv[1:]
        if not argv:
            raise CommandError(_("Give the command to run after --."))
        self.stdout.flush()
        result = lab.exec(member, argv)
        code = result.returncode
        if code < 0:  # killed by a signal: report it the way a shell does
            code = 128 - code
        if code:
            sys.exit(code)
