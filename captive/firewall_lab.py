"""A lab "Internet" for the captive portal's firewall tests and benchmark.

:class:`Upstream` adds to a running lab one namespace, ``<prefix>-up``,
linked to a node by a veth pair: the node's uplink. It answers HTTP on a
few "Internet" addresses (documentation prefixes, never routed anywhere
real) and has a route back to the lab's client subnets; the node gets a
default route towards it. Nothing leaves the lab's namespaces.

Processes run inside namespaces with ``ip netns exec``:

- :func:`serve` (this file run as a script with ``serve``): a small HTTP/1.1
  server that keeps connections alive and names itself in every answer, so
  a test can tell the portal from the Internet; ``/stream`` sends bytes
  steadily for a minute (a live flow); ``/bytes/N`` sends N bytes.
- :class:`ClientAgent` (this file run with ``agent``): lives in a client
  namespace and runs socket operations on request (JSON lines on stdin and
  stdout), so one TCP connection can outlive a change of the firewall;
  ``tap`` times a Continue from its POST to the first new connection the
  upstream answers (the benchmark's tap-to-access latency).

Both run as ``python -P`` (the script's folder is not put on ``sys.path``),
so an app module named like a standard one (``captive/selectors.py``) cannot
shadow the standard library in them.

This is test and benchmark equipment, not portal code: it starts its
programs itself (``subprocess``), as :meth:`portal.lab.lab.Lab.exec` does
for a developer's command, and cleans up after itself; :func:`remove_stale`
removes upstreams whose lab is gone (a killed test run).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()

# The uplink between the node and the "Internet" (TEST-NET-3, RFC 5737).
NODE_UPLINK = "203.0.113.1/24"
UPSTREAM_ADDRESS = "203.0.113.2"
# Hosts on "the Internet": addresses the upstream namespace owns.
INTERNET_HOSTS = ("198.51.100.80", "198.51.100.81")
# An address nobody owns: HTTP to it must still land on the portal.
NOWHERE = "192.0.2.99"
# IPv6 (documentation prefix 2001:db8::/32): client LAN and uplink.
NODE_LAN6 = "2001:db8:1::1"
NODE_UPLINK6 = "2001:db8:2::1"
UPSTREAM_ADDRESS6 = "2001:db8:2::2"
UPLINK_NODE_SIDE = "up0"
UPLINK_FAR_SIDE = "eth0"
UPSTREAM_PORTS = (80, 443, 853)

_UPSTREAM_NS = re.compile(r"^(lt[a-z0-9]{3}|[a-z][a-z0-9]{1,4})-up$")


def _ip(namespace: str | None, *args: str) -> None:
    argv = ["ip"]
    if namespace:
        argv += ["-n", namespace]
    subprocess.run([*argv, *args], check=True, capture_output=True, text=True)


def _netns_pids(namespace: str) -> list[int]:
    result = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True
    )
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def _kill_namespace(namespace: str) -> None:
    """Kill every process in ``namespace``, then delete it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [pid for pid in _netns_pids(namespace) if pid != os.getpid()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 2
        while _netns_pids(namespace) and time.monotonic() < deadline:
            time.sleep(0.05)
    subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


def remove_stale(labs_root: Path | None = None) -> list[str]:
    """Remove upstream namespaces whose lab is gone (killed runs).

    An upstream is linked to a node of its lab, so it is stale once no other
    namespace of its prefix exists (the lab's own clean-up removes a killed
    run's nodes and clients). Judging by the namespaces, not by a lab
    folder, keeps the upstreams of labs started from another checkout or by
    the benchmark (whose folders live elsewhere) alive. ``labs_root`` is no
    longer needed and kept for callers.
    """
    result = subprocess.run(
        ["ip", "-j", "netns", "list"], capture_output=True, text=True
    )
    names = [entry.get("name", "") for entry in json.loads(result.stdout or "[]")]
    removed = []
    for name in names:
        if not _UPSTREAM_NS.match(name):
            continue
        prefix = name.rsplit("-", 1)[0]
        if any(other.startswith(f"{prefix}-") and other != name for other in names):
            continue
        _kill_namespace(name)
        removed.append(name)
    return removed


@dataclass
class Upstream:
    """The "Internet" namespace of a lab, linked to one of its nodes."""

    prefix: str
    node_namespace: str
    client_subnet: str = "10.213.0.0/16"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Another name than ``<prefix>-up`` keeps the namespace out of reach of
    # :func:`remove_stale` in test runs of other checkouts (the benchmark's,
    # whose lab folder is not under the tests' labs root).
    name: str = ""

    @property
    def namespace(self) -> str:
        return self.name or f"{self.prefix}-up"

    def up(self) -> None:
        """Build the namespace, the uplink, addresses and routes."""
        self.down()
        node, far = self.node_namespace, self.namespace
        subprocess.run(["ip", "netns", "add", far], check=True)
        try:
            _ip(
                None, "link", "add", UPLINK_NODE_SIDE, "netns", node,
                "type", "veth", "peer", "name", UPLINK_FAR_SIDE, "netns", far,
            )  # fmt: skip
            _ip(far, "link", "set", "lo", "up")
            for host in INTERNET_HOSTS:
                _ip(far, "address", "add", f"{host}/32", "dev", "lo")
            _ip(far, "address", "add", f"{UPSTREAM_ADDRESS}/24", "dev", UPLINK_FAR_SIDE)
            _ip(
                far, "address", "add", f"{UPSTREAM_ADDRESS6}/64",
                "dev", UPLINK_FAR_SIDE, "nodad",
            )  # fmt: skip
            _ip(far, "link", "set", UPLINK_FAR_SIDE, "up")
            _ip(far, "route", "add", self.client_subnet, "via", NODE_UPLINK[:-3])
            _ip(far, "-6", "route", "add", "2001:db8:1::/64", "via", NODE_UPLINK6)
            _ip(node, "address", "add", NODE_UPLINK, "dev", UPLINK_NODE_SIDE)
            _ip(
                node, "address", "add", f"{NODE_UPLINK6}/64",
                "dev", UPLINK_NODE_SIDE, "nodad",
            )  # fmt: skip
            _ip(node, "address", "add", f"{NODE_LAN6}/64", "dev", "br-lan", "nodad")
            _ip(node, "link", "set", UPLINK_NODE_SIDE, "up")
            _ip(node, "route", "replace", "default", "via", UPSTREAM_ADDRESS)
            subprocess.run(
                ["ip", "netns", "exec", node, "sysctl", "-qw",
                 "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"],
                check=True,
            )  # fmt: skip
        except BaseException:
            self.down()
            raise

    def start_server(self, namespace: str, name: str, ports: tuple[int, ...]) -> None:
        """Run the HTTP server in ``namespace``; returns once it listens."""
        process = subprocess.Popen(
            [
                "ip", "netns", "exec", namespace, sys.executable, "-P", str(SCRIPT),
                "serve", name, *map(str, ports),
            ],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self.processes.append(process)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10)
        if not ready or process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the {name} server did not start in {namespace}")

    def down(self) -> None:
        """Stop the processes started here and remove the namespace."""
        from portal.lab.internet import stop_processes

        stop_processes(self.processes)
        names = subprocess.run(
            ["ip", "-j", "netns", "list"], capture_output=True, text=True
        ).stdout
        if any(e.get("name") == self.namespace for e in json.loads(names or "[]")):
            _kill_namespace(self.namespace)


class ClientAgent:
    """A helper process in a client namespace that runs socket operations.

    Each call sends one JSON request and reads one JSON answer. Connections
    opened with :meth:`open` stay open in the agent between calls.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                namespace,
                sys.executable,
                "-P",
                str(SCRIPT),
                "agent",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = json.dumps({"op": op, **arguments}) + "\n"
        self.process.stdin.write(request.encode())
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the client agent in {self.namespace} died")
        return json.loads(line)

    def http_get(
        self, host: str, port: int = 80, path: str = "/", timeout: float = 3.0
    ) -> dict[str, Any]:
        """A GET on a new connection: ``ok``, ``body``, ``error``, ``elapsed``."""
        return self.call("get", host=host, port=port, path=path, timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


# -- the programs run inside namespaces ------------------------------------


def serve(name: str, ports: list[int]) -> None:
    """HTTP/1.1 server on every address (IPv4 and IPv6) of ``ports``."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/stream":
                self.send_response(200)
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                chunk = b"x" * 1024
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(0.02)
                return
            size = 0
            if self.path.startswith("/bytes/"):
                size = int(self.path.split("/")[2])
            host = self.headers.get("Host", "")
            body = f"{name} host={host} path={self.path}\n".encode()
            body += b"." * max(0, size - len(body))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class DualStack(ThreadingHTTPServer):
        address_family = socket.AF_INET6
        daemon_threads = True

        def server_bind(self) -> None:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            super().server_bind()

    servers = [DualStack(("::", port), Handler) for port in ports]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


def _read_response(sock: socket.socket, timeout: float) -> str:
    """Read one HTTP response (headers + Content-Length body) from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of the body")
        body += chunk
    return (head + b"\r\n\r\n" + body).decode(errors="replace")


def _request(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def _dns_query(name: str) -> bytes:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + labels + struct.pack("!HH", 1, 1)


def agent() -> None:
    """Serve JSON requests on stdin (see :class:`ClientAgent`)."""
    connections: dict[str, socket.socket] = {}
    streams: dict[str, dict[str, Any]] = {}

    def family(host: str) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in host else socket.AF_INET

    def connect(req: dict[str, Any]) -> socket.socket:
        sock = socket.socket(family(req["host"]), socket.SOCK_STREAM)
        sock.settimeout(req.get("timeout", 3.0))
        if req.get("source"):
            sock.bind((req["source"], 0))
        sock.connect((req["host"], req["port"]))
        return sock

    def stream_reader(key: str, sock: socket.socket) -> None:
        state = streams[key]
        sock.settimeout(30)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    state["error"] = "closed"
                    break
                state["bytes"] += len(chunk)
                state["last"] = time.monotonic()
        except OSError as error:
            state["error"] = f"{type(error).__name__}: {error}"
        finally:
            state["ended"] = time.monotonic()

    def tap(req: dict[str, Any]) -> dict[str, Any]:
        """POST the portal's Continue form, then open a new connection to
        ``poll_host`` every ``interval`` seconds until the upstream answers;
        both timed here, in the client's namespace, from the POST."""
        body = req["body"].encode()
        post = (
            f"POST {req['path']} HTTP/1.1\r\nHost: {req['host']}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        started = time.monotonic()
        with connect({"host": req["host"], "port": req.get("port", 80)}) as sock:
            sock.sendall(post)
            answer = _read_response(sock, 5.0)
        answered = time.monotonic() - started
        deadline = started + req.get("timeout", 5.0)
        attempts = 0
        last = ""
        while True:
            attempts += 1
            try:
                with connect({"host": req["poll_host"], "port": 80, "timeout": 1}) as s:
                    s.sendall(_request(req["poll_host"], "/"))
                    last = _read_response(s, 1.0)
                    if req["marker"] in last:
                        break
                    last = last.split("\r\n", 1)[0]
            except OSError as error:  # reset or refused: not through yet
                last = f"{type(error).__name__}: {error}"
            if time.monotonic() > deadline:
                raise TimeoutError(f"not through after {attempts} attempts ({last})")
            time.sleep(req.get("interval", 0.005))
        return {
            "status": answer.split("\r\n", 1)[0],
            "answered": answered,
            "reached": time.monotonic() - started,
            "attempts": attempts,
        }

    def handle(req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        if op == "get":
            with connect(req) as sock:
                sock.sendall(_request(req["host"], req.get("path", "/")))
                return {"body": _read_response(sock, req.get("timeout", 3.0))}
        if op == "connect":
            with connect(req):
                return {}
        if op == "open":
            connections[req["name"]] = connect(req)
            return {}
        if op == "request":
            sock = connections[req["name"]]
            sock.sendall(_request(req["host"], req.get("path", "/")))
            return {"body": _read_response(sock, req.get("timeout", 3.0))}
        if op == "tap":
            return tap(req)
        if op == "stream":
            sock = connect(req)
            sock.sendall(_request(req["host"], "/stream"))
            streams[req["name"]] = {
                "bytes": 0,
                "error": None,
                "ended": None,
                "last": None,
            }
            threading.Thread(
                target=stream_reader, args=(req["name"], sock), daemon=True
            ).start()
            return {}
        if op == "stream_status":
            state = dict(streams[req["name"]])
            now = time.monotonic()
            state["ended_ago"] = now - state["ended"] if state["ended"] else None
            return state
        if op == "dns":
            with socket.socket(family(req["host"]), socket.SOCK_DGRAM) as sock:
                sock.settimeout(req.get("timeout", 2.0))
                sock.connect((req["host"], req.get("port", 53)))
                sock.send(_dns_query(req["name"]))
                answer = sock.recv(4096)
                return {"id": answer[:2].hex(), "rcode": answer[3] & 0x0F}
        if op == "udp":
            with socket.socket(family(req["host"]), socket.SOCK_DGRAM) as sock:
                sock.settimeout(req.get("timeout", 2.0))
                sock.connect((req["host"], req["port"]))
                sock.send(b"hello")
                return {"answer": sock.recv(4096).hex()}
        raise ValueError(f"unknown operation {op}")

    for line in sys.stdin:
        req = json.loads(line)
        started = time.monotonic()
        try:
            answer = {"ok": True, **handle(req)}
        except Exception as error:  # every failure is an answer to report
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        answer["elapsed"] = time.monotonic() - started
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], [int(port) for port in sys.argv[3:]])
    elif sys.argv[1] == "agent":
        agent()
