"""``manage.py runnode``: the foreground supervisor that ``make run`` ends in.

It starts, in this order, everything a node needs and waits until each piece
really answers before starting the next:

1. ``redis-server`` (the job queue) on a private Unix socket, as the
   ``redis`` user, from ``deploy/redis.conf.tmpl``;
2. the lab (``manage.py lab up``) when ``host_mode`` is ``lab``: node ``n1``
   is the node this portal manages, meshed with its neighbours;
3. the RQ worker with its scheduler, as root: the only process that changes
   the system (its captive lane, a thread of the same process, runs a
   phone's tap on Continue beside a long mesh apply: ``captive.lane``);
4. gunicorn (``portal.wsgi``) on a Unix socket, as the unprivileged web user;
5. nginx on the HTTP and HTTPS ports, from ``deploy/nginx.conf.tmpl``;
6. in ``lab`` host mode, a second nginx *inside* the lab node the portal
   manages (``ip netns exec <prefix>-n1``), listening on ports 80 and 443
   (and the configured ports) on every address of that node, proxying to
   the same gunicorn Unix socket (a Unix socket works across network
   namespaces) with the same headers. So the lab's other nodes and its
   clients reach the real portal and its ``/api/v1/node`` as they would on
   a real node; the first nginx stays on loopback for the developer.

Then it prints the addresses, the certificate's fingerprint and how to log in
the first time. SIGINT (Ctrl-C) or SIGTERM stops everything in reverse
order, ``lab down`` included; a child that dies on its own is reported and
everything else is stopped, with a non-zero exit status.

Why not the host layer's runners: those run short commands to completion
with a timeout and capture their output for a job log. These are long-lived
daemons whose output belongs on the operator's console, so they are started
with :class:`subprocess.Popen` directly, still with an argv (never a shell),
an explicit environment, and the user each one runs as. Every child gets its
own session, so Ctrl-C in the terminal reaches only this supervisor, which
then stops the children in order; and each child is told by the kernel to
stop if the supervisor itself is killed (``PR_SET_PDEATHSIG``).

On a real node systemd plays this role (``deploy/systemd/``);
``runnode --render-configs`` writes the same configuration files and fixes
the same permissions for those units, and starts nothing.
"""

from __future__ import annotations

import ctypes
import grp
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template import Context, Engine
from django.utils import translation
from django.utils.translation import gettext as _

from portal.config import REPO_DIR, PortalConfig

DEPLOY_DIR = REPO_DIR / "deploy"
SETTINGS_MODULE = "portal.settings.dev"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NGINX = "nginx"
REDIS_SERVER = "redis-server"
REDIS_USER = "redis"
NGINX_WORKER_USER = "www-data"
REDIS_MAXMEMORY = "32mb"
QUEUE_NAME = "privileged"

# How long each piece may take to answer before start-up gives up.
REDIS_READY_SECONDS = 15.0
WORKER_READY_SECONDS = 60.0
WEB_READY_SECONDS = 60.0
NGINX_READY_SECONDS = 15.0
LAB_UP_SECONDS = 600.0
LAB_DOWN_SECONDS = 180.0
# Ports the nginx inside the lab node listens on, besides the configured ones.
LAB_NODE_HTTP_PORT = 80
LAB_NODE_HTTPS_PORT = 443

PR_SET_PDEATHSIG = 1


class StartupError(Exception):
    """A piece did not come up; the message says which and why."""


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived while something was still starting."""


def _die_with_parent() -> None:
    """Ask the kernel to send SIGTERM to this child if the supervisor dies.

    Runs in the child between fork and exec, after the user switch (the
    kernel clears the setting on a credential change, so it must come last).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def cert_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as browsers show it: ``AB:CD:...``."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def cert_file_fingerprint(path: Path) -> str:
    """Fingerprint of the first certificate in a PEM file."""
    return cert_fingerprint(ssl.PEM_cert_to_DER_cert(path.read_text()))


@dataclass(frozen=True)
class Layout:
    """Every path the supervisor reads or writes, derived from the config.

    Sockets and pid files are under ``<state>/run`` (removed and recreated on
    every start), data that must survive a restart under ``<state>``.
    """

    state_dir: Path
    run_dir: Path
    log_dir: Path
    static_root: Path
    db_dir: Path
    secret_key: Path
    tls_cert: Path
    tls_key: Path

    @classmethod
    def from_settings(cls) -> Layout:
        config: PortalConfig = settings.PORTAL
        return cls(
            state_dir=config.state_dir,
            run_dir=config.run_dir,
            log_dir=config.state_dir / "log",
            static_root=Path(settings.STATIC_ROOT),
            db_dir=config.state_dir / "db",
            secret_key=config.state_dir / "secret_key",
            tls_cert=config.state_dir / "tls" / "portal.crt",
            tls_key=config.state_dir / "tls" / "portal.key",
        )

    @property
    def supervisor_pid(self) -> Path:
        return self.run_dir / "runnode.pid"

    @property
    def redis_dir(self) -> Path:
        return self.run_dir / "redis"

    @property
    def redis_socket(self) -> Path:
        return self.redis_dir / "redis.sock"

    @property
    def redis_pid(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def redis_conf(self) -> Path:
        return self.run_dir / "redis.conf"

    @property
    def redis_data(self) -> Path:
        return self.state_dir / "redis"

    @property
    def worker_pid(self) -> Path:
        return self.run_dir / "worker.pid"

    @property
    def web_dir(self) -> Path:
        return self.run_dir / "web"

    @property
    def web_socket(self) -> Path:
        return self.web_dir / "gunicorn.sock"

    @property
    def web_pid(self) -> Path:
        return self.web_dir / "gunicorn.pid"

    @property
    def nginx_dir(self) -> Path:
        return self.run_dir / "nginx"

    @property
    def nginx_conf(self) -> Path:
        return self.nginx_dir / "nginx.conf"

    @property
    def nginx_pid(self) -> Path:
        return self.nginx_dir / "nginx.pid"

    @property
    def nginx_tmp(self) -> Path:
        return self.nginx_dir / "tmp"

    @property
    def lab_nginx_dir(self) -> Path:
        """The nginx inside the managed lab node (lab host mode only)."""
        return self.run_dir / "nginx-lab"

    @property
    def lab_nginx_conf(self) -> Path:
        return self.lab_nginx_dir / "nginx.conf"

    @property
    def lab_nginx_pid(self) -> Path:
        return self.lab_nginx_dir / "nginx.pid"

    @property
    def lab_nginx_tmp(self) -> Path:
        return self.lab_nginx_dir / "tmp"

    def pid_files(self) -> dict[str, Path]:
        """Pid files of the daemons, by the program name each one must have."""
        return {
            "redis-server": self.redis_pid,
            "rqworker": self.worker_pid,
            "gunicorn": self.web_pid,
            "nginx": self.nginx_pid,
            # Its command line names its prefix folder, .../nginx-lab/.
            "nginx-lab": self.lab_nginx_pid,
        }

    def sockets(self) -> list[Path]:
        return [self.redis_socket, self.web_socket]


@dataclass(frozen=True)
class Account:
    """A user a child runs as; ``None`` fields mean "stay who we are"."""

    name: str | None = None
    group: str | None = None
    extra_groups: tuple[str, ...] = ()

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.name).pw_uid if self.name else os.geteuid()

    @property
    def gid(self) -> int:
        return grp.getgrnam(self.group).gr_gid if self.group else os.getegid()

    def popen_kwargs(self) -> dict[str, Any]:
        if self.name is None:
            return {}
        return {
            "user": self.name,
            "group": self.group,
            "extra_groups": list(self.extra_groups),
        }


@dataclass(frozen=True)
class Accounts:
    """Who runs what. As root every daemon gets its own least-privileged user;
    without root (dry-run) everything runs as the caller."""

    privileged: bool
    web: Account
    redis: Account
    worker: Account
    nginx_workers: Account

    @classmethod
    def for_config(cls, config: PortalConfig) -> Accounts:
        if os.geteuid() != 0:
            me = Account()
            return cls(False, me, me, me, me)
        return cls(
            privileged=True,
            # The web process may talk to Redis (to enqueue), so it gets the
            # redis group for its lifetime only; /etc/group is not changed.
            web=Account(config.web_user, config.web_user, (REDIS_USER,)),
            redis=Account(REDIS_USER, REDIS_USER),
            worker=Account(),
            nginx_workers=Account(NGINX_WORKER_USER, NGINX_WORKER_USER),
        )


def render_template(name: str, context: dict[str, Any]) -> str:
    """Render a file of ``deploy/`` with Django's template language.

    A standalone engine without autoescaping: these are config files, not
    HTML, and every value comes from the validated config, never a request.
    """
    engine = Engine(dirs=[str(DEPLOY_DIR)], autoescape=False)
    return engine.get_template(name).render(Context(context))


def listen_addresses(config: PortalConfig) -> list[str]:
    """Where nginx listens: every address on a real node (phones reach it
    over the mesh), loopback only for the lab and dry-run, so a developer's
    laptop does not offer the portal to its own network."""
    ipv6 = Path("/proc/net/if_inet6").exists()
    if config.host_mode == "system":
        return ["0.0.0.0"] + (["[::]"] if ipv6 else [])  # noqa: S104
    return ["127.0.0.1"] + (["[::1]"] if ipv6 else [])


def render_redis_conf(layout: Layout) -> str:
    return render_template(
        "redis.conf.tmpl",
        {
            "run_dir": layout.run_dir,
            "socket": layout.redis_socket,
            "pidfile": layout.redis_pid,
            "data_dir": layout.redis_data,
            "maxmemory": REDIS_MAXMEMORY,
        },
    )


def render_nginx_conf(
    layout: Layout, config: PortalConfig, accounts: Accounts, *, lab_node: bool = False
) -> str:
    """nginx.conf of the operator's nginx, or (``lab_node``) of the one that
    runs inside the managed lab node: every address of that namespace (its
    own, so nothing of this machine is exposed), ports 80/443 as on a real
    node plus the configured ones (the HTTPS redirect names those)."""
    if lab_node:
        nginx_dir = layout.lab_nginx_dir
        addresses = ["0.0.0.0", "[::]"]  # noqa: S104 - inside the lab namespace
        http_ports = sorted({LAB_NODE_HTTP_PORT, config.http_port})
        held_ports = [settings.CAPTIVE_HELD_PORT]
        https_ports = sorted({LAB_NODE_HTTPS_PORT, config.https_port})
        access_log = "nginx-lab-access.log"
    else:
        nginx_dir = layout.nginx_dir
        addresses = listen_addresses(config)
        # On a real node the captive portal's held port too: the firewall
        # sends held phones' HTTP there, and a request on it is known to be
        # held (in the lab it is the lab node's nginx that listens there).
        http_ports = [config.http_port]
        held_ports = []
        if config.host_mode == "system":
            held_ports = [settings.CAPTIVE_HELD_PORT]
        https_ports = [config.https_port]
        access_log = "nginx-access.log"
    return render_template(
        "nginx.conf.tmpl",
        {
            "run_dir": layout.run_dir,
            "nginx_dir": nginx_dir,
            "access_log": access_log,
            "log_dir": layout.log_dir,
            "worker_user": accounts.nginx_workers.name,
            "worker_group": accounts.nginx_workers.group,
            "listen_addresses": addresses,
            "http_ports": [port for port in http_ports if port not in held_ports],
            "held_ports": held_ports,
            "https_ports": https_ports,
            "web_socket": layout.web_socket,
            "static_root": layout.static_root,
            "tls_cert": layout.tls_cert,
            "tls_key": layout.tls_key,
        },
    )


def _program(name: str) -> str:
    path = shutil.which(name, path=SYSTEM_PATH)
    if path is None:
        raise StartupError(
            _("%(program)s is not installed; run `make deps` as root.")
            % {"program": name}
        )
    return path


def _manage_argv(*args: str) -> list[str]:
    return [sys.executable, str(REPO_DIR / "manage.py"), *args]


def _chown(path: Path, account: Account, mode: int) -> None:
    os.chown(path, account.uid, account.gid)
    os.chmod(path, mode)


def _make_dir(path: Path, owner: Account, mode: int, accounts: Accounts) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if accounts.privileged:
        _chown(path, owner, mode)
    else:
        os.chmod(path, mode)


def _reachable(path: Path, account: Account) -> bool:
    """Whether ``account`` can traverse every folder down to ``path``."""
    uid = account.uid
    gids = {account.gid} | {grp.getgrnam(name).gr_gid for name in account.extra_groups}
    for folder in [*reversed(path.parents), path]:
        info = folder.stat()
        if info.st_uid == uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid in gids:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            return False
    return True


def ensure_web_user(name: str) -> None:
    """Create the unprivileged system user the web process runs as."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    argv = [
        _program("useradd"),
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "Byzantium node portal web process",
        name,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise StartupError(
            _("Could not create the user %(user)s: %(error)s")
            % {"user": name, "error": result.stderr.strip()}
        )


def prepare_filesystem(layout: Layout, accounts: Accounts) -> None:
    """Create the folders and set who may read what.

    The rules: the web user writes only the database folder, reads the
    Django secret key, and can reach Redis and hand requests to nginx only
    through their socket folders. The TLS key and the one-time setup secret
    stay root's alone. Runs on every start, so a file created by root in
    between (``migrate`` runs as root) gets its owner back.
    """
    root = Account()
    web, redis, nginx = accounts.web, accounts.redis, accounts.nginx_workers
    for folder in (layout.state_dir, layout.run_dir, layout.log_dir):
        _make_dir(folder, root, 0o755, accounts)
    _make_dir(layout.redis_dir, redis, 0o750, accounts)
    _make_dir(layout.redis_data, redis, 0o700, accounts)
    _make_dir(layout.nginx_dir, root, 0o755, accounts)
    _make_dir(layout.nginx_tmp, nginx, 0o700, accounts)
    _make_dir(layout.lab_nginx_dir, root, 0o755, accounts)
    _make_dir(layout.lab_nginx_tmp, nginx, 0o700, accounts)
    _make_dir(layout.db_dir, web, 0o750, accounts)
    web_dir_owner = Account(web.name, nginx.group) if accounts.privileged else web
    _make_dir(layout.web_dir, web_dir_owner, 0o750, accounts)
    if not accounts.privileged:
        return
    for entry in layout.db_dir.iterdir():
        _chown(entry, web, 0o640)
    if layout.secret_key.exists():
        _chown(layout.secret_key, Account(None, web.group), 0o640)
    tls_dir = layout.tls_key.parent
    if tls_dir.exists():
        _chown(tls_dir, root, 0o755)
    if layout.tls_key.exists():
        _chown(layout.tls_key, root, 0o600)
    for sensitive in setup_secret_paths(layout):
        if sensitive.exists():
            _chown(sensitive, root, 0o600)


def setup_secret_paths(layout: Layout) -> list[Path]:
    """Files holding the one-time setup secret (readable by root only)."""
    from portal.access import setup_secret_path

    return [setup_secret_path()]


def first_login_hint(https_url: str) -> str:
    """How the operator logs in: the setup secret, or that setup is done.

    Reads only: ``portal_init`` (run just before by ``make run``) issued the
    secret; the database says whether setup was completed since.
    """
    from django.urls import reverse

    from portal.access import setup_secret_path
    from portal.models import NodeSettings

    setup_url = https_url.rstrip("/") + reverse("portal:setup")
    if NodeSettings.peek().setup_done:
        return _("Setup is done: log in at %(url)s with the admin password.") % {
            "url": https_url
        }
    try:
        secret = setup_secret_path().read_text().strip()
    except (FileNotFoundError, PermissionError):
        secret = ""
    if not secret:
        return _(
            "No setup secret was issued yet: run `python manage.py portal_init` "
            "as root, then open %(url)s."
        ) % {"url": https_url}
    return _(
        "First login: open %(url)s and enter the one-time setup secret "
        "%(secret)s to choose the admin password, node name and language."
    ) % {"url": setup_url, "secret": secret}


@dataclass
class Child:
    """A long-running process the supervisor started and must stop."""

    name: str
    process: subprocess.Popen[bytes]
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 20.0


def _redis_ping(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(2)
            client.connect(str(path))
            client.sendall(b"PING\r\n")
            return client.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _http_status(reply: bytes) -> int | None:
    line = reply.split(b"\r\n", 1)[0].split()
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return None


def _http_over_unix(path: Path, request_path: str = "/") -> int | None:
    """Status of a GET sent straight to gunicorn's socket, or ``None``."""
    request = (
        f"GET {request_path} HTTP/1.0\r\nHost: localhost\r\n"
        "X-Forwarded-Proto: http\r\n\r\n"
    ).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(str(path))
            client.sendall(request)
            return _http_status(client.recv(256))
    except OSError:
        return None


def _http_over_tcp(host: str, port: int, *, tls: bool) -> tuple[int | None, bytes]:
    """Status of ``GET /`` to nginx and, over TLS, the certificate it sent."""
    request = f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            if not tls:
                raw.sendall(request)
                return _http_status(raw.recv(256)), b""
            # The certificate is checked by fingerprint below, not by a CA.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(raw, server_hostname=host) as client:
                der = client.getpeercert(binary_form=True) or b""
                client.sendall(request)
                return _http_status(client.recv(256)), der
    except OSError:
        return None, b""


def _port_free(address: str, port: int) -> bool:
    host = address.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _process_matches(pid: int, name: str) -> bool:
    """Whether ``pid`` is alive and its command line mentions ``name``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return name.encode() in cmdline


def lab_up_argv(config: PortalConfig) -> list[str]:
    """``manage.py lab up`` for the node's lab: the other nodes serve their
    documents, and (``lab_internet``) the Internet sits behind the managed
    node's ``up0``."""
    internet = ("--internet", config.lab_node) if config.lab_internet else ()
    return _manage_argv(
        "lab",
        "up",
        "--nodes",
        str(config.lab_nodes),
        "--clients",
        str(config.lab_clients),
        "--neighbour-documents",
        config.lab_node,
        *internet,
        "--json",
    )


class Supervisor:
    """Starts the node's processes in order and stops them in reverse."""

    def __init__(
        self,
        *,
        config: PortalConfig,
        layout: Layout,
        accounts: Accounts,
        say: Callable[[str], None],
        with_lab: bool,
    ) -> None:
        self.config = config
        self.layout = layout
        self.accounts = accounts
        self.say = say
        self.with_lab = with_lab
        self.children: list[Child] = []
        self.lab_started = False
        self.stop_signal: int | None = None

    # -- signals -----------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stop_signal = signum

    def _check(self) -> None:
        """Raise if a stop was asked for or a child already died."""
        if self.stop_signal is not None:
            raise StopRequested
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise StartupError(
                    _("%(name)s exited unexpectedly with status %(code)s.")
                    % {"name": child.name, "code": code}
                )

    def _wait_until(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check()
            if ready():
                return
            if time.monotonic() > deadline:
                raise StartupError(
                    _("%(what)s did not become ready within %(seconds)d seconds.")
                    % {"what": what, "seconds": timeout}
                )
            time.sleep(0.2)

    # -- children ----------------------------------------------------------

    def _environment(self, home: Path) -> dict[str, str]:
        """A small explicit environment: the portal's own variables only."""
        env = {
            "PATH": SYSTEM_PATH,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(home),
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "PYTHONUNBUFFERED": "1",
        }
        env.update({k: v for k, v in os.environ.items() if k.startswith("BYZANTIUM_")})
        return env

    def _spawn(
        self,
        name: str,
        argv: Sequence[str],
        account: Account,
        *,
        home: Path,
        umask: int = 0o022,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 20.0,
        extra_env: dict[str, str] | None = None,
    ) -> Child:
        env = self._environment(home)
        env.update(extra_env or {})
        # Popen with an argv: a long-running daemon whose output goes to our
        # console, see the module docstring.
        process = subprocess.Popen(  # noqa: S603
            list(argv),
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            umask=umask,
            preexec_fn=_die_with_parent,  # noqa: PLW1509
            **account.popen_kwargs(),
        )
        child = Child(name, process, stop_signal, stop_timeout)
        self.children.append(child)
        self.say(
            _("Started %(name)s (pid %(pid)s).") % {"name": name, "pid": process.pid}
        )
        return child

    # -- start-up ----------------------------------------------------------

    def clean_stale(self) -> None:
        """Remove what a previous run left: pid files, sockets, processes.

        A supervisor that was killed outright leaves its daemons to the
        kernel's parent-death signal; this catches any that survived (for
        example one that ignored it), but only a process whose command line
        matches the program its pid file belongs to.
        """
        layout = self.layout
        other = _pid_from(layout.supervisor_pid)
        if other and other != os.getpid() and _process_matches(other, "runnode"):
            raise StartupError(
                _(
                    "Another runnode (pid %(pid)s) is already running with "
                    "this state folder; stop it first."
                )
                % {"pid": other}
            )
        for program, pid_file in layout.pid_files().items():
            pid = _pid_from(pid_file)
            if pid and _process_matches(pid, program):
                self.say(
                    _("Stopping %(program)s (pid %(pid)s), left from an earlier run.")
                    % {"program": program, "pid": pid}
                )
                self._terminate_pid(pid)
            pid_file.unlink(missing_ok=True)
        for stale in layout.sockets():
            stale.unlink(missing_ok=True)

    @staticmethod
    def _terminate_pid(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def check_web_can_reach_code(self) -> None:
        """Refuse early when the web user cannot read the checkout.

        gunicorn runs as an unprivileged user; a checkout or state folder
        under a private home folder (``/root``) is invisible to it and it
        would die with an import error nobody understands.
        """
        if not self.accounts.privileged:
            return
        web = self.accounts.web
        for path in (REPO_DIR, self.layout.state_dir):
            if not _reachable(path, web):
                raise StartupError(
                    _(
                        "The web user %(user)s cannot reach %(path)s. Put the "
                        "checkout and the state folder where every user may "
                        "enter the folders above them (for example /opt or "
                        "/srv)."
                    )
                    % {"user": web.name, "path": path}
                )

    def web_interpreter(self) -> tuple[list[str], dict[str, str]]:
        """The Python the web user runs gunicorn with, and extra environment.

        Normally the virtualenv's. A virtualenv made from an interpreter in a
        private home (pyenv under /root) cannot be executed by the web user;
        then Debian's interpreter of the same version runs the virtualenv's
        packages (same ABI), rather than running the web process as root.
        """
        own = Path(sys.executable)
        if not self.accounts.privileged or _reachable(own.resolve(), self.accounts.web):
            return [str(own)], {}
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        system = Path(f"/usr/bin/python{version}")
        if system.exists() and _reachable(system.resolve(), self.accounts.web):
            import site

            self.say(
                _(
                    "The virtualenv's interpreter %(own)s is not reachable by "
                    "%(user)s; the web process uses %(system)s with the "
                    "virtualenv's packages."
                )
                % {
                    "own": own.resolve(),
                    "user": self.accounts.web.name,
                    "system": system,
                }
            )
            return [str(system)], {
                "PYTHONPATH": os.pathsep.join(site.getsitepackages())
            }
        raise StartupError(
            _(
                "The web user %(user)s cannot run %(python)s. Recreate the "
                "virtualenv with /usr/bin/python3 (make distclean && make run)."
            )
            % {"user": self.accounts.web.name, "python": own.resolve()}
        )

    def write_configs(self) -> None:
        self.layout.redis_conf.write_text(render_redis_conf(self.layout))
        self.layout.nginx_conf.write_text(
            render_nginx_conf(self.layout, self.config, self.accounts)
        )
        if self.with_lab:
            self.layout.lab_nginx_conf.write_text(
                render_nginx_conf(
                    self.layout, self.config, self.accounts, lab_node=True
                )
            )

    def start_redis(self) -> None:
        argv = [_program(REDIS_SERVER), str(self.layout.redis_conf)]
        self._spawn(
            "redis-server",
            argv,
            self.accounts.redis,
            home=self.layout.redis_data,
            umask=0o077,
            stop_timeout=15,
        )
        self._wait_until(
            "redis-server",
            lambda: _redis_ping(self.layout.redis_socket),
            REDIS_READY_SECONDS,
        )

    def start_lab(self) -> None:
        self.lab_started = True
        argv = lab_up_argv(self.config)
        self.say(
            _("Starting the lab: %(nodes)s nodes, %(clients)s clients...")
            % {"nodes": self.config.lab_nodes, "clients": self.config.lab_clients}
        )
        started = time.monotonic()
        try:
            result = subprocess.run(  # noqa: S603
                argv,
                cwd=REPO_DIR,
                env=self._environment(self.layout.state_dir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                timeout=LAB_UP_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise StartupError(
                _("The lab did not come up within %(seconds)d seconds.")
                % {"seconds": LAB_UP_SECONDS}
            ) from error
        self._check()
        if result.returncode != 0:
            raise StartupError(
                _("`manage.py lab up` failed with status %(code)s (see above).")
                % {"code": result.returncode}
            )
        self.say(
            _("The lab is up after %(seconds).1f seconds: %(summary)s")
            % {
                "seconds": time.monotonic() - started,
                "summary": self._lab_summary(result.stdout),
            }
        )

    @staticmethod
    def _lab_summary(output: bytes) -> str:
        """One line from ``lab up --json``: namespaces and convergence time."""
        try:
            data = json.loads(output)
            namespaces = ", ".join(str(name) for name in data["namespaces"])
            converged = float(data["converged_seconds"])
        except (ValueError, KeyError, TypeError):
            return output.decode(errors="replace").strip()[:300]
        return _("namespaces %(namespaces)s; babel converged in %(seconds).1f s") % {
            "namespaces": namespaces,
            "seconds": converged,
        }

    def _worker_registered(self, pid: int, queue: str = QUEUE_NAME) -> bool:
        import redis

        client = redis.Redis(unix_socket_path=str(self.layout.redis_socket))
        try:
            for key in client.smembers(f"rq:workers:{queue}"):
                if client.hget(key, "pid") == str(pid).encode():
                    return True
        except redis.RedisError:
            return False
        finally:
            client.close()
        return False

    def start_worker(self) -> None:
        argv = _manage_argv(
            "rqworker",
            QUEUE_NAME,
            "--with-scheduler",
            "--pid",
            str(self.layout.worker_pid),
            # rq logs three lines for every job, routine ones every 5 s
            # included; warnings and failures still reach the console.
            "--verbosity",
            "0",
        )
        child = self._spawn(
            "rq worker",
            argv,
            self.accounts.worker,
            home=self.layout.state_dir,
            # A warm shutdown lets the running job finish; a job that takes
            # longer is killed and marked errored on the next start.
            stop_timeout=30,
        )
        self._wait_until(
            _("the RQ worker"),
            lambda: self._worker_registered(child.process.pid),
            WORKER_READY_SECONDS,
        )
        self.queue_start_jobs()

    def queue_start_jobs(self) -> None:
        """Jobs a node runs once it starts (:mod:`portal.start_jobs`): the
        services back to their stored on/off state, the uplink set up again
        (the lab node is new, as a node after a reboot is). The systemd
        units do the same with the worker's ``ExecStartPost=``."""
        from portal.start_jobs import queue_start_jobs

        queue_start_jobs()

    def start_web(self) -> None:
        python, python_env = self.web_interpreter()
        argv = [
            *python,
            "-m",
            "gunicorn",
            "--config",
            str(DEPLOY_DIR / "gunicorn.conf.py"),
            "--bind",
            f"unix:{self.layout.web_socket}",
            "--pid",
            str(self.layout.web_pid),
            "portal.wsgi:application",
        ]
        self._spawn(
            "gunicorn",
            argv,
            self.accounts.web,
            home=self.layout.web_dir,
            umask=0o027,
            stop_timeout=25,
            extra_env={"PYTHONDONTWRITEBYTECODE": "1", **python_env},
        )
        status: list[int | None] = [None]

        def answering() -> bool:
            status[0] = _http_over_unix(self.layout.web_socket)
            return status[0] is not None

        self._wait_until("gunicorn", answering, WEB_READY_SECONDS)
        if status[0] is not None and status[0] >= 500:
            raise StartupError(
                _("gunicorn answers, but the portal's home page fails (HTTP %(code)s).")
                % {"code": status[0]}
            )

    def start_nginx(self) -> None:
        for address in listen_addresses(self.config):
            for port in (self.config.http_port, self.config.https_port):
                if not _port_free(address, port):
                    raise StartupError(
                        _(
                            "Port %(port)s on %(address)s is already in use by "
                            "another program. Stop it, or choose other ports "
                            "with BYZANTIUM_HTTP_PORT / BYZANTIUM_HTTPS_PORT."
                        )
                        % {"port": port, "address": address}
                    )
        for required in (self.layout.tls_cert, self.layout.tls_key):
            if not required.exists():
                raise StartupError(
                    _("%(path)s is missing; run `manage.py portal_init` first.")
                    % {"path": required}
                )
        nginx = _program(NGINX)
        prefix = f"{self.layout.nginx_dir}/"
        conf = str(self.layout.nginx_conf)
        test = subprocess.run(  # noqa: S603
            [nginx, "-t", "-q", "-p", prefix, "-e", "stderr", "-c", conf],
            capture_output=True,
            text=True,
            check=False,
        )
        if test.returncode != 0:
            raise StartupError(
                _("nginx refuses its configuration %(path)s: %(error)s")
                % {"path": conf, "error": test.stderr.strip()}
            )
        self._spawn(
            "nginx",
            [nginx, "-p", prefix, "-e", "stderr", "-c", conf],
            Account(),
            home=self.layout.nginx_dir,
            # Fast shutdown: a graceful one waits for idle keep-alive
            # connections of browsers, which is pointless when stopping.
            stop_signal=signal.SIGTERM,
            stop_timeout=10,
        )
        expected = cert_file_fingerprint(self.layout.tls_cert)
        # Every listen set includes loopback (0.0.0.0 or 127.0.0.1).
        host = "127.0.0.1"

        def answering() -> bool:
            plain, _none = _http_over_tcp(host, self.config.http_port, tls=False)
            secure, der = _http_over_tcp(host, self.config.https_port, tls=True)
            return plain is not None and secure is not None and bool(der)

        self._wait_until("nginx", answering, NGINX_READY_SECONDS)
        _status, der = _http_over_tcp(host, self.config.https_port, tls=True)
        if cert_fingerprint(der) != expected:
            raise StartupError(
                _("nginx serves another certificate than %(path)s.")
                % {"path": self.layout.tls_cert}
            )

    @property
    def lab_node_namespace(self) -> str:
        from portal.host.node import lab_namespace

        return lab_namespace(self.config.lab_prefix, self.config.lab_node)

    def _in_lab_node(self, *argv: str) -> list[str]:
        return [_program("ip"), "netns", "exec", self.lab_node_namespace, *argv]

    def _lab_node_answers(self, url: str) -> int | None:
        """HTTP status of ``url`` asked from inside the lab node, or None."""
        result = subprocess.run(  # noqa: S603
            self._in_lab_node(
                _program("curl"),
                "-q",
                "-s",
                "-k",
                "-o",
                "/dev/null",
                "--max-time",
                "3",
                "-w",
                "%{http_code}",
                url,
            ),
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        code = result.stdout.strip()
        return int(code) if code.isdigit() and code != "000" else None

    def start_lab_nginx(self) -> None:
        """nginx inside the managed lab node, on that node's own addresses."""
        nginx = _program(NGINX)
        prefix = f"{self.layout.lab_nginx_dir}/"
        conf = str(self.layout.lab_nginx_conf)
        test = subprocess.run(  # noqa: S603
            [nginx, "-t", "-q", "-p", prefix, "-e", "stderr", "-c", conf],
            capture_output=True,
            text=True,
            check=False,
        )
        if test.returncode != 0:
            raise StartupError(
                _("nginx refuses its configuration %(path)s: %(error)s")
                % {"path": conf, "error": test.stderr.strip()}
            )
        # `ip netns exec` execs nginx, so the child's pid is nginx's master.
        self._spawn(
            "nginx (lab node)",
            self._in_lab_node(nginx, "-p", prefix, "-e", "stderr", "-c", conf),
            Account(),
            home=self.layout.lab_nginx_dir,
            stop_signal=signal.SIGTERM,
            stop_timeout=10,
        )

        def answering() -> bool:
            plain = self._lab_node_answers(f"http://127.0.0.1:{LAB_NODE_HTTP_PORT}/")
            secure = self._lab_node_answers(f"https://127.0.0.1:{LAB_NODE_HTTPS_PORT}/")
            return plain is not None and secure is not None

        self._wait_until(_("nginx in the lab node"), answering, NGINX_READY_SECONDS)

    def start(self) -> None:
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        self.clean_stale()
        self.layout.supervisor_pid.write_text(f"{os.getpid()}\n")
        if self.accounts.privileged:
            ensure_web_user(self.accounts.web.name or "")
        prepare_filesystem(self.layout, self.accounts)
        self.check_web_can_reach_code()
        self.write_configs()
        self.start_redis()
        if self.with_lab:
            self.start_lab()
        self.start_worker()
        self.start_web()
        self.start_nginx()
        if self.with_lab:
            self.start_lab_nginx()

    # -- running and stopping ---------------------------------------------

    def watch(self) -> int:
        """Wait for a signal or a dead child; return the exit status."""
        while True:
            if self.stop_signal is not None:
                self.say(
                    _("Received %(signal)s, stopping.")
                    % {"signal": signal.Signals(self.stop_signal).name}
                )
                return 0
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    message = _("%(name)s (pid %(pid)s) died with status %(code)s.")
                    self.say(
                        message
                        % {"name": child.name, "pid": child.process.pid, "code": code}
                    )
                    return 1
            time.sleep(0.5)

    def _stop_child(self, child: Child) -> None:
        process = child.process
        if process.poll() is None:
            try:
                os.kill(process.pid, child.stop_signal)
            except ProcessLookupError:
                pass
            try:
                process.wait(child.stop_timeout)
            except subprocess.TimeoutExpired:
                self.say(
                    _("%(name)s did not stop within %(seconds)d seconds; killing it.")
                    % {"name": child.name, "seconds": child.stop_timeout}
                )
        # Whatever is left in the child's session (gunicorn workers, the RQ
        # work horse) goes with it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        self.say(_("Stopped %(name)s.") % {"name": child.name})

    def stop(self) -> None:
        """Stop everything started, in reverse order; never raises."""
        # A second Ctrl-C must not interrupt the orderly stop half-way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        redis_child = next((c for c in self.children if c.name == "redis-server"), None)
        for child in reversed(self.children):
            if child is redis_child:
                continue
            self._stop_child(child)
        if self.lab_started:
            self.say(_("Taking the lab down..."))
            try:
                subprocess.run(  # noqa: S603
                    _manage_argv("lab", "down"),
                    cwd=REPO_DIR,
                    env=self._environment(self.layout.state_dir),
                    stdin=subprocess.DEVNULL,
                    timeout=LAB_DOWN_SECONDS,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                self.say(_("`manage.py lab down` did not finish in time."))
        if redis_child is not None:
            self._stop_child(redis_child)
        for path in [*self.layout.sockets(), *self.layout.pid_files().values()]:
            path.unlink(missing_ok=True)
        if _pid_from(self.layout.supervisor_pid) == os.getpid():
            self.layout.supervisor_pid.unlink(missing_ok=True)


def _lab_node_client_gateway(config: PortalConfig) -> str:
    """The managed lab node's address on its clients' subnet (lab plan)."""
    from portal.lab import spec as plan

    try:
        return str(plan.client_gateway(plan.parse_member(config.lab_node)))
    except Exception:  # noqa: BLE001 - only a hint in the banner
        return "10.213.1.1"


def _banner(config: PortalConfig, layout: Layout) -> list[str]:
    host = socket.gethostname() if config.host_mode == "system" else "127.0.0.1"
    https_url = f"https://{host}:{config.https_port}/"
    http_url = f"http://{host}:{config.http_port}/"
    lines = [
        "",
        _("The Byzantium node portal is running (host mode: %(mode)s).")
        % {"mode": config.host_mode},
        _("  Operator pages (HTTPS): %(url)s") % {"url": https_url},
        _("  Public pages (HTTP):    %(url)s") % {"url": http_url},
        _("  Certificate SHA-256:    %(fingerprint)s")
        % {"fingerprint": cert_file_fingerprint(layout.tls_cert)},
        _(
            "  Your browser will warn about the certificate: it is made on "
            "this node. Accept it only if the fingerprint matches."
        ),
        "  " + first_login_hint(https_url),
    ]
    if config.host_mode == "lab":
        lines.append(
            _(
                "  The portal manages lab node %(node)s. Try: python manage.py "
                "lab status, or python manage.py lab exec c1 -- ip address"
            )
            % {"node": config.lab_node}
        )
        lines.append(
            _(
                "  The lab phone c1 is held by the captive portal of node "
                "%(node)s until it taps Continue. Try: python manage.py lab exec "
                "c1 -- curl -si http://example.org/ (the welcome page is "
                "http://%(address)s/captive/)"
            )
            % {"node": config.lab_node, "address": _lab_node_client_gateway(config)}
        )
    if config.host_mode == "dry-run":
        lines.append(_("  Dry run: jobs record their commands and change nothing."))
    lines.append(_("Press Ctrl-C to stop."))
    return lines


class Command(BaseCommand):
    help = "Run the whole node in the foreground: Redis, lab, worker, web, nginx."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--render-configs",
            action="store_true",
            help="Write the Redis and nginx configs, fix permissions, start nothing "
            "(used by the systemd units of a real node).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config: PortalConfig = settings.PORTAL
        layout = Layout.from_settings()
        accounts = Accounts.for_config(config)
        with translation.override(settings.LANGUAGE_CODE):
            if not accounts.privileged and config.host_mode != "dry-run":
                raise CommandError(
                    _(
                        "Host mode %(mode)s needs root. Run as root, or set "
                        "BYZANTIUM_HOST_MODE=dry-run."
                    )
                    % {"mode": config.host_mode}
                )
            supervisor = Supervisor(
                config=config,
                layout=layout,
                accounts=accounts,
                say=self._say,
                with_lab=config.host_mode == "lab",
            )
            if options["render_configs"]:
                self._render_only(supervisor, quiet=options["verbosity"] == 0)
                return
            supervisor.install_signal_handlers()
            status = 1
            try:
                supervisor.start()
                for line in _banner(config, layout):
                    self._say(line)
                status = supervisor.watch()
            except StopRequested:
                self._say(_("Stop requested during start-up."))
                status = 0
            except StartupError as error:
                self.stderr.write(str(error))
            finally:
                supervisor.stop()
            if status != 0:
                raise CommandError(
                    _("The node was stopped because of the error above.")
                )

    def _render_only(self, supervisor: Supervisor, *, quiet: bool) -> None:
        try:
            if supervisor.accounts.privileged:
                ensure_web_user(supervisor.accounts.web.name or "")
            prepare_filesystem(supervisor.layout, supervisor.accounts)
            supervisor.write_configs()
        except StartupError as error:
            raise CommandError(str(error)) from error
        if not quiet:
            self._say(str(supervisor.layout.redis_conf))
            self._say(str(supervisor.layout.nginx_conf))

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
