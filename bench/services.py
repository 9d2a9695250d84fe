"""Services benchmark: switch-on to healthy, and each daemon's memory.

One lab node (prefix ``bns``, bench-only) runs the real catalogue services
the lab tests use (:data:`SERVICES`) through the framework's own job
bodies, exactly as ``services/tests/test_real_services.py`` does: the
portal's host is the node's namespace runner and file root, its network the
lab node's addresses, its certificate a fresh EC P-256 one like
``portal_init`` makes.

Per repetition, for each service in turn (off before, off after):

- ``healthy_seconds``: from the call of ``request_activation`` (what the
  panel does when the operator presses "Switch on") until the health check
  of the activation job passed (the moment the framework calls the service
  running). It includes rendering the configs and the daemon's own check
  mode (``prosodyctl check config``, ``ngircd --configtest`` ...), the
  firewall table and the start; not the queue (the job body is called
  directly, as the worker would).
- ``job_seconds``: the whole activation job, announcement included (the
  mDNS responder is started for the first service that has a DNS-SD type).
- memory, after ``SETTLE_SECONDS`` idle: RSS and PSS from
  ``/proc/PID/smaps_rollup`` of each daemon's process tree (the pid file
  the supervisor keeps), summed over the service's daemons.

Medians over the repetitions. The lab is torn down in a ``finally``; a lab
left by a killed run is removed by the next :meth:`portal.lab.Lab.up`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.stats import median

SERVICES_LAB_PREFIX = "bns"
# What the lab tests switch on: chat, voice, XMPP, Icecast, the library,
# the web chat (after xmpp: it pulls xmpp in, and the figures are its own
# nginx; xmpp is switched off again after each of its runs).
SERVICES = ("ircd", "voice", "xmpp", "stream", "library", "webchat")
REPETITIONS = 3
SETTLE_SECONDS = 2.0
MIB = 1024 * 1024

Say = Callable[[str], None]


def node_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key like ``portal_init`` makes (EC P-256)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "portal.crt", folder / "portal.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=n1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


class Patched:
    """The services app pointed at lab node n1 for the section's length."""

    def __init__(self, lab: Any, certificate: tuple[Path, Path]) -> None:
        from services import announce, components, services
        from services.context import NodeNetwork

        network = NodeNetwork.from_mesh_state(lab.node_state("n1"))
        self.changes = [
            (services, "current_host", lambda: lab.node_host("n1")),
            (services, "node_network", lambda: network),
            (announce, "_network", lambda: network),
            (components, "node_tls_source", lambda: certificate),
        ]
        self.saved: list[tuple[Any, str, Any]] = []
        self.healthy_at: float | None = None
        original_on = components.HealthCheckComponent.on
        bench = self

        def timed_on(component: Any, context: Any) -> None:
            original_on(component, context)
            bench.healthy_at = time.monotonic()

        self.changes.append((components.HealthCheckComponent, "on", timed_on))

    def __enter__(self) -> Patched:
        for owner, name, value in self.changes:
            self.saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, value)
        return self

    def __exit__(self, *_exc: object) -> None:
        while self.saved:
            owner, name, value = self.saved.pop()
            setattr(owner, name, value)


def daemon_memory(lab: Any, service_id: str) -> dict[str, Any]:
    """RSS and PSS of every daemon of the service (process trees), in MB."""
    from bench.memory import component_memory
    from services.catalogue import catalogue

    entry = catalogue().get(service_id)
    rss = pss = 0
    processes = 0
    for daemon in entry.daemons:
        pidfile = lab.node_path(
            "n1", f"/run/byzantium/services/{service_id}/supervised-{daemon.name}.pid"
        )
        memory = component_memory(daemon.name, int(pidfile.read_text().strip()))
        rss, pss = rss + memory.rss, pss + memory.pss
        processes += len(memory.processes)
    return {
        "rss_mb": round(rss / MIB, 1),
        "pss_mb": round(pss / MIB, 1),
        "processes": processes,
    }


def time_switch_on(lab: Any, patched: Patched, service_id: str) -> dict[str, Any]:
    """One repetition of one service: on, settle, memory, off (always).

    Services it pulled in (dependencies) go off after it, so the next run
    of each starts from off too. ``healthy_at`` is the last health check
    passed: the service's own, which comes after its dependencies'.
    """
    from services import services
    from services.models import ServiceState

    was_on = set(
        ServiceState.objects.filter(enabled=True).values_list("service_id", flat=True)
    )
    patched.healthy_at = None
    try:
        started = time.monotonic()
        services.request_activation(service_id=service_id)
        services.activate_service(service_id=service_id)
        finished = time.monotonic()
        if patched.healthy_at is None:
            raise RuntimeError(f"{service_id}: no health check passed")
        time.sleep(SETTLE_SECONDS)
        return {
            "healthy_seconds": round(patched.healthy_at - started, 3),
            "job_seconds": round(finished - started, 3),
            **daemon_memory(lab, service_id),
            "error": None,
        }
    except Exception as error:  # noqa: BLE001 - recorded, the next run goes on
        return {"error": str(error)[:500]}
    finally:
        services.request_deactivation(service_id=service_id)
        services.deactivate_service(service_id=service_id)
        pulled_in = ServiceState.objects.filter(enabled=True).exclude(
            service_id__in=was_on
        )
        for other in pulled_in.values_list("service_id", flat=True):
            services.request_deactivation(service_id=other)
            services.deactivate_service(service_id=other)


def summarise(service_id: str, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians (and the worst switch-on) over the runs that became healthy."""
    good = [run for run in runs if not run.get("error")]
    healthy = [run["healthy_seconds"] for run in good]
    return {
        "service": service_id,
        "repetitions": len(runs),
        "healthy": len(good),
        "healthy_seconds_median": median(healthy),
        "healthy_seconds_max": max(healthy) if healthy else None,
        "job_seconds_median": median(run["job_seconds"] for run in good),
        "rss_mb_median": median(run["rss_mb"] for run in good),
        "pss_mb_median": median(run["pss_mb"] for run in good),
        "processes": max((run["processes"] for run in good), default=0),
        "errors": [run["error"] for run in runs if run.get("error")],
        "runs": list(runs),
    }


def run_services(
    base_dir: Path,
    *,
    services: Sequence[str] = SERVICES,
    repetitions: int = REPETITIONS,
    prefix: str = SERVICES_LAB_PREFIX,
    say: Say = print,
) -> dict[str, Any]:
    """Every service ``repetitions`` times, interleaved; the lab down after."""
    from bench.meshnet import ensure_database
    from portal.lab import Lab, LabSpec

    lab = Lab(prefix=prefix, base_dir=base_dir, owner_pid=os.getpid())
    runs: dict[str, list[dict[str, Any]]] = {service: [] for service in services}
    try:
        ensure_database()
        spec = LabSpec(nodes=1, clients=0)
        lab.up(spec)
        lab.wait_converged(timeout=60, spec=spec)
        certificate = node_certificate(base_dir / "tls")
        with Patched(lab, certificate) as patched:
            for repetition in range(1, repetitions + 1):
                for service in services:
                    run = time_switch_on(lab, patched, service)
                    runs[service].append(run)
                    shown = run["error"] or (
                        f"healthy {run['healthy_seconds']:.2f} s, "
                        f"RSS {run['rss_mb']} MB, PSS {run['pss_mb']} MB"
                    )
                    say(f"  {service} #{repetition}: {shown}")
    finally:
        lab.down()
    return {
        "repetitions": repetitions,
        "settle_seconds": SETTLE_SECONDS,
        "services": [summarise(service, runs[service]) for service in services],
    }


def services_failures(results: dict[str, Any] | None) -> list[str]:
    """Services that did not always become healthy."""
    return [
        f"service {row['service']} healthy {row['healthy']}/{row['repetitions']}"
        for row in (results or {}).get("services", [])
        if row["healthy"] != row["repetitions"]
    ]


def render_services(results: dict[str, Any] | None) -> str:
    """The table ``bench.run`` prints for this section."""
    from bench.stats import fmt, table

    if not results:
        return ""
    rows = [
        [
            row["service"],
            f"{row['healthy']}/{row['repetitions']}",
            fmt(row["healthy_seconds_median"], 2),
            fmt(row["healthy_seconds_max"], 2),
            fmt(row["job_seconds_median"], 2),
            fmt(row["rss_mb_median"]),
            fmt(row["pss_mb_median"]),
        ]
        for row in results.get("services", [])
    ]
    return "\n".join(
        [
            "\nServices: switch on to healthy (seconds), daemon memory (MB)",
            table(
                ["service", "ok", "healthy med", "max", "job med", "RSS", "PSS"],
                rows,
            ),
        ]
    )
