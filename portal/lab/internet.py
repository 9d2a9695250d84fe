"""The lab's "Internet": one namespace behind the uplinks of gateway nodes.

:class:`Internet` adds to a running lab one namespace, ``<prefix>-inet``,
linked to each gateway node by a veth pair (``up0`` in the node,
``gw-<node>`` in the Internet). It owns documentation addresses only
(RFC 5737, never routed anywhere real):

- ``198.51.100.80``: an HTTP server (:func:`serve`, this file run with
  ``serve``) whose every answer names the address the request came from,
  so a test can tell which gateway's NAT carried it;
- ``198.51.100.53``: a DNS server (dnsmasq, its own files in the lab's
  folder) answering :data:`TEST_NAME` with the web server's address;
- per gateway ``nI`` a /28 out of 203.0.113.0/24: the Internet's router
  address (``.16*I+1``) and the node's uplink address (``.16*I+2``), which
  the gateway app itself puts on ``up0`` (static addressing), or which a
  DHCP server of the Internet hands out (``dhcp_nodes``, dnsmasq with DNS
  off), like a home router.

With ``stand_ins`` (what ``lab up --internet`` builds for ``make run``) it
also behaves like the Internet a node expects, so an operator can try the
gateway page with its defaults: the public resolvers and check targets the
gateway app knows (:data:`PUBLIC_STAND_INS`) are addresses of this
namespace's loopback, its DNS answers every name with the web server (and
``dns.msftncsi.com`` as Windows expects), and the web server gives the
operating systems' connectivity probes their exact online answers
(:func:`captive.probes.probe_for`). Those addresses exist only inside the
namespace: a packet to ``9.9.9.9`` from a lab node ends here, never on the
machine's own network.

The Internet has no route to the mesh (10/8): only masqueraded traffic can
get an answer, which is what proves the NAT. :meth:`Internet.cut` makes a
gateway's uplink die beyond the link (the carrier stays, as when a router's
own line fails) with a drop table in the Internet namespace;
:meth:`Internet.mend` brings it back. :func:`resolve_in` asks one DNS server
for one name from inside a namespace.

Lab equipment, not portal code: it runs programs itself (``subprocess``),
like the rest of the lab's test tooling. Its processes run in sessions of
their own, so they outlive the ``lab up`` command that started them;
:meth:`Internet.down` (and :meth:`portal.lab.Lab.down`, which knows the
namespace's name) ends every process inside the namespace and deletes it.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import os
import socket
import socketserver
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
REPO_DIR = SCRIPT.parents[2]
WEB_ADDRESS = "198.51.100.80"
DNS_ADDRESS = "198.51.100.53"
TEST_NAME = "www.example.test"
UPLINK = "up0"
CUT_TABLE = "byz_lab_cut"
NAMESPACE_SUFFIX = "inet"
# The gateway app's default check targets and fallback public resolvers
# (gateway.models.DEFAULT_CHECK_TARGETS, gateway.dns.PUBLIC_RESOLVERS),
# answered inside the Internet namespace. A test pins the two lists together.
PUBLIC_STAND_INS = ("9.9.9.9", "149.112.112.112", "1.1.1.1", "1.0.0.1", "8.8.8.8")
NCSI_DNS = ("dns.msftncsi.com", "131.107.255.255")
WEB_PID_FILE = "inet-web.pid"
DNS_PID_FILE = "inet-dnsmasq.pid"


def namespace_of(prefix: str) -> str:
    return f"{prefix}-{NAMESPACE_SUFFIX}"


def uplink_router(node_index: int) -> str:
    return str(ipaddress.IPv4Address("203.0.113.0") + 16 * node_index + 1)


def uplink_address(node_index: int) -> str:
    """The gateway node's uplink address with its prefix (a /28)."""
    return f"{ipaddress.IPv4Address('203.0.113.0') + 16 * node_index + 2}/28"


def _run(argv: list[str], *, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, input=stdin
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Internet:
    """The Internet namespace of a lab and its links to gateway nodes."""

    prefix: str
    folder: Path
    # node name ("n1") -> that node's namespace
    gateways: dict[str, str]
    # Gateways whose uplink the Internet also serves by DHCP (address
    # .16*I+2, router .16*I+1, DNS server DNS_ADDRESS), like a home router.
    dhcp_nodes: tuple[str, ...] = ()
    # Answer like the real Internet too (see the module's docstring).
    stand_ins: bool = False
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return namespace_of(self.prefix)

    def _ip(self, *args: str, check: bool = True) -> str:
        return _run(["ip", "-n", self.namespace, *args], check=check)

    def up(self) -> None:
        self.down()
        _run(["ip", "netns", "add", self.namespace])
        try:
            self._ip("link", "set", "lo", "up")
            local = [WEB_ADDRESS, DNS_ADDRESS]
            if self.stand_ins:
                local += PUBLIC_STAND_INS
            for address in local:
                self._ip("address", "add", f"{address}/32", "dev", "lo")
            for node, node_ns in self.gateways.items():
                index = int(node[1:])
                far = f"gw-{node}"
                _run(
                    ["ip", "link", "add", UPLINK, "netns", node_ns, "type", "veth",
                     "peer", "name", far, "netns", self.namespace]
                )  # fmt: skip
                router = uplink_router(index)
                self._ip("address", "add", f"{router}/28", "dev", far)
                self._ip("link", "set", far, "up")
            self.folder.mkdir(parents=True, exist_ok=True)
            web = ["serve", WEB_ADDRESS, str(self.folder / WEB_PID_FILE)]
            if self.stand_ins:
                web.append("--stand-ins")
            self._start(
                ["ip", "netns", "exec", self.namespace, sys.executable, "-P",
                 str(SCRIPT), *web]
            )  # fmt: skip
            self._start(self._dns_argv(local), wait_ready=False)
            for node in self.dhcp_nodes:
                self._start_dhcp(node)
            self._wait_dns()
        except BaseException:
            self.down()
            raise

    def _dns_argv(self, local: list[str]) -> list[str]:
        listen = [DNS_ADDRESS] + (list(PUBLIC_STAND_INS) if self.stand_ins else [])
        answers = [f"--address=/{TEST_NAME}/{WEB_ADDRESS}"]
        if self.stand_ins:
            answers = [
                f"--address=/{NCSI_DNS[0]}/{NCSI_DNS[1]}",
                f"--address=/#/{WEB_ADDRESS}",
            ]
        return [
            "ip", "netns", "exec", self.namespace, "dnsmasq",
            "--keep-in-foreground", "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", "--bind-interfaces",
            *[f"--listen-address={address}" for address in listen],
            *answers,
            f"--pid-file={self.folder / DNS_PID_FILE}",
            "--log-facility=-", "--log-queries",
        ]  # fmt: skip

    def _start(self, argv: list[str], *, wait_ready: bool = True) -> None:
        log = open(self.folder / f"inet-{len(self.processes)}.log", "wb")  # noqa: SIM115
        # A session of its own: the process outlives a `lab up` that exits,
        # and a Ctrl-C meant for `make run` reaches it only through `lab down`.
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if wait_ready else log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        if wait_ready:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if line != b"ready":
                raise RuntimeError(f"{argv[5:]} did not start in {self.namespace}")

    def _start_dhcp(self, node: str) -> None:
        index = int(node[1:])
        address = uplink_address(index).split("/")[0]
        self._start(
            ["ip", "netns", "exec", self.namespace, "dnsmasq",
             "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
             f"--interface=gw-{node}", "--bind-interfaces",
             f"--dhcp-range={address},{address},255.255.255.240,120",
             f"--dhcp-option=option:router,{uplink_router(index)}",
             f"--dhcp-option=option:dns-server,{DNS_ADDRESS}",
             f"--dhcp-leasefile={self.folder / f'dhcp-{node}.leases'}",
             f"--pid-file={self.folder / f'dhcp-{node}.pid'}",
             "--log-facility=-", "--log-dhcp"],
            wait_ready=False,
        )  # fmt: skip

    def _wait_dns(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if resolve_in(self.namespace, TEST_NAME, DNS_ADDRESS) == WEB_ADDRESS:
                return
            time.sleep(0.1)
        raise RuntimeError("the Internet's DNS server did not answer")

    def cut(self, node: str) -> None:
        """The uplink of ``node`` dies beyond the link (carrier stays)."""
        rules = (
            f"table ip {CUT_TABLE}\n"
            f"delete table ip {CUT_TABLE}\n"
            f"table ip {CUT_TABLE} {{\n"
            "\tchain prerouting {\n"
            "\t\ttype filter hook prerouting priority raw; policy accept;\n"
            f'\t\tiifname "gw-{node}" drop\n'
            "\t}\n"
            "}\n"
        )
        _run(["ip", "netns", "exec", self.namespace, "nft", "-f", "-"], stdin=rules)

    def mend(self) -> None:
        """Every uplink works again."""
        _run(
            ["ip", "netns", "exec", self.namespace, "nft", "delete", "table", "ip",
             CUT_TABLE],
            check=False,
        )  # fmt: skip

    def dns_log(self) -> str:
        logs = sorted(self.folder.glob("inet-*.log"))
        return "".join(p.read_text(errors="replace") for p in logs)

    def down(self) -> None:
        stop_processes(self.processes)
        remove_namespace(self.namespace)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process started by lab equipment, SIGKILL after 3 s;
    the list is emptied."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    processes.clear()


def remove_namespace(namespace: str) -> None:
    """Kill whatever runs in ``namespace`` and delete it (if it exists)."""
    listed = json.loads(_run(["ip", "-j", "netns", "list"], check=False) or "[]")
    if not any(entry.get("name") == namespace for entry in listed):
        return
    for pid in _run(["ip", "netns", "pids", namespace], check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            subprocess.run(["kill", "-9", pid], check=False)
    _run(["ip", "netns", "delete", namespace], check=False)


def resolve_in(namespace: str, name: str, server: str, timeout: float = 2.0) -> str:
    """The first A record ``server`` gives for ``name``, asked from inside
    ``namespace`` ('' when there is no answer)."""
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-P", str(SCRIPT),
         "resolve", name, server, str(timeout)],
        capture_output=True, text=True, check=False, timeout=timeout + 10,
    )  # fmt: skip
    return result.stdout.strip()


# -- the programs run inside namespaces -------------------------------------


def serve(address: str, pid_file: str, *, stand_ins: bool = False) -> None:
    """HTTP on ``address``:80; every answer names the peer's address.

    With ``stand_ins`` a connectivity probe (any host) gets the exact
    answer its system expects online, as the real probe servers give it.
    """
    probe_for = None
    if stand_ins:
        sys.path.insert(0, str(REPO_DIR))
        from captive.probes import OnlineReply, probe_for

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, body: bytes, content_type: str = "text/plain",
                  headers: tuple[tuple[str, str], ...] = ()) -> None:  # fmt: skip
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.startswith("/bytes/"):
                size = min(int(self.path.rsplit("/", 1)[1] or 0), 1 << 30)
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                chunk = b"x" * 65536
                while size > 0:
                    self.wfile.write(chunk[: min(size, len(chunk))])
                    size -= len(chunk)
                return
            if probe_for is not None:
                host = (self.headers.get("Host") or "").split(":")[0].lower()
                reply = probe_for(host or None, self.path.split("?")[0])
                if isinstance(reply, OnlineReply):
                    self._send(reply.status, reply.body, reply.content_type,
                               reply.headers)  # fmt: skip
                    return
            self._send(200, f"internet peer={self.client_address[0]}\n".encode())

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((address, 80), Handler)
    Path(pid_file).write_text(f"{os.getpid()}\n")
    print("ready", flush=True)
    sys.stdout.close()  # nobody reads it once `lab up` has exited
    server.serve_forever()


def _query(name: str) -> bytes:
    header = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + labels + struct.pack("!HH", 1, 1)


def _first_a(answer: bytes) -> str:
    count = struct.unpack("!H", answer[6:8])[0]
    offset = 12
    while answer[offset] != 0:  # the question's name
        offset += answer[offset] + 1
    offset += 5
    for _ in range(count):
        if answer[offset] & 0xC0 == 0xC0:
            offset += 2
        else:
            while answer[offset] != 0:
                offset += answer[offset] + 1
            offset += 1
        kind, _cls, _ttl, length = struct.unpack("!HHIH", answer[offset : offset + 10])
        offset += 10
        if kind == 1 and length == 4:
            return socket.inet_ntoa(answer[offset : offset + 4])
        offset += length
    return ""


def resolve_main(name: str, server: str, timeout: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((server, 53))
            sock.send(_query(name))
            print(_first_a(sock.recv(4096)))
        except OSError:
            print("")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], stand_ins="--stand-ins" in sys.argv[4:])
    elif sys.argv[1] == "resolve":
        resolve_main(sys.argv[2], sys.argv[3], float(sys.argv[4]))
