"""Node documents for the lab's other nodes, so the managed node's directory
has neighbours to find.

In ``make run``'s lab only node ``n1`` runs the portal; ``n2`` and ``n3`` run
babeld and dnsmasq but no web server, so the mesh directory of ``n1`` would
find their routes and nothing at ``/api/v1/node``: no ``n2.mesh`` name, no
other node on the captive page. Each of the other nodes therefore serves its
true document (its name, mesh address and client subnet from the lab's
address plan, no services, since it runs none) at its mesh address, with
Python's own ``http.server`` from a folder of the lab, started through
start-stop-daemon inside the node's namespace. The directory then reads
them exactly as it reads a real node's portal.

The trade-off: a static file instead of a second portal per node (its
own database, worker and nginx), which would cost a few hundred MB for a
demo. ``lab down`` stops the servers with every other process of the
lab's namespaces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from meshnet.node_document import build_node_document
from portal.host.builders import netns, supervisor
from portal.host.commands import Command

from . import spec as plan
from .spec import LabSpec

if TYPE_CHECKING:
    from .lab import Lab

# The server's files, pid and log, in each node's lab folder.
DOCUMENT_FOLDER = "www"
DOCUMENT_PATH = "api/v1/node"
PID_FILE = "www.pid"
LOG_FILE = "www.log"
PYTHON = "/usr/bin/python3"
HTTP_PORT = 80
# Not root (the supervisor builder refuses it): the namespace lets this
# unprivileged user bind port 80 (``ip_unprivileged_port_start``).
SERVER_USER = "nobody"
SERVER_GROUP = "nogroup"


def document_bytes(node: str) -> bytes:
    """The node's own document, from the lab's address plan."""
    document = build_node_document(
        name=node,
        mesh_address=str(plan.mesh_address(node)),
        client_subnet=str(plan.client_subnet(node)),
        gateway=False,
    )
    return json.dumps(document.to_json(), indent=2).encode() + b"\n"


def server_command(folder: Path, node: str) -> Command:
    """start-stop-daemon argv of the document server of ``node``."""
    return supervisor.start_daemon(
        pidfile=str(folder / PID_FILE),
        program=PYTHON,
        args=(
            "-m",
            "http.server",
            str(HTTP_PORT),
            "--bind",
            str(plan.mesh_address(node)),
            "--directory",
            str(folder / DOCUMENT_FOLDER),
        ),
        user=SERVER_USER,
        group=SERVER_GROUP,
        chdir=str(folder),
        output=str(folder / LOG_FILE),
    )


def serve_documents(lab: Lab, spec: LabSpec, *, managed: str) -> list[str]:
    """Write and serve the document of every node but ``managed``; returns
    the nodes that serve one."""
    serving = []
    for node in spec.node_names:
        if node == managed:
            continue
        folder = lab.folder(node)
        target = folder / DOCUMENT_FOLDER / DOCUMENT_PATH
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(document_bytes(node))
        runner = lab.node_host(node).runner
        runner.run(netns.sysctl_set("net.ipv4.ip_unprivileged_port_start", HTTP_PORT))
        runner.run(server_command(folder, node))
        serving.append(node)
    return serving
