"""Health checks: does the service answer where clients will reach it?

A check connects to the service's own client address (TCP, or HTTP with an
expected status) or asks the supervisor whether its daemons run. In the lab
the node is a network namespace; the socket is created *inside* it by a
short-lived thread that joins the namespace (``setns``) first, since a
socket keeps the namespace it was created in. No command is run, so a check
costs a connect, not a process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import http.client
import os
import socket
import threading
import time
from dataclasses import dataclass

from django.utils.translation import gettext as _

from portal.host.runner import NETNS_RUN_DIR

from .context import ServiceContext

CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class HealthResult:
    """One check: passed or not, and a line for the operator."""

    ok: bool
    message: str


def _setns(namespace: str) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(NETNS_RUN_DIR / namespace, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    finally:
        os.close(fd)


def namespace_socket(namespace: str | None) -> socket.socket:
    """A TCP socket in ``namespace`` (None: this process's own)."""
    if namespace is None:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    box: dict[str, object] = {}

    def make() -> None:
        try:
            _setns(namespace)
            box["socket"] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as error:
            box["error"] = error

    thread = threading.Thread(target=make, name="netns-socket")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["socket"]  # type: ignore[return-value]


def connect(namespace: str | None, address: str, port: int, timeout: float):
    """A connected TCP socket, or OSError."""
    sock = namespace_socket(namespace)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def _address(context: ServiceContext) -> str:
    return (
        context.network.client_addresses
        or context.network.mesh_addresses
        or ("127.0.0.1",)
    )[0]


def check_health(context: ServiceContext, supervisor) -> HealthResult:  # type: ignore[no-untyped-def]
    """Run the entry's check once."""
    entry = context.entry
    health = entry.health
    for daemon in entry.daemons:
        if not supervisor.is_running(context, daemon):
            return HealthResult(
                False, _("The program %(name)s is not running.") % {"name": daemon.name}
            )
    if health.kind == "process":
        return HealthResult(True, _("Its programs are running."))
    port = entry.port(health.port).port
    address = _address(context)
    try:
        sock = connect(context.host.namespace, address, port, health.timeout)
    except OSError as error:
        return HealthResult(
            False,
            _("Nothing answers on %(address)s port %(port)d (%(error)s).")
            % {"address": address, "port": port, "error": error.strerror or error},
        )
    if health.kind == "tcp":
        sock.close()
        return HealthResult(
            True,
            _("It answers on %(address)s port %(port)d.")
            % {"address": address, "port": port},
        )
    connection = http.client.HTTPConnection(address, port, timeout=health.timeout)
    connection.sock = sock
    try:
        connection.request("GET", health.path, headers={"Host": address})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        return HealthResult(
            False, _("Its web page does not answer (%(error)s).") % {"error": error}
        )
    finally:
        connection.close()
    if status not in health.expect_status:
        return HealthResult(
            False,
            _("Its web page answers with status %(status)d.") % {"status": status},
        )
    return HealthResult(
        True, _("Its web page answers (status %(status)d).") % {"status": status}
    )


# How long a just-started daemon may take to show up in its pid file.
EXIT_GRACE_SECONDS = 0.5


def wait_healthy(
    context: ServiceContext,
    supervisor,
    timeout: float | None = None,  # type: ignore[no-untyped-def]
) -> HealthResult:
    """Check until it passes or ``ready_timeout`` runs out (last result).

    A daemon that exits while starting (its port taken, a config it
    refuses) fails at once instead of after the whole timeout: the worker
    is not held up, and the operator reads why sooner.
    """
    started = time.monotonic()
    deadline = started + (timeout or context.entry.ready_timeout)
    while True:
        result = check_health(context, supervisor)
        now = time.monotonic()
        if result.ok or now >= deadline:
            return result
        if now - started >= EXIT_GRACE_SECONDS and not all(
            supervisor.is_running(context, daemon) for daemon in context.entry.daemons
        ):
            return HealthResult(
                False,
                _("It stopped while starting (%(reason)s)")
                % {"reason": result.message},
            )
        time.sleep(0.2)
