"""What the captive jobs need of the node besides the nft table.

- who holds an address now (the kernel's neighbour table, ``ip -j neigh``),
  and the names phones gave in their DHCP requests (dnsmasq's lease file);
- offline probe answers: :data:`captive.probes.OFFLINE_ADDRESS` on the
  node's loopback and the probe-hosts file dnsmasq reads (SIGHUP re-reads
  it).

Plain functions over a :class:`~portal.host.node.Host`, so the jobs, the
lab tests and a dry run use the same code. Every command is an argv of an
allow-listed program with validated values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from portal.host import validate
from portal.host.builders import process
from portal.host.commands import Command
from portal.host.errors import HostError
from portal.host.node import Host

from . import probes

IP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Lease:
    """One line of dnsmasq's lease file."""

    mac: str
    ip: str
    hostname: str
    expires: int


def neighbour_command(ip: str) -> Command:
    """``ip -j neigh show to IP``: the MAC the kernel last saw use ``ip``."""
    return Command(
        ("ip", "-j", "neigh", "show", "to", validate.ipv4_address(ip)),
        timeout=IP_TIMEOUT,
    )


def parse_neighbour(text: str, ip: str) -> str | None:
    """The MAC of ``ip`` in ``ip -j neigh`` output (reachable, stale,
    delay or probe entries; not failed or incomplete ones)."""
    try:
        entries = json.loads(text or "[]")
    except ValueError:
        raise HostError("ip did not answer with JSON") from None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("dst") != ip:
            continue
        states = set(entry.get("state") or [])
        if states & {"FAILED", "INCOMPLETE"}:
            continue
        mac = entry.get("lladdr")
        if isinstance(mac, str):
            try:
                return validate.mac_address(mac)
            except Exception:  # noqa: BLE001, S112 - an odd entry is no answer
                continue
    return None


def mac_of(host: Host, ip: str) -> str | None:
    """The MAC using ``ip`` now, from the neighbour table, else the leases."""
    result = host.runner.run(neighbour_command(ip))
    if result.stdout:
        mac = parse_neighbour(result.stdout, ip)
        if mac:
            return mac
    for lease in read_leases(host):
        if lease.ip == ip:
            return lease.mac
    return None


def parse_leases(text: str) -> list[Lease]:
    """dnsmasq's lease file: ``EXPIRY MAC IP HOSTNAME CLIENT-ID`` lines."""
    leases = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        try:
            mac = validate.mac_address(parts[1])
            ip = validate.ipv4_address(parts[2])
            expires = int(parts[0])
        except Exception:  # noqa: BLE001, S112 - an unreadable line is skipped
            continue
        name = parts[3] if parts[3] != "*" else ""
        # A phone chooses its own name: keep it short and plain.
        name = "".join(c for c in name if c.isalnum() or c in "-_.")[:63]
        leases.append(Lease(mac=mac, ip=ip, hostname=name, expires=expires))
    return leases


def read_leases(host: Host) -> list[Lease]:
    from meshnet.dnsmasq_config import LEASE_FILE

    return parse_leases(host.files.read_text(LEASE_FILE) or "")


def offline_address_command() -> Command:
    """Put the offline probe address on the loopback (idempotent)."""
    return Command(
        ("ip", "address", "replace", f"{probes.OFFLINE_ADDRESS}/32", "dev", "lo"),
        timeout=IP_TIMEOUT,
    )


def set_probe_answers(host: Host, *, online: bool) -> bool:
    """Write the probe-hosts file; if it changed, make dnsmasq re-read it.

    Returns whether the file changed. dnsmasq is found by the pid file the
    mesh app gives it; without a running dnsmasq there is nothing to tell.
    """
    from meshnet.dnsmasq_config import PID_FILE

    host.runner.run(offline_address_command())
    text = probes.render_hosts_file(online=online)
    before = host.files.read_text(probes.HOSTS_FILE)
    if before == text:
        return False
    host.files.write(probes.HOSTS_FILE, text, mode=0o644)
    pid_text = (host.files.read_text(PID_FILE) or "").strip()
    if pid_text.isdigit():
        host.runner.run(process.send_signal(int(pid_text), "HUP"))
    return True
