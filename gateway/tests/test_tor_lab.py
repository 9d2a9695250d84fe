"""Tor gateway mode for real: a lab node, its client, an "Internet" behind it.

One lab per module: node n1 with client c1 on its bridge, and the upstream
namespace of :class:`captive.firewall_lab.Upstream` linked to n1 as its
uplink ``up0``, with an HTTP server on the documentation addresses of
"the Internet". A table of the test's own in the upstream namespace
counts every packet that arrives there from the client (IPv4 and IPv6),
so "the Internet never sees it" is read from the far end, not inferred.

Tor here is the real daemon (Debian's tor), started by :func:`apply_tor`
in n1's namespace through start-stop-daemon. There is no Internet, so it
never bootstraps; its TransPort accepts connections at once all the same,
which is what (c) checks: the client's connection to an Internet address
is established, n1's conntrack shows it answered from
``listen_address:trans_port``, and that port belongs to tor (no stand-in
listener). A ``.onion`` name resolves through tor's DNSPort to its
virtual network, and a connection there is tor's too. tor's own attempts
to reach the directory authorities die in the upstream namespace, which
has no route anywhere; nothing leaves the lab.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from captive.firewall_lab import (
    INTERNET_HOSTS,
    UPLINK_NODE_SIDE,
    UPSTREAM_ADDRESS6,
    ClientAgent,
    Upstream,
)
from gateway import tor
from portal.host.builders import nft
from portal.host.builders import tor as tor_builders
from portal.host.commands import CommandResult
from portal.host.node import Host
from services.catalogue import catalogue
from services.components import ConfigFilesComponent
from services.context import NodeNetwork, ServiceContext
from services.supervisors import StartStopDaemonSupervisor
from services.values import effective_settings, ensure_secrets

pytestmark = pytest.mark.lab

HOST = INTERNET_HOSTS[0]
CLIENT6 = "2001:db8:1::c1"
# A refusal must come back well under a second (a timeout would take 2-3 s).
FAST = 0.5
WATCH = """\
table inet tor_watch
delete table inet tor_watch
table inet tor_watch {
    chain seen {
        type filter hook prerouting priority raw; policy accept;
        ip saddr 10.213.0.0/16 meta l4proto tcp counter comment "tcp"
        ip saddr 10.213.0.0/16 meta l4proto udp counter comment "udp"
        ip saddr 10.213.0.0/16 meta l4proto icmp counter comment "icmp"
        ip6 saddr 2001:db8:1::/64 counter comment "ipv6"
    }
}
"""


class Bench:
    """The lab, the node's host, the client agent, the far end's counters."""

    def __init__(self, lab, upstream: Upstream) -> None:
        self.lab = lab
        self.upstream = upstream
        self.host: Host = lab.node_host("n1")
        self.agent = ClientAgent(lab.namespace("c1"))
        links = json.loads(self.run("c1", "ip", "-j", "-4", "address", "show", "eth0"))
        self.client_ip = links[0]["addr_info"][0]["local"]
        self.plan = tor.TorPlan(
            client_networks=("10.213.0.0/16",),
            listen_address="10.213.1.1",
            uplink_interface=UPLINK_NODE_SIDE,
            onion_services=(tor.OnionService("pad", 80, "10.213.1.1:8080"),),
        )

    def run(self, member: str, *argv: str, check: bool = True) -> str:
        result = self.lab.exec(member, list(argv), capture=True, timeout=15)
        if check:
            assert result.returncode == 0, result.stderr
        return result.stdout

    def far(self, *argv: str, check: bool = True) -> str:
        result = subprocess.run(
            ["ip", "netns", "exec", self.upstream.namespace, *argv],
            capture_output=True,
            text=True,
            timeout=15,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result.stdout

    def reset_watch(self) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.upstream.namespace, "nft", "-f", "-"],
            input=WATCH,
            text=True,
            check=True,
            timeout=15,
        )

    def seen(self) -> dict[str, int]:
        """Packets from the client that reached the Internet, by kind."""
        listing = json.loads(
            self.far("nft", "-j", "list", "table", "inet", "tor_watch")
        )
        counts = {}
        for item in listing["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            packets = [e["counter"]["packets"] for e in rule["expr"] if "counter" in e]
            counts[rule["comment"]] = packets[0]
        return counts

    def redirected_to_tor(self, destination: str) -> bool:
        """Whether n1 tracks a client flow to ``destination`` answered by tor.

        conntrack shows both halves: the client's original destination, and
        the reply coming from ``listen_address:trans_port``.
        """
        flows = self.run(
            "n1", "conntrack", "-L", "-p", "tcp", "--orig-dst", destination,
            check=False,
        )  # fmt: skip
        tor_side = (
            f"src={self.plan.listen_address} dst={self.client_ip} "
            f"sport={self.plan.trans_port}"
        )
        return any(
            f"src={self.client_ip} dst={destination}" in flow and tor_side in flow
            for flow in flows.splitlines()
        )

    def tor_sockets(self) -> str:
        """Established TCP connections to tor's TransPort, seen in n1."""
        port = self.plan.trans_port
        return self.run(
            "n1",
            "ss",
            "-Htn",
            "state",
            "established",
            "(",
            "sport",
            "=",
            f":{port}",
            ")",
        )


@pytest.fixture(scope="module")
def bench(make_module_lab) -> Iterator[Bench]:
    # No captive.firewall_lab.remove_stale() here: it judges upstream
    # namespaces against this checkout's labs only, so on a machine shared
    # by several checkouts it would remove another run's live "Internet".
    lab = make_module_lab(nodes=1, clients=1)
    upstream = Upstream(prefix=lab.prefix, node_namespace=lab.namespace("n1"))
    setup = None
    try:
        upstream.up()
        upstream.start_server(upstream.namespace, "upstream", (80, 443))
        setup = Bench(lab, upstream)
        setup.run("c1", "ip", "address", "add", f"{CLIENT6}/64", "dev", "eth0", "nodad")
        setup.run(
            "c1", "ip", "-6", "route", "replace", "default", "via", "2001:db8:1::1"
        )
        yield setup
    finally:
        if setup is not None:
            setup.agent.close()
            tor.remove_tor(setup.host)
        upstream.down()


# A well-formed v3 onion name (56 base32 characters); tor maps it at once.
ONION_NAME = "a" * 56 + ".onion"
RESOLVE = """
import socket, struct, sys
name, server, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
query = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
query += struct.pack("!HH", 1, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(3)
sock.sendto(query, (server, port))
answer = sock.recv(4096)
print(socket.inet_ntoa(answer[-4:]))
"""


def resolve_onion(bench: Bench, name: str) -> str:
    """An A query from the client straight to tor's DNSPort."""
    result = subprocess.run(
        [
            "ip", "netns", "exec", bench.lab.namespace("c1"), sys.executable,
            "-P", "-c", RESOLVE, name, bench.plan.listen_address,
            str(bench.plan.dns_port),
        ],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def namespace_programs(namespace: str) -> set[str]:
    """The executables of every process living in ``namespace``."""
    pids = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True
    ).stdout.split()
    programs = set()
    for pid in pids:
        try:
            programs.add(os.readlink(f"/proc/{pid}/exe"))
        except OSError:
            pass  # gone meanwhile
    return programs


def served_by(answer: dict) -> str | None:
    if not answer["ok"]:
        return None
    return answer["body"].split("\r\n\r\n", 1)[1].split(" ", 1)[0]


def direct_traffic_reaches_the_internet(bench: Bench) -> None:
    bench.reset_watch()
    bench.run("n1", "conntrack", "-F", check=False)
    assert served_by(bench.agent.http_get(HOST)) == "upstream"
    assert not bench.redirected_to_tor(HOST)
    assert served_by(bench.agent.http_get(UPSTREAM_ADDRESS6)) == "upstream"
    seen = bench.seen()
    assert seen["tcp"] > 0 and seen["ipv6"] > 0, seen


def test_tor_mode_end_to_end(bench):
    """(a)-(e) in order, on one lab: each step builds on the one before."""
    # Before Tor: the client reaches the Internet directly (the control).
    direct_traffic_reaches_the_internet(bench)

    started = time.monotonic()
    status = tor.apply_tor(bench.host, bench.plan)
    apply_seconds = time.monotonic() - started
    assert status.running and status.firewall_loaded, status
    # tor listens within the start timeout; bootstrap never completes here.
    assert apply_seconds < tor.START_TIMEOUT
    assert status.bootstrap_percent is None or status.bootstrap_percent < 100
    # The onion service has its address (keys made locally, no network).
    assert list(status.onion_hostnames) == ["pad"]
    assert status.onion_hostnames["pad"].endswith(".onion")

    # (a) the torrc in place passes tor's own check, run in the node.
    torrc = str(bench.host.files.path(tor.TORRC_PATH))
    assert bench.host.runner.run(tor_builders.verify_config(torrc)).ok
    assert bench.host.runner.run(
        nft.check_file(str(bench.host.files.path(tor.RULESET_PATH)))
    ).ok

    bench.reset_watch()
    # (b) + (c): a direct connection to an Internet host never reaches it;
    # it is established with tor's TransPort instead.
    opened = bench.agent.call("open", name="direct", host=HOST, port=80, timeout=3)
    assert opened["ok"], opened
    sockets = bench.tor_sockets()
    assert f"{bench.plan.listen_address}:{bench.plan.trans_port}" in sockets
    assert f"{bench.client_ip}:" in sockets
    assert bench.redirected_to_tor(HOST)
    owner = bench.run(
        "n1", "ss", "-Htlnp", "(", "sport", "=", f":{bench.plan.trans_port}", ")"
    )
    assert '"tor"' in owner, owner
    assert tor.TOR_EXECUTABLE in namespace_programs(bench.lab.namespace("n1"))
    # tor dropped root once its ports were open.
    pid = bench.host.files.read_text(tor.SUPERVISOR_PID_FILE).strip()
    with open(f"/proc/{pid}/status") as status_file:
        uids = next(line for line in status_file if line.startswith("Uid:"))
    assert set(uids.split()[1:]) == {str(pwd.getpwnam(tor.TOR_USER).pw_uid)}
    # An HTTP GET gets no answer from "upstream" (tor holds it: no circuit).
    assert served_by(bench.agent.http_get(HOST, timeout=1.0)) is None

    # (d) DNS to the Internet's resolver is answered by the node instead.
    dns = bench.agent.call("dns", host=HOST, name="example.org", timeout=2.0)
    assert dns["ok"], dns
    # So is DNS over TCP: it ends on the node (dnsmasq), not the far end.
    tcp_dns = bench.agent.call("connect", host=HOST, port=53, timeout=2.0)
    assert tcp_dns["ok"], tcp_dns
    # UDP (QUIC on 443 included) and ICMP to the Internet are refused fast.
    for port in (443, 5000):
        udp = bench.agent.call("udp", host=HOST, port=port, timeout=2.0)
        assert not udp["ok"] and udp["elapsed"] < FAST, udp
    ping = bench.run("c1", "ping", "-n", "-c", "1", "-W", "1", HOST, check=False)
    # iputils' words for ICMP "administratively prohibited".
    assert "Packet filtered" in ping, ping
    # IPv6 cannot walk round it: refused at once.
    six = bench.agent.http_get(UPSTREAM_ADDRESS6, timeout=3.0)
    assert not six["ok"] and six["elapsed"] < FAST, six
    # A .onion name resolves (through tor's DNSPort) to a virtual address,
    # and a connection to that address is tor's too.
    virtual = resolve_onion(bench, ONION_NAME)
    assert ipaddress.IPv4Address(virtual) in ipaddress.IPv4Network(tor.VIRTUAL_NETWORK)
    opened = bench.agent.call("open", name="onion", host=virtual, port=80, timeout=3)
    assert opened["ok"], opened
    assert bench.redirected_to_tor(virtual)
    # The far end saw nothing at all from the client.
    assert bench.seen() == {"tcp": 0, "udp": 0, "icmp": 0, "ipv6": 0}

    # Idempotent: the same plan again changes nothing and restarts nothing.
    pid = bench.host.files.read_text(tor.SUPERVISOR_PID_FILE)
    torrc_stat = bench.host.files.path(tor.TORRC_PATH).stat()
    again = tor.apply_tor(bench.host, bench.plan)
    assert again.running
    assert bench.host.files.read_text(tor.SUPERVISOR_PID_FILE) == pid
    assert bench.host.files.path(tor.TORRC_PATH).stat().st_mtime_ns == (
        torrc_stat.st_mtime_ns
    )

    # Keys survive a switch off and on: the same onion address after.
    onion = again.onion_hostnames["pad"]

    # (e) Off: no table, no tor of ours, and direct traffic as before.
    tor.remove_tor(bench.host)
    listing = subprocess.run(
        ["ip", "netns", "exec", bench.lab.namespace("n1"), "nft", "list", "tables"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "byz_tor" not in listing
    assert not tor.tor_status(bench.host).running
    assert '"tor"' not in bench.run("n1", "ss", "-Htlnp")
    assert tor.TOR_EXECUTABLE not in namespace_programs(bench.lab.namespace("n1"))
    direct_traffic_reaches_the_internet(bench)
    kept = bench.host.files.read_text(f"{tor.ONION_DIR}/pad/hostname")
    assert kept is not None and kept.strip() == onion
    assert bench.host.files.read_text(f"{tor.ONION_DIR}/pad/hostname").strip() == onion


def test_coexists_with_the_onion_chat_service(bench):
    """The services app's onion-chat tor and ours: neither touches the other.

    onion-chat is set up and started with the services app's own machinery
    (its config component, start-stop-daemon supervisor), in the same node.
    """
    entry = catalogue().get("onion-chat")
    secrets, _generated = ensure_secrets(entry, {})
    context = ServiceContext(
        entry=entry,
        host=bench.host,
        network=NodeNetwork(
            node_name="n1",
            client_addresses=("10.213.1.1",),
            mesh_addresses=("10.213.0.1",),
            client_interfaces=("br-lan",),
        ),
        settings=effective_settings(entry, {}),
        secrets=secrets,
    )
    supervisor = StartStopDaemonSupervisor(bench.host)
    daemon = entry.daemons[0]
    config = ConfigFilesComponent()
    config.setup(context)
    config.on(context)
    supervisor.start(context, daemon)
    try:
        deadline = time.monotonic() + 5
        while not supervisor.is_running(context, daemon):
            assert time.monotonic() < deadline, supervisor.log_tail(context, daemon)
            time.sleep(0.1)
        status = tor.apply_tor(bench.host, bench.plan)
        assert status.running
        assert supervisor.is_running(context, daemon)
        # Two tor processes, each with its own pid file and data folder.
        ours = bench.host.files.read_text(tor.SUPERVISOR_PID_FILE)
        theirs = open(supervisor.pidfile(context, daemon)).read()
        assert ours and theirs and ours != theirs
        assert not context.real("data_dir").startswith(
            str(bench.host.files.path(tor.DATA_DIR))
        )
        tor.remove_tor(bench.host)
        assert not tor.tor_status(bench.host).running
        assert supervisor.is_running(context, daemon)
        # And stopping onion-chat leaves a running gateway tor alone.
        tor.apply_tor(bench.host, bench.plan)
        supervisor.stop(context, daemon)
        assert tor.tor_status(bench.host).running
    finally:
        supervisor.stop(context, daemon)
        tor.remove_tor(bench.host)


RULESET_VARIANTS = {
    "lab": lambda plan: plan,
    "mesh-wide": lambda plan: replace(
        plan, client_networks=("10.0.0.0/9", "172.16.0.0/12", "192.168.0.0/16")
    ),
    "other-ports": lambda plan: replace(plan, trans_port=19040, dns_port=19053),
}
BROKEN = {
    "undefined-set": lambda text: text.replace("@clients return", "@nowhere return"),
    "bad-element": lambda text: text.replace("10.213.0.0/16", "10.213.0.0/33"),
    "syntax": lambda text: text.replace("reject with tcp reset", "reject with tcp"),
}


def _nft_check(bench: Bench, text: str) -> CommandResult:
    bench.host.files.write("/tmp/tor-check.nft", text, mode=0o600)
    try:
        path = str(bench.host.files.path("/tmp/tor-check.nft"))
        command = nft.check_file(path)
        return bench.host.runner.run(replace(command, check=False))
    finally:
        bench.host.files.remove("/tmp/tor-check.nft")


@pytest.mark.parametrize("variant", sorted(RULESET_VARIANTS))
def test_rendered_ruleset_passes_nft_check(bench, variant):
    plan = RULESET_VARIANTS[variant](bench.plan)
    result = _nft_check(bench, tor.render_tor_firewall(plan))
    assert result.ok, result.stderr


@pytest.mark.parametrize("damage", sorted(BROKEN))
def test_a_broken_ruleset_fails_nft_check(bench, damage):
    text = BROKEN[damage](tor.render_tor_firewall(bench.plan))
    assert text != tor.render_tor_firewall(bench.plan)
    result = _nft_check(bench, text)
    assert not result.ok
    assert "Error" in result.stderr
