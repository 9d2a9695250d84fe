"""A real redis-server (and a real job worker) for the job tests.

``redis_server`` starts ``redis-server`` on a private Unix socket in a
temporary folder (no TCP port, no persistence), points the settings at it
and always stops it. ``WorkerProcess`` runs ``manage.py rqworker privileged``
as a subprocess against the test database file and that Redis, the way
``make run`` does, with the test-only job kinds switched on.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from redis import Redis

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RedisServer:
    """A running redis-server we started."""

    folder: Path
    socket: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self) -> None:
        redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                redis_server,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.socket.exists():
                try:
                    if Redis(unix_socket_path=str(self.socket)).ping():
                        return
                except Exception:
                    pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        try:
            self.socket.unlink()
        except FileNotFoundError:
            pass

    def client(self) -> Redis:
        return Redis(unix_socket_path=str(self.socket))


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for one test module, always stopped."""
    folder = Path(tempfile.mkdtemp(prefix="byz-redis-"))
    server = RedisServer(folder=folder, socket=folder / "redis.sock")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def use_redis(redis_server: RedisServer, settings) -> Iterator[RedisServer]:  # type: ignore[no-untyped-def]
    """Point the settings at the private Redis and start from an empty one."""
    from portal.jobqueue import health

    queues = {
        name: {**config, "URL": redis_server.url}
        for name, config in settings.RQ_QUEUES.items()
    }
    settings.RQ_QUEUES = queues
    settings.REDIS_URL = redis_server.url
    redis_server.client().flushall()
    health.clear_cache()
    yield redis_server
    health.clear_cache()


class WorkerProcess:
    """``manage.py rqworker privileged`` as a subprocess, as make run starts it."""

    def __init__(self, redis: RedisServer, workdir: Path, *extra: str) -> None:
        self.redis = redis
        self.workdir = workdir
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "worker.log"

    def environment(self) -> dict[str, str]:
        database = settings.DATABASES["default"]
        config = self.workdir / "portal.toml"
        config.write_text(
            "[database]\n"
            f'ENGINE = "{database["ENGINE"]}"\n'
            f'NAME = "{database["NAME"]}"\n'
            "[database.OPTIONS]\n"
            "timeout = 20\n"
            'init_command = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"\n'
            'transaction_mode = "IMMEDIATE"\n'
        )
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="portal.settings.test",
            BYZANTIUM_CONFIG=str(config),
            BYZANTIUM_REDIS_URL=self.redis.url,
            BYZANTIUM_STATE_DIR=str(settings.STATE_DIR),
            BYZANTIUM_FILES_ROOT=str(self.workdir / "root"),
            BYZANTIUM_HOST_MODE="dry-run",
            BYZANTIUM_TEST_JOBS="1",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self) -> WorkerProcess:
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "manage.py"),
                "rqworker",
                "privileged",
                "--with-scheduler",
                *self.extra,
            ],
            cwd=REPO,
            env=self.environment(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the worker's whole process group (worker and scheduler)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # The scheduler child may outlive a SIGKILLed parent briefly.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process = None
        self.log.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
