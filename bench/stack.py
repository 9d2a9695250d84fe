"""A whole node for the benchmark, in a temporary state folder.

What ``make run`` starts, started the way it starts it: Redis on a private
Unix socket, the RQ worker with its scheduler, gunicorn with
``deploy/gunicorn.conf.py``, each by :class:`portal.management.commands.
runnode.Supervisor` itself (same users, umask, environment, interpreter),
and, as root, a lab of the same size as ``make run``'s under a bench-only
prefix, so the worker samples a live node and the dashboard shows real
interfaces and babel neighbours. Nothing of the operator's own ``var/`` is
read or written.

For wrk, which speaks TCP only, two more gunicorns listen on loopback ports
with the same configuration file: one serves the portal, the other the
static baseline (:mod:`bench.static_app`).

Everything started here is stopped by :meth:`BenchNode.close`, which the
caller runs in a ``finally``; every child also gets SIGTERM from the kernel
if this process dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from portal.config import REPO_DIR, PortalConfig
from portal.management.commands import runnode
from portal.management.commands.runnode import (
    Accounts,
    Layout,
    Supervisor,
    ensure_web_user,
    prepare_filesystem,
)

ADMIN_USERNAME = "benchadmin"
NODE_NAME = "Bench node"
JOBS = 200
ROUTINE_JOBS = 100
READY_SECONDS = 60.0
PR_SET_PDEATHSIG = 1

# Kinds the other apps will register; unknown kinds are shown by name, which
# renders the same way as a titled kind.
JOB_KINDS = (
    "meshnet.apply_mesh",
    "meshnet.apply_dhcp",
    "services.activate",
    "services.deactivate",
    "gateway.apply_uplink",
    "captive.accept_client",
)


def _die_with_parent() -> None:
    """In the child: SIGTERM from the kernel if the bench process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send this process's stdout and stderr, and so those of every child
    started meanwhile, to ``log``: the daemons' chatter (a worker line per
    sampled status) would bury the bench's own report on the console."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def log_tail(log: Path, lines: int = 30) -> str:
    """The last lines of a log, to show why something did not start."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _command_entry(argv: list[str], output: str, at: str) -> dict[str, Any]:
    return {
        "type": "command",
        "at": at,
        "argv": argv,
        "namespace": "byz-n1",
        "returncode": 0,
        "stdout": output,
        "stderr": "",
        "duration": round(random.uniform(0.002, 0.2), 3),  # noqa: S311
        "timed_out": False,
        "truncated": False,
    }


def job_log(kind: str, at: str, failed: bool) -> list[dict[str, Any]]:
    """A log shaped like a real job's: a few commands with output, a note."""
    address_json = (
        '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"addr_info":'
        '[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},'
        '{"ifindex":4,"ifname":"br-lan","flags":["UP"],"addr_info":'
        '[{"family":"inet","local":"10.213.1.1","prefixlen":24}]}]'
    )
    entries = [
        {"type": "note", "at": at, "text": f"{kind}: rendering configuration"},
        {
            "type": "write",
            "at": at,
            "path": "/etc/byzantium/generated.conf",
            "bytes": 812,
            "sha256": uuid.uuid4().hex * 2,
        },
        _command_entry(["ip", "-j", "address", "show"], address_json, at),
        _command_entry(["nft", "-c", "-f", "/etc/byzantium/nft.conf"], "", at),
        _command_entry(["ip", "link", "set", "dev", "br-lan", "up"], "", at),
        _command_entry(["babeld", "-V"], "babeld-1.12.1\n", at),
    ]
    if failed:
        entries.append(
            {"type": "error", "at": at, "text": "dnsmasq --test: syntax error line 4"}
        )
    return entries


@dataclass
class Server:
    """A gunicorn this module started itself (not through the supervisor)."""

    name: str
    process: subprocess.Popen[bytes]
    port: int


@dataclass
class BenchNode:
    """The node under test: state, data, daemons, and the servers for wrk."""

    say: Callable[[str], None]
    with_lab: bool
    log: Path
    config: PortalConfig = field(init=False)
    layout: Layout = field(init=False)
    accounts: Accounts = field(init=False)
    supervisor: Supervisor | None = field(default=None, init=False)
    lab: Any = field(default=None, init=False)
    servers: list[Server] = field(default_factory=list, init=False)
    admin_password: str = field(default="", init=False)
    lab_converged_after: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.config = settings.PORTAL
        self.layout = Layout.from_settings()
        self.accounts = Accounts.for_config(self.config)

    # -- state --------------------------------------------------------------

    def prepare_state(self) -> dict[str, Any]:
        """Migrate, complete setup through its real service, add the data."""
        from portal import access

        self.layout.db_dir.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        secret = access.issue_setup_secret()
        if secret is None:
            raise RuntimeError("a fresh state folder already has setup done")
        self.admin_password = uuid.uuid4().hex
        user = access.complete_setup(
            proof=access.secret_proof(secret),
            username=ADMIN_USERNAME,
            password=self.admin_password,
            node_name=NODE_NAME,
            language="en",
        )
        jobs = self._seed_jobs(user)
        return {"jobs": jobs, "routine_jobs": ROUTINE_JOBS}

    def _seed_jobs(self, user: Any) -> int:
        from portal.models import Job

        rng = random.Random(2)  # noqa: S311 - same data every run
        now = timezone.now()
        rows = []
        for index in range(JOBS + ROUTINE_JOBS):
            routine = index >= JOBS
            kind = "portal.sample_status" if routine else rng.choice(JOB_KINDS)
            created = now - timedelta(minutes=index * (1 if routine else 20))
            failed = not routine and rng.random() < 0.1
            at = created.isoformat()
            rows.append(
                Job(
                    kind=kind,
                    arguments={} if routine else {"id": rng.randint(1, 40)},
                    status="failed" if failed else "completed",
                    user=None if routine else user,
                    started=created + timedelta(milliseconds=40),
                    finished=created + timedelta(seconds=rng.uniform(0.2, 6)),
                    log=job_log(kind, at, failed),
                    error="dnsmasq --test: syntax error line 4" if failed else "",
                    routine=routine,
                )
            )
        Job.objects.bulk_create(rows)
        # auto_now_add filled "created" with now; spread the history out.
        for row, index in zip(rows, range(len(rows)), strict=True):
            routine = index >= JOBS
            row.created = now - timedelta(minutes=index * (1 if routine else 20))
        Job.objects.bulk_update(rows, ["created"])
        return JOBS

    def store_snapshot(self) -> dict[str, Any]:
        """Collect and store a status snapshot, as the worker's job does."""
        from portal.host.node import current_host
        from portal.models import NodeStatus
        from portal.status import collect_status

        data = collect_status(current_host(), babel_socket=settings.BABELD_SOCKET)
        NodeStatus.store(data)
        babel = data.get("babel") or {}
        return {
            "host_mode": data.get("host_mode"),
            "interfaces": len(data.get("interfaces") or []),
            "babel_neighbours": len(babel.get("neighbours") or []),
        }

    # -- daemons ------------------------------------------------------------

    def start_lab(self) -> dict[str, Any]:
        """The lab ``make run`` starts, under this run's bench prefix."""
        from portal.lab import Lab, LabSpec

        spec = LabSpec(nodes=self.config.lab_nodes, clients=self.config.lab_clients)
        self.lab = Lab(
            prefix=self.config.lab_prefix,
            base_dir=self.config.lab_dir,
            owner_pid=os.getpid(),
        )
        self.say(f"  lab {self.config.lab_prefix}: {spec.nodes} nodes, up...")
        self.lab.up(spec)
        self.lab_converged_after = self.lab.wait_converged(timeout=120, spec=spec)
        return {
            "prefix": self.config.lab_prefix,
            "nodes": spec.nodes,
            "clients": spec.clients,
            "converged_after_seconds": round(self.lab_converged_after, 2),
        }

    def start_daemons(self) -> None:
        """Redis, worker and web exactly as ``manage.py runnode`` starts them."""
        connections.close_all()
        supervisor = Supervisor(
            config=self.config,
            layout=self.layout,
            accounts=self.accounts,
            say=lambda line: self.say(f"  {line}"),
            with_lab=False,
        )
        self.supervisor = supervisor
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        with output_to(self.log):
            supervisor.clean_stale()
            if self.accounts.privileged:
                ensure_web_user(self.accounts.web.name or "")
            prepare_filesystem(self.layout, self.accounts)
            supervisor.check_web_can_reach_code()
            supervisor.write_configs()
            supervisor.start_redis()
            supervisor.start_worker()
            supervisor.start_web()
        started = ", ".join(f"{k} {v}" for k, v in self.child_pids().items())
        self.say(f"  started (pids): {started}; their output: {self.log}")

    def child_pids(self) -> dict[str, int]:
        """The supervisor's children by component: web, worker, redis."""
        names = {"gunicorn": "web", "rq worker": "worker", "redis-server": "redis"}
        found = {}
        for child in self.supervisor.children if self.supervisor else []:
            if child.name in names:
                found[names[child.name]] = child.process.pid
        return found

    def unix_connection(self) -> http.client.HTTPConnection:
        from bench.web import UnixHTTPConnection

        return UnixHTTPConnection(self.layout.web_socket)

    def _environment(self, home: Path, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": runnode.SYSTEM_PATH,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(home),
            "DJANGO_SETTINGS_MODULE": runnode.SETTINGS_MODULE,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update({k: v for k, v in os.environ.items() if k.startswith("BYZANTIUM_")})
        env.update(extra)
        return env

    def start_gunicorn(
        self, name: str, app: str, *, extra_env: dict[str, str] | None = None
    ) -> Server:
        """gunicorn with ``deploy/gunicorn.conf.py`` on a loopback port."""
        if self.supervisor is None:
            raise RuntimeError("start_daemons() first")
        with output_to(self.log):
            python, python_env = self.supervisor.web_interpreter()
        port = free_port()
        argv = [
            *python,
            "-m",
            "gunicorn",
            "--config",
            str(runnode.DEPLOY_DIR / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--name",
            f"byzantium-bench-{name}",
            app,
        ]
        with output_to(self.log):
            process = self._popen(argv, python_env, extra_env)
        server = Server(name, process, port)
        self.servers.append(server)
        self._wait_answering(server)
        self.say(f"  started gunicorn {name} (pid {process.pid}) on port {port}")
        return server

    def _popen(
        self,
        argv: list[str],
        python_env: dict[str, str],
        extra_env: dict[str, str] | None,
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            cwd=REPO_DIR,
            env=self._environment(
                self.layout.web_dir, {**python_env, **(extra_env or {})}
            ),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            umask=0o027,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
            **self.accounts.web.popen_kwargs(),
        )

    def _wait_answering(self, server: Server) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn {server.name} exited with {server.process.returncode}"
                )
            try:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", server.port, timeout=5
                )
                connection.request("GET", "/")
                status = connection.getresponse().status
                connection.close()
                if status < 500:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {server.name} did not answer on {server.port}")

    # -- stopping -----------------------------------------------------------

    def _stop_server(self, server: Server) -> None:
        process = server.process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()

    def close(self) -> None:
        """Stop everything this node started, in reverse order; never raises."""
        previous = {
            sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for server in reversed(self.servers):
                self._stop_server(server)
            self.servers.clear()
            if self.supervisor is not None:
                with output_to(self.log):
                    self.supervisor.stop()  # sets both signals to SIG_IGN itself
                self.supervisor = None
            if self.lab is not None:
                self.say(f"  lab {self.lab.prefix}: down")
                self.lab.down()
                self.lab = None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            connections.close_all()
