"""The real captive portal in a lab node: test and benchmark equipment.

What ``make run`` runs, in lab host mode for one lab: the real worker (its
captive lane included), gunicorn on a Unix socket and nginx *inside* the
node's namespace from the configuration ``runnode`` renders
(:func:`~portal.management.commands.runnode.render_nginx_conf` with
``lab_node=True``). ``captive/tests/test_portal_lab.py`` drives it from a
client namespace; ``bench/captive_portal.py`` measures it the same way.

Like :mod:`captive.firewall_lab`, this starts its programs itself
(``subprocess``) and stops them in :meth:`RealPortal.stop`; it is not
portal code and nothing of the portal imports it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from portal.config import REPO_DIR, PortalConfig
from portal.management.commands import runnode
from portal.tests.redis_fixture import WorkerProcess

NODE = "10.213.1.1"
HELD_PORT = 8081


class LabWorker(WorkerProcess):
    """The worker as ``make run`` starts it in lab host mode for ``prefix``."""

    def __init__(self, redis: Any, workdir: Path, prefix: str) -> None:
        super().__init__(redis, workdir)
        self.prefix = prefix

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.pop("BYZANTIUM_FILES_ROOT", None)
        env.pop("BYZANTIUM_TEST_JOBS", None)
        env.update(
            BYZANTIUM_HOST_MODE="lab",
            BYZANTIUM_LAB_PREFIX=self.prefix,
            DJANGO_SETTINGS_MODULE="captive.tests.behind_nginx_settings",
        )
        return env


@dataclasses.dataclass
class RealPortal:
    """Worker, gunicorn and the lab node's nginx; each can be restarted.

    ``node_gunicorn`` runs gunicorn with ``deploy/gunicorn.conf.py`` (one
    gthread process, as on a node) for the benchmark; the tests use two
    plain sync workers.
    """

    lab: Any
    redis: Any
    workdir: Path
    node_gunicorn: bool = False
    worker: LabWorker | None = None
    web: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def layout(self) -> runnode.Layout:
        state = self.workdir / "state"
        return runnode.Layout(
            state_dir=state,
            run_dir=self.workdir / "run",
            log_dir=state / "log",
            static_root=state / "static",
            db_dir=state / "db",
            secret_key=state / "secret_key",
            tls_cert=state / "tls" / "portal.crt",
            tls_key=state / "tls" / "portal.key",
        )

    @property
    def socket(self) -> Path:
        return self.layout.web_socket

    def start_worker(self) -> None:
        self.worker = LabWorker(self.redis, self.workdir, self.lab.prefix).start()

    def start_web(self) -> None:
        assert self.worker is not None
        env = self.worker.environment()
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        log = open(self.workdir / "web.log", "ab")  # noqa: SIM115
        if self.node_gunicorn:
            options = ["--config", str(runnode.DEPLOY_DIR / "gunicorn.conf.py")]
        else:
            options = ["--workers", "2", "portal.wsgi:application"]
        self.web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"unix:{self.socket}",
                *options,
            ],
            cwd=REPO_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.socket.exists, 30, "gunicorn's socket")

    def start_nginx(self) -> None:
        layout = self.layout
        state = layout.state_dir
        for folder in (layout.lab_nginx_tmp, layout.log_dir, layout.static_root):
            folder.mkdir(parents=True, exist_ok=True)
        layout.tls_cert.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=lab", "-keyout", str(layout.tls_key),
                "-out", str(layout.tls_cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        config = PortalConfig(state_dir=state, host_mode="lab")
        accounts = dataclasses.replace(
            runnode.Accounts.for_config(config),
            nginx_workers=runnode.Account("root", "root"),
        )
        layout.lab_nginx_conf.write_text(
            runnode.render_nginx_conf(layout, config, accounts, lab_node=True)
        )
        self.nginx = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.lab.namespace("n1"),
                "nginx",
                "-p",
                f"{layout.lab_nginx_dir}/",
                "-e",
                "stderr",
                "-c",
                str(layout.lab_nginx_conf),
            ],  # fmt: skip
            stderr=open(self.workdir / "nginx.log", "ab"),  # noqa: SIM115
            start_new_session=True,
        )

    def stop_web_and_worker(self) -> None:
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, 15)
            self.web.wait(20)
        self.web = None
        if self.worker is not None:
            self.worker.stop()
        self.worker = None

    def stop(self) -> None:
        self.stop_web_and_worker()
        if self.nginx is not None and self.nginx.poll() is None:
            os.killpg(self.nginx.pid, 15)
            self.nginx.wait(10)

    def log(self) -> str:
        worker = self.worker.output() if self.worker else ""
        web = (self.workdir / "web.log").read_text(errors="replace")
        return f"worker:\n{worker[-3000:]}\nweb:\n{web[-2000:]}"


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not in {timeout} s")


def seed_database(
    lab: Any, *, session_timeout: int = 3600, idle_timeout: int = 600
) -> None:
    """The portal's data for lab node n1: its mesh settings, the portal on."""
    from captive.models import CaptiveSettings, PortalInterface
    from meshnet.models import MeshInterface, MeshSettings

    state = lab.node_state("n1")
    mesh = MeshSettings.load()
    mesh.mesh_address = state.mesh_address
    mesh.client_subnet = state.client_subnet
    mesh.save()
    for interface in state.interfaces:
        MeshInterface.objects.create(
            name=interface.name, role=interface.role, medium=interface.medium
        )
    row = CaptiveSettings.load()
    row.session_timeout, row.idle_timeout = session_timeout, idle_timeout
    row.uplink_online = False
    row.save()
    PortalInterface.objects.create(name="br-lan", enabled=True)
