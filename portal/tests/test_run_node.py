"""``manage.py runnode`` end to end: the whole node as ``make run`` starts it.

One node is started for the module (Redis, a 3-node lab, the RQ worker,
gunicorn, nginx), in its own state folder, with its own lab prefix and free
ports, so it never meets a node started by ``make run``. The tests read it;
the last one sends SIGINT and checks that nothing is left behind. The
finaliser cleans up even when a test fails half-way.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from portal.config import REPO_DIR
from portal.lab.lab import list_namespaces

pytestmark = pytest.mark.lab

START_TIMEOUT = 300.0
STOP_TIMEOUT = 150.0
BANNER_END = "Press Ctrl-C to stop."


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _prefix() -> str:
    """A lab prefix of our own: not ``byz`` (make run), not ``lt*`` (the
    lab fixtures, whose session clean-up removes labs of dead owners)."""
    alphabet = string.ascii_lowercase + string.digits
    taken = {name.split("-", 1)[0] for name in list_namespaces()}
    while True:
        prefix = "rn" + "".join(secrets.choice(alphabet) for _ in range(3))
        if prefix not in taken:
            return prefix


@dataclass
class RunningNode:
    """The ``runnode`` process and what the test learnt about it."""

    process: subprocess.Popen[str]
    state_dir: Path
    prefix: str
    env: dict[str, str]
    http_port: int
    https_port: int
    lines: list[str] = field(default_factory=list)
    output: queue.Queue[str] = field(default_factory=queue.Queue)

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(REPO_DIR / "manage.py"), *args],
            cwd=REPO_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.output.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.lines.append(line)
            if text in line:
                return
        pytest.fail(
            f"runnode did not print {text!r}; its output:\n" + "".join(self.lines)
        )

    def drain(self) -> str:
        while True:
            try:
                self.lines.append(self.output.get_nowait())
            except queue.Empty:
                return "".join(self.lines)

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"


def _pump(stream, into: queue.Queue[str]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        into.put(line)


def _prepare(host_mode: str) -> RunningNode:
    """A state folder, ports and a lab prefix of our own, prepared as
    ``make run`` prepares ``var/``; the supervisor is not started yet."""
    # Not pytest's tmp_path: it is private to root (0700), and gunicorn runs
    # as the web user, who must be able to enter the state folder.
    state_dir = Path(tempfile.mkdtemp(prefix="byz-runnode-", dir="/tmp"))
    state_dir.chmod(0o755)
    prefix = _prefix()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYZANTIUM_")}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.dev",
        BYZANTIUM_STATE_DIR=str(state_dir),
        BYZANTIUM_LAB_PREFIX=prefix,
        BYZANTIUM_HOST_MODE=host_mode,
        BYZANTIUM_HTTP_PORT=str(_free_port()),
        BYZANTIUM_HTTPS_PORT=str(_free_port()),
        PYTHONUNBUFFERED="1",
    )
    running = RunningNode(
        process=None,  # type: ignore[arg-type]
        state_dir=state_dir,
        prefix=prefix,
        env=env,
        http_port=int(env["BYZANTIUM_HTTP_PORT"]),
        https_port=int(env["BYZANTIUM_HTTPS_PORT"]),
    )
    for step in (
        ("runnode", "--render-configs", "-v", "0"),
        ("migrate", "--noinput", "-v", "0"),
        ("collectstatic", "--noinput", "-v", "0"),
        ("portal_init",),
    ):
        result = running.manage(*step)
        assert result.returncode == 0, result.stdout + result.stderr
    return running


def _start(running: RunningNode) -> None:
    running.lines.clear()
    running.output = queue.Queue()
    running.process = subprocess.Popen(
        [sys.executable, str(REPO_DIR / "manage.py"), "runnode"],
        cwd=REPO_DIR,
        env=running.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    threading.Thread(
        target=_pump, args=(running.process.stdout, running.output), daemon=True
    ).start()
    running.wait_for_line(BANNER_END, START_TIMEOUT)


def _finish(running: RunningNode | None) -> None:
    """Stop whatever is still running and remove the lab and the folder."""
    if running is None:
        return
    process = running.process
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    running.manage("lab", "down", timeout=180)
    shutil.rmtree(running.state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def node() -> Iterator[RunningNode]:
    running: RunningNode | None = None
    try:
        running = _prepare("lab")
        _start(running)
        yield running
    finally:
        _finish(running)


def _get(url: str, *, context: ssl.SSLContext | None = None):  # type: ignore[no-untyped-def]
    match = re.match(r"(https?)://([\d.]+):(\d+)(/.*)", url)
    assert match, url
    scheme, host, port, path = match.groups()
    if scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, int(port), context=context, timeout=30
        )
    else:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        der = b""
        if scheme == "https":
            der = connection.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
        return response.status, dict(response.getheaders()), body, der
    finally:
        connection.close()


def _banner_value(node: RunningNode, label: str) -> str:
    for line in node.lines:
        if label in line:
            return line.split(label, 1)[1].strip()
    pytest.fail(f"no {label!r} line in:\n{''.join(node.lines)}")


def test_banner_names_both_urls_and_the_setup_secret(node: RunningNode) -> None:
    output = "".join(node.lines)
    secret = (node.state_dir / "setup-secret").read_text().strip()

    assert node.https_url in output
    assert node.http_url in output
    assert secret in output


def test_public_page_is_served_over_http(node: RunningNode) -> None:
    status, _headers, body, _der = _get(node.http_url)

    assert status == 200
    assert b"<html" in body.lower()


def test_static_files_are_served_by_nginx(node: RunningNode) -> None:
    static_files = [
        path for path in (node.state_dir / "static").rglob("*.css") if path.is_file()
    ]
    assert static_files, "collectstatic wrote no stylesheet"
    relative = static_files[0].relative_to(node.state_dir / "static")

    status, headers, body, _der = _get(f"{node.http_url}static/{relative}")

    assert status == 200
    assert body == static_files[0].read_bytes()
    assert headers.get("Server") == "nginx"


def test_admin_path_over_http_redirects_to_https(node: RunningNode) -> None:
    status, headers, _body, _der = _get(f"{node.http_url}setup/")

    assert status in (301, 302, 307, 308)
    assert headers["Location"].startswith(node.https_url)


def test_forged_scheme_header_does_not_open_admin_over_http(
    node: RunningNode,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=30)
    try:
        connection.request("GET", "/setup/", headers={"X-Forwarded-Proto": "https"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    assert response.status in (301, 302, 307, 308)
    assert response.getheader("Location", "").startswith(node.https_url)


def test_setup_page_is_served_over_https_with_the_generated_certificate(
    node: RunningNode,
) -> None:
    cert = (node.state_dir / "tls" / "portal.crt").read_text()
    context = ssl.create_default_context(cadata=cert)
    # The certificate names the node, not 127.0.0.1; trust is pinned to
    # this one certificate and its fingerprint instead of a host name.
    context.check_hostname = False

    status, headers, body, der = _get(f"{node.https_url}setup/", context=context)

    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    assert fingerprint == _banner_value(node, "Certificate SHA-256:")
    assert status == 200
    assert "secure" in headers.get("Set-Cookie", "secure").lower()
    assert b"<form" in body


def test_web_process_runs_as_the_unprivileged_user(node: RunningNode) -> None:
    gunicorn_pid = int((node.state_dir / "run" / "web" / "gunicorn.pid").read_text())
    master = psutil.Process(gunicorn_pid)
    processes = [master, *master.children()]

    assert {process.username() for process in processes} == {"byzantium-web"}
    setup_secret = node.state_dir / "setup-secret"
    assert setup_secret.stat().st_uid == 0
    assert setup_secret.stat().st_mode & 0o077 == 0


def test_lab_of_the_node_is_up(node: RunningNode) -> None:
    namespaces = {
        name for name in list_namespaces() if name.startswith(f"{node.prefix}-")
    }

    assert {f"{node.prefix}-n1", f"{node.prefix}-n2", f"{node.prefix}-c1"} <= namespaces


def test_job_runs_through_the_real_worker(node: RunningNode) -> None:
    script = (
        "import time\n"
        "from django.db import transaction\n"
        "from portal.jobqueue.services import enqueue_job\n"
        "from portal.models import Job\n"
        "with transaction.atomic():\n"
        "    job = enqueue_job(kind='portal.sample_status')\n"
        "for _ in range(300):\n"
        "    job.refresh_from_db()\n"
        "    if job.status not in ('pending', 'running'):\n"
        "        break\n"
        "    time.sleep(0.1)\n"
        "print('STATUS', job.status)\n"
    )

    result = node.manage("shell", "-c", script)

    assert result.returncode == 0, result.stderr
    assert "STATUS completed" in result.stdout, result.stdout + result.stderr


def _in_lab(node: RunningNode, member: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", f"{node.prefix}-{member}", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _client_gateway(node: RunningNode) -> str:
    """The address of n1 that lab client c1 routes through (its DHCP router)."""
    routes = json.loads(
        _in_lab(node, "c1", "ip", "-j", "route", "show", "default").stdout
    )
    return routes[0]["gateway"]


def test_portal_answers_inside_the_lab_node_on_ports_80_and_443(
    node: RunningNode,
) -> None:
    from meshnet.node_document import parse_document

    gateway = _client_gateway(node)
    # The other nodes of the mesh read n1's document at its mesh address.
    reply = _in_lab(
        node, "n2", "curl", "-s", "--max-time", "10", "http://10.213.0.1/api/v1/node"
    )
    assert reply.returncode == 0, reply.stderr
    document = parse_document(reply.stdout.encode())
    assert document.version
    # The lab phone is held by the captive portal (on from the first run),
    # and gets the welcome page at the node's client-side address.
    held = _in_lab(
        node, "c1", "curl", "-s", "-o", "/dev/null",
        "-w", "%{http_code} %{redirect_url}",
        "--max-time", "10", f"http://{gateway}/api/v1/node",
    )  # fmt: skip
    assert held.stdout == f"302 http://{gateway}/captive/", held.stdout
    welcome = _in_lab(
        node, "c1", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
        "--max-time", "10", f"http://{gateway}/captive/",
    )  # fmt: skip
    assert welcome.stdout == "200", welcome.stderr
    # The operator's side, from another node of the mesh: plain HTTP sends
    # admin paths to HTTPS, and port 443 inside the node serves the node's
    # own certificate. The held phone gets neither: a redirect to the
    # welcome page, and 443 refused at once.
    mesh = "10.213.0.1"
    redirect = _in_lab(
        node, "n2", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
        f"http://{mesh}/setup/",
    )  # fmt: skip
    assert redirect.stdout in ("301", "302", "307", "308")
    secure = _in_lab(
        node, "n2", "curl", "-s", "-k", "-o", "/dev/null", "-w", "%{http_code}",
        f"https://{mesh}/setup/",
    )  # fmt: skip
    assert secure.stdout == "200"
    refused = _in_lab(
        node, "c1", "curl", "-s", "-k", "-o", "/dev/null", "--max-time", "5",
        f"https://{gateway}/setup/",
    )  # fmt: skip
    assert refused.returncode == 7, refused  # connection refused, not a hang


def test_other_mesh_nodes_reach_the_portal_over_the_mesh(node: RunningNode) -> None:
    from portal.lab.spec import mesh_address

    reply = _in_lab(
        node,
        "n2",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
        f"http://{mesh_address('n1')}/api/v1/node",
    )
    assert reply.stdout == "200", reply.stderr


def test_sigint_stops_every_process_and_the_lab(node: RunningNode) -> None:
    supervisor = psutil.Process(node.process.pid)
    children = supervisor.children(recursive=True)
    assert {"redis-server", "nginx"} <= {child.name() for child in children}
    lab_nginx = int((node.state_dir / "run" / "nginx-lab" / "nginx.pid").read_text())
    assert lab_nginx in {child.pid for child in children}
    run_dir = node.state_dir / "run"
    sockets = [run_dir / "redis" / "redis.sock", run_dir / "web" / "gunicorn.sock"]
    assert all(path.exists() for path in sockets)

    node.process.send_signal(signal.SIGINT)
    code = node.process.wait(STOP_TIMEOUT)

    output = node.drain()
    assert code == 0, output
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    assert not any(path.exists() for path in sockets)
    assert not list(run_dir.rglob("*.pid"))
    assert [n for n in list_namespaces() if n.startswith(f"{node.prefix}-")] == []
    lab_processes = [
        process
        for process in psutil.process_iter(["cmdline"])
        if str(node.state_dir) in " ".join(process.info["cmdline"] or [])
    ]
    assert lab_processes == []


def test_a_dead_child_stops_everything_and_a_restart_works() -> None:
    """Kill gunicorn: the supervisor says so, stops the rest and exits 1;
    a second start in the same state folder then comes up cleanly."""
    running: RunningNode | None = None
    try:
        running = _prepare("dry-run")
        _start(running)
        children = psutil.Process(running.process.pid).children(recursive=True)
        web_pid = int((running.state_dir / "run" / "web" / "gunicorn.pid").read_text())

        os.kill(web_pid, signal.SIGKILL)
        code = running.process.wait(STOP_TIMEOUT)

        output = running.drain()
        assert code == 1, output
        assert f"gunicorn (pid {web_pid}) died" in output
        _gone, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []

        _start(running)
        status, _headers, _body, _der = _get(running.http_url)
        assert status == 200
    finally:
        _finish(running)
