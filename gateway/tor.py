"""Tor gateway mode: the mesh's clients reach the Internet only through Tor.

A plain module (no models): the gateway app builds a :class:`TorPlan` from
its desired state and calls :func:`apply_tor`, :func:`remove_tor` and
:func:`tor_status` with the :class:`~portal.host.node.Host` to act on
(``current_host()`` in a job, a lab node in the tests). The contract with
the rest of the gateway app is in ``docs/foundation.md`` ("Tor gateway
mode").

What runs
---------
- The gateway's own tor instance, a client only: no SOCKS, no relay, no
  exit, no control port. Its TransPort and DNSPort listen on
  ``listen_address`` (the node's client-side address), never on the
  uplink. ``.onion`` names resolve to addresses of a virtual network
  (:data:`VIRTUAL_NETWORK`) that tor maps back to the onion service.
  Each :class:`OnionService` gets a hidden service folder of its own; its
  keys live in tor's data folder and survive :func:`remove_tor`, so an
  onion address stays the same when Tor mode is switched off and on.
- One nft table, ``inet byz_tor`` (:func:`render_tor_firewall`): TCP from
  the client networks to the Internet is redirected to the TransPort, DNS
  to any resolver goes to the node's own, and everything else forwarded out
  of the uplink is rejected at once. Nothing from the clients ever leaves
  by the uplink except through tor.

Files (FileStore node paths; the lab keeps them under the node's root)
--------------------------------------------------------------------
- ``/etc/byzantium/tor/torrc`` and ``/etc/byzantium/tor/firewall.nft``
- ``/var/lib/byzantium/tor`` (DataDirectory, owned by ``debian-tor``;
  ``onion/<name>/`` inside it per onion service)
- ``/run/byzantium/tor/tor.pid`` (tor's own), ``supervised-tor.pid``
  (start-stop-daemon's) and ``started-torrc.sha256`` (the torrc it runs)
- ``/var/log/byzantium/tor/tor.log`` (tor's notices: bootstrap progress)
  and ``daemon.log`` (what tor printed before it opened its log)
- ``/etc/systemd/system/byzantium-tor-gateway.service`` on a real node

How tor is run
--------------
tor always starts as root and drops to ``debian-tor`` by itself (the
torrc's ``User``) once its ports are open, as under Debian's own
``tor@default`` unit: tor honours ``User`` only when started as root, and
``--verify-config`` checks the data folder's owner against that user, so
this is also what makes the check of the file that runs meaningful. Where
PID 1 is not systemd (the lab, CI), ``start-stop-daemon`` starts it
(:func:`portal.host.builders.tor.start_daemon`) through the host's runner,
so in the lab it runs inside the node's network namespace, as
:mod:`services.supervisors` runs the catalogue's daemons. On a real node a
generated systemd unit starts it. Either way tor is found by its pid file
*and* executable, so no other tor (the ``onion-chat`` service's, or the
distribution's ``tor.service``) is ever stopped or read by this module.

Coexisting with ``onion-chat``
------------------------------
The services catalogue's ``onion-chat`` entry publishes the mesh chat with
a tor instance of its own, which works with no gateway at all (an onion
service needs only outbound connections). The two instances share nothing:
its data, pid and log files are under ``.../services/onion-chat/``, ours
under ``.../tor/``; it opens no port (SocksPort 0, no TransPort, no
DNSPort), ours only TransPort and DNSPort on ``listen_address``; its keys
are its own, so the chat's onion address does not depend on Tor mode.
Running both costs one more tor process; in exchange switching either off
never disturbs the other.

Idempotence: applying the same plan twice writes nothing (unchanged
FileStore writes), restarts nothing and reloads no table. A tor running
with another torrc than the one in place (its SHA-256 is recorded at each
start) is restarted, so a job killed between writing and restarting is
completed by the next one; tor's data folder keeps the consensus, so it
bootstraps again in seconds. A changed ruleset replaces the table in one
nft transaction.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import pwd
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from portal.host import validate
from portal.host.builders import nft
from portal.host.builders import supervisor as supervisor_builders
from portal.host.builders import tor as tor_builders
from portal.host.errors import CommandFailed, InvalidValue
from portal.host.node import Host

TABLE = "byz_tor"
TOR_USER = "debian-tor"
TOR_EXECUTABLE = tor_builders.TOR_EXECUTABLE

CONFIG_DIR = "/etc/byzantium/tor"
TORRC_PATH = f"{CONFIG_DIR}/torrc"
RULESET_PATH = f"{CONFIG_DIR}/firewall.nft"
DATA_DIR = "/var/lib/byzantium/tor"
ONION_DIR = f"{DATA_DIR}/onion"
RUN_DIR = "/run/byzantium/tor"
PID_FILE = f"{RUN_DIR}/tor.pid"
SUPERVISOR_PID_FILE = f"{RUN_DIR}/supervised-tor.pid"
# The SHA-256 of the torrc the running tor was started with: a job killed
# between writing a new torrc and restarting tor is completed by the next.
STARTED_WITH = f"{RUN_DIR}/started-torrc.sha256"
LOG_DIR = "/var/log/byzantium/tor"
LOG_FILE = f"{LOG_DIR}/tor.log"
OUTPUT_FILE = f"{LOG_DIR}/daemon.log"
UNIT = "byzantium-tor-gateway.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"

# Addresses tor hands out for .onion names (AutomapHostsOnResolve). Not the
# 10.192.0.0/10 of tor's manual: the mesh lives in 10.0.0.0/8. RFC 6598's
# shared space is never a client network here (checked), and a packet to it
# is redirected to tor before any routing could send it to an uplink.
VIRTUAL_NETWORK = "100.64.0.0/10"
# The node's own resolver (dnsmasq) answers on this port of listen_address.
RESOLVER_PORT = 53
# How long a start may take before tor must be listening.
START_TIMEOUT = 20.0
# How long a just-started tor may be missing from its pid file.
START_GRACE = 3.0

MAX_CLIENT_NETWORKS = 32
MAX_ONION_SERVICES = 16
# Shortest prefix accepted as a client network: /0 or /4 would swallow the
# uplink's side of the Internet too.
MIN_PREFIX = 8

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,31})\Z")
_IPV4_TEXT = re.compile(r"^[0-9.]{7,15}\Z")
_CIDR_TEXT = re.compile(r"^[0-9.]{7,15}/[0-9]{1,2}\Z")
_TARGET_TEXT = re.compile(r"^([0-9.]{7,15}):([0-9]{1,5})\Z")
_BOOTSTRAP = re.compile(r"Bootstrapped (\d{1,3})%")


# -- the plan ------------------------------------------------------------------


@dataclass(frozen=True)
class OnionService:
    """A local service published on an onion address of its own."""

    name: str  # short slug [a-z0-9-]{1,32}: a services catalogue id
    virtual_port: int  # port on the .onion address
    target: str  # "IP:PORT" where the local service listens


@dataclass(frozen=True)
class TorPlan:
    """What Tor gateway mode needs to know about the node."""

    client_networks: tuple[str, ...]
    listen_address: str
    uplink_interface: str
    trans_port: int = 9040
    dns_port: int = 9053
    onion_services: tuple[OnionService, ...] = ()


@dataclass(frozen=True)
class TorStatus:
    """Tor gateway mode as read from the system, never from a stored flag."""

    running: bool
    bootstrap_percent: int | None
    onion_hostnames: dict[str, str] = field(default_factory=dict)
    # Addition to the contract: whether table inet byz_tor is loaded.
    firewall_loaded: bool = False


class TorProblem(Exception):
    """An expected failure of Tor gateway mode, in the operator's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)


class TorPlanInvalid(TorProblem, ValueError):
    """A field of the plan was refused; nothing was written or run."""


@dataclass(frozen=True)
class TorPaths:
    """The paths a torrc names, as the machine running tor sees them.

    On a real node these are the node paths themselves; in the lab they lie
    under the node's file root (:meth:`for_host`). Every path is checked,
    so a root folder with a space or a quote in it cannot reach the file.
    """

    data_dir: str = DATA_DIR
    onion_dir: str = ONION_DIR
    pid_file: str = PID_FILE
    log_file: str = LOG_FILE

    @classmethod
    def for_host(cls, host: Host) -> TorPaths:
        return cls(
            data_dir=_real(host, DATA_DIR),
            onion_dir=_real(host, ONION_DIR),
            pid_file=_real(host, PID_FILE),
            log_file=_real(host, LOG_FILE),
        )


def _real(host: Host, node_path: str) -> str:
    return str(host.files.path(node_path))


# -- validation ----------------------------------------------------------------


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _port(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise TorPlanInvalid(
            _("%(what)s must be a port number from 1 to 65535, not %(value)s.")
            % {"what": what, "value": _shown(value)}
        )
    return value


def _unicast_ipv4(value: object, what: str) -> ipaddress.IPv4Address:
    address = None
    if isinstance(value, str) and _IPV4_TEXT.fullmatch(value):
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError:
            address = None
    if address is None:
        raise TorPlanInvalid(
            _("%(what)s must be an IPv4 address such as 10.213.1.1, not %(value)s.")
            % {"what": what, "value": _shown(value)}
        )
    if (
        address.is_loopback
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or address == ipaddress.IPv4Address("255.255.255.255")
    ):
        raise TorPlanInvalid(
            _("%(what)s must be a unicast address of this node, not %(value)s.")
            % {"what": what, "value": value}
        )
    return address


def _client_network(value: object) -> ipaddress.IPv4Network:
    network = None
    if isinstance(value, str) and _CIDR_TEXT.fullmatch(value):
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError:
            network = None
    if network is None:
        raise TorPlanInvalid(
            _(
                "%(value)s is not an IPv4 network in CIDR form with no host "
                "bits set, such as 10.0.0.0/8."
            )
            % {"value": _shown(value)}
        )
    if network.prefixlen < MIN_PREFIX:
        raise TorPlanInvalid(
            _(
                "The client network %(value)s is too wide: use a prefix of "
                "/%(minimum)s or longer."
            )
            % {"value": value, "minimum": MIN_PREFIX}
        )
    if network.overlaps(ipaddress.IPv4Network(VIRTUAL_NETWORK)):
        raise TorPlanInvalid(
            _(
                "The client network %(value)s overlaps %(virtual)s, which Tor "
                "uses for .onion addresses."
            )
            % {"value": value, "virtual": VIRTUAL_NETWORK}
        )
    return network


def _onion_service(value: object, index: int) -> OnionService:
    if not isinstance(value, OnionService):
        raise TorPlanInvalid(
            _("Onion service %(number)s is not an onion service.")
            % {"number": index + 1}
        )
    if not isinstance(value.name, str) or not _SLUG.fullmatch(value.name):
        raise TorPlanInvalid(
            _(
                "%(value)s is not a valid onion service name (1 to 32 "
                "lower-case letters, digits or '-', not starting with '-')."
            )
            % {"value": _shown(value.name)}
        )
    _port(
        value.virtual_port,
        _("The onion port of %(name)s") % {"name": value.name},
    )
    match = (
        _TARGET_TEXT.fullmatch(value.target) if isinstance(value.target, str) else None
    )
    if match is None:
        raise TorPlanInvalid(
            _(
                "The target of %(name)s must be IP:PORT, such as "
                "10.213.1.1:6667, not %(value)s."
            )
            % {"name": value.name, "value": _shown(value.target)}
        )
    what = _("The target of %(name)s") % {"name": value.name}
    _unicast_ipv4(match.group(1), what)
    _port(int(match.group(2)), what)
    if match.group(2).startswith("0"):
        raise TorPlanInvalid(
            _("%(what)s must be a port number from 1 to 65535, not %(value)s.")
            % {"what": what, "value": _shown(match.group(2))}
        )
    return value


def validate_plan(plan: TorPlan) -> TorPlan:
    """Check every field; :class:`TorPlanInvalid` names the first bad one.

    Only the values' shapes are checked, never "escaped": a value that
    would need escaping in a torrc or an nft file is refused.
    """
    if not isinstance(plan, TorPlan):
        raise TorPlanInvalid(_("The Tor settings are missing."))
    networks = plan.client_networks
    if not isinstance(networks, (tuple, list)) or not networks:
        raise TorPlanInvalid(
            _("Name at least one client network whose traffic goes through Tor.")
        )
    if len(networks) > MAX_CLIENT_NETWORKS:
        raise TorPlanInvalid(
            _("At most %(count)s client networks can go through Tor.")
            % {"count": MAX_CLIENT_NETWORKS}
        )
    parsed = [_client_network(value) for value in networks]
    for index, network in enumerate(parsed):
        for other in parsed[index + 1 :]:
            if network.overlaps(other):
                raise TorPlanInvalid(
                    _("The client networks %(first)s and %(second)s overlap.")
                    % {"first": network, "second": other}
                )
    _unicast_ipv4(plan.listen_address, _("The address Tor listens on"))
    try:
        validate.interface_name(plan.uplink_interface)
    except InvalidValue as error:
        raise TorPlanInvalid(str(error)) from None
    _port(plan.trans_port, _("Tor's transparent proxy port"))
    _port(plan.dns_port, _("Tor's DNS port"))
    if plan.trans_port == plan.dns_port:
        raise TorPlanInvalid(
            _("Tor's transparent proxy port and DNS port must differ.")
        )
    if RESOLVER_PORT in (plan.trans_port, plan.dns_port):
        raise TorPlanInvalid(
            _("Port 53 belongs to the node's own resolver; choose another port.")
        )
    services = plan.onion_services
    if not isinstance(services, (tuple, list)):
        raise TorPlanInvalid(_("The onion services must be a list."))
    if len(services) > MAX_ONION_SERVICES:
        raise TorPlanInvalid(
            _("At most %(count)s onion services can be published.")
            % {"count": MAX_ONION_SERVICES}
        )
    names: set[str] = set()
    for index, service in enumerate(services):
        _onion_service(service, index)
        if service.name in names:
            raise TorPlanInvalid(
                _("The onion service %(name)s is listed twice.")
                % {"name": service.name}
            )
        names.add(service.name)
    return plan


# -- rendering -----------------------------------------------------------------


def _paths_checked(paths: TorPaths) -> TorPaths:
    try:
        for value in (paths.data_dir, paths.onion_dir, paths.pid_file, paths.log_file):
            validate.absolute_path(value)
    except InvalidValue as error:
        raise TorPlanInvalid(str(error)) from None
    return paths


def _plain_lines(text: str) -> str:
    """A last guard: every line printable ASCII (validation makes it so)."""
    for line in text.splitlines():
        if not line.isascii() or not line.isprintable():
            raise TorPlanInvalid(_("A Tor setting holds characters that are refused."))
    return text


def render_torrc(
    plan: TorPlan, *, paths: TorPaths | None = None, user: str | None = TOR_USER
) -> str:
    """The gateway's torrc; pure.

    ``paths`` defaults to the node paths of a real node; :func:`apply_tor`
    passes the host's (the lab's are under the node's root). ``user`` is
    the torrc's ``User``: tor always starts as root (it must, to honour
    ``User``) and drops to it once its ports are open; ``None`` leaves the
    line out, for a tor started as its own user by someone else.
    """
    validate_plan(plan)
    paths = _paths_checked(paths or TorPaths())
    listen = plan.listen_address
    lines = [
        "# Tor of the Byzantium gateway: the transparent proxy of the mesh's",
        "# clients. Rendered by the portal (gateway/tor.py); do not edit.",
        "# A client only: no SOCKS, no relay, no exit, no control port.",
        "SocksPort 0",
        "ORPort 0",
        "DirPort 0",
        "ControlPort 0",
        "ExitRelay 0",
        "ExitPolicy reject *:*",
        "ClientOnly 1",
        "# Only on the node's client-side address, never on the uplink.",
        f"TransPort {listen}:{plan.trans_port} IsolateClientAddr",
        f"DNSPort {listen}:{plan.dns_port} IsolateClientAddr",
        "# .onion names resolve to addresses tor maps back to the service.",
        f"VirtualAddrNetworkIPv4 {VIRTUAL_NETWORK}",
        "AutomapHostsOnResolve 1",
        "AutomapHostsSuffixes .onion",
        f"DataDirectory {paths.data_dir}",
        f"PidFile {paths.pid_file}",
        f"Log notice file {paths.log_file}",
        "SafeLogging 1",
        "AvoidDiskWrites 1",
    ]
    if user is not None:
        try:
            supervisor_builders.user_name(user)
        except InvalidValue as error:
            raise TorPlanInvalid(str(error)) from None
        lines.append(f"User {user}")
    for service in plan.onion_services:
        lines += [
            "",
            f"# Onion service {service.name}",
            f"HiddenServiceDir {paths.onion_dir}/{service.name}",
            "HiddenServiceVersion 3",
            f"HiddenServicePort {service.virtual_port} {service.target}",
        ]
    return _plain_lines("\n".join(lines) + "\n")


def render_tor_firewall(plan: TorPlan) -> str:
    """The ruleset of table ``inet byz_tor``; pure. Replaces the table whole.

    - ``prerouting`` (nat, after the captive portal's redirects, so a held
      client still gets the portal): IPv4 from the client networks, arriving
      on any interface but the uplink. DNS (udp and tcp 53) to any address
      but the node's own goes to the node's resolver on ``listen_address``;
      other traffic to the node stays local; TCP to a ``.onion`` virtual
      address, or to anywhere outside the client networks (the Internet),
      goes to tor's TransPort. Traffic inside the mesh is not touched.
    - ``forward`` (filter): whatever still leaves by the uplink from another
      interface is rejected at once (TCP reset, else ICMP administratively
      prohibited): UDP, QUIC, ICMP, IPv6, other sources. Nothing is dropped
      silently, so applications fail fast instead of hanging.
    """
    validate_plan(plan)
    uplink = plan.uplink_interface
    listen = plan.listen_address
    networks = ", ".join(
        str(ipaddress.IPv4Network(value)) for value in plan.client_networks
    )
    text = f"""\
# Tor gateway mode of the Byzantium portal (gateway/tor.py); do not edit.
table inet {TABLE}
delete table inet {TABLE}

table inet {TABLE} {{
    set clients {{
        type ipv4_addr
        flags interval
        elements = {{ {networks} }}
    }}

    chain prerouting {{
        type nat hook prerouting priority dstnat + 10; policy accept;
        iifname "{uplink}" return
        meta nfproto != ipv4 return
        ip saddr != @clients return
        fib daddr type != local meta l4proto {{ tcp, udp }} th dport 53 \
dnat ip to {listen}:{RESOLVER_PORT}
        fib daddr type local return
        ip daddr {VIRTUAL_NETWORK} meta l4proto tcp \
dnat ip to {listen}:{plan.trans_port}
        ip daddr @clients return
        meta l4proto tcp dnat ip to {listen}:{plan.trans_port}
    }}

    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{uplink}" return
        oifname != "{uplink}" return
        meta l4proto tcp reject with tcp reset
        reject with icmpx type admin-prohibited
    }}
}}
"""
    return _plain_lines(text)


def render_unit(torrc: str = TORRC_PATH) -> str:
    """The systemd unit of a real node: tor starts as root, drops to its user.

    The same sandbox Debian's ``tor@default`` unit uses: only the
    capabilities tor needs to open its ports and switch user.
    """
    argv = " ".join((TOR_EXECUTABLE, *tor_builders.daemon_args(torrc)))
    return "\n".join(
        [
            "# Written by the Byzantium portal (gateway/tor.py); do not edit.",
            "[Unit]",
            "Description=Byzantium gateway Tor (transparent proxy of the mesh)",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={argv}",
            "KillSignal=SIGINT",
            "TimeoutStopSec=30",
            "Restart=on-failure",
            "RestartSec=5",
            "LimitNOFILE=8192",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "ProtectHome=yes",
            "ProtectSystem=full",
            f"ReadWritePaths={DATA_DIR} {RUN_DIR} {LOG_DIR}",
            "CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_NET_BIND_SERVICE "
            "CAP_DAC_READ_SEARCH",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


# -- the host ------------------------------------------------------------------


def _uses_systemd(host: Host) -> bool:
    from services.supervisors import systemd_is_pid1

    return host.mode == "system" and systemd_is_pid1()


def _tor_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(TOR_USER)
    except KeyError:
        raise TorProblem(
            _("The system user %(user)s does not exist: install the tor package.")
            % {"user": TOR_USER}
        ) from None
    return entry.pw_uid, entry.pw_gid


def _prepare_folders(host: Host) -> None:
    """tor's folders, owned by its user; the log file too, so a restart
    after tor dropped privileges can still append to it."""
    changes_system = host.mode != "dry-run" and os.geteuid() == 0
    ids = _tor_ids() if changes_system else None
    for node_path, mode in (
        (CONFIG_DIR, 0o755),
        (DATA_DIR, 0o700),
        (ONION_DIR, 0o700),
        (RUN_DIR, 0o750),
        (LOG_DIR, 0o750),
    ):
        folder = host.files.path(node_path)
        folder.mkdir(parents=True, exist_ok=True)
        if ids is not None:
            os.chmod(folder, mode)
            if node_path != CONFIG_DIR:
                os.chown(folder, *ids)
    log = host.files.path(LOG_FILE)
    if not log.exists():
        log.touch(mode=0o640)
    if ids is not None:
        os.chown(log, *ids)


def _check_torrc(host: Host, text: str, previous: bytes | None) -> bool:
    """Write the torrc, have tor check it; put the old one back if refused."""
    changed = host.files.write(TORRC_PATH, text, mode=0o640)
    real = _real(host, TORRC_PATH)
    if host.mode != "dry-run" and os.geteuid() == 0:
        os.chown(real, 0, _tor_ids()[1])
    result = host.runner.run(tor_builders.verify_config(real))
    if result.ok:
        return changed
    if changed:
        _put_back(host, TORRC_PATH, previous, mode=0o640)
    raise TorProblem(
        _("tor refused the new configuration: %(output)s")
        % {"output": _refusal(result.stdout + result.stderr)}
    )


def _refusal(output: str) -> str:
    """tor's reasons ([warn] and [err] lines), short."""
    lines = [
        line for line in output.splitlines() if "[warn]" in line or "[err]" in line
    ]
    return "\n".join(lines or output.strip().splitlines()[-3:])[-600:]


def _table_loaded(host: Host) -> bool:
    try:
        host.runner.run(nft.list_table(TABLE))
    except CommandFailed as error:
        if "No such file or directory" in getattr(error.result, "stderr", ""):
            return False
        raise
    return True


def _apply_firewall(host: Host, text: str) -> bool:
    """Write, check and load the table; True when nft loaded something."""
    previous = host.files.read_bytes(RULESET_PATH)
    changed = host.files.write(RULESET_PATH, text, mode=0o600)
    real = _real(host, RULESET_PATH)
    try:
        host.runner.run(nft.check_file(real))
    except CommandFailed as error:
        if changed:
            _put_back(host, RULESET_PATH, previous, mode=0o600)
        raise TorProblem(
            _("nft refused the Tor firewall: %(output)s")
            % {"output": getattr(error.result, "stderr", str(error))[-600:]}
        ) from None
    if not changed and (host.mode == "dry-run" or _table_loaded(host)):
        return False
    host.runner.run(nft.apply_file(real))
    return True


def _is_running(host: Host) -> bool:
    if _uses_systemd(host):
        command = supervisor_builders.systemctl_is_active(UNIT)
    else:
        command = supervisor_builders.daemon_status(
            pidfile=_real(host, SUPERVISOR_PID_FILE), program=TOR_EXECUTABLE
        )
    result = host.runner.run(command)
    return result.returncode == 0 and not result.timed_out


def _stop(host: Host) -> None:
    if _uses_systemd(host):
        if host.files.exists(UNIT_PATH):
            host.runner.run(supervisor_builders.systemctl("stop", UNIT))
        return
    host.runner.run(
        supervisor_builders.stop_daemon(
            pidfile=_real(host, SUPERVISOR_PID_FILE), program=TOR_EXECUTABLE
        )
    )


def _start(host: Host) -> None:
    torrc = _real(host, TORRC_PATH)
    if _uses_systemd(host):
        if host.files.write(UNIT_PATH, render_unit(torrc), mode=0o644):
            host.runner.run(supervisor_builders.systemctl_daemon_reload())
        host.runner.run(supervisor_builders.systemctl("start", UNIT))
        return
    host.runner.run(
        tor_builders.start_daemon(
            pidfile=_real(host, SUPERVISOR_PID_FILE),
            torrc=torrc,
            chdir=_real(host, DATA_DIR),
            output=_real(host, OUTPUT_FILE),
        )
    )


def _listening_lines(plan: TorPlan) -> tuple[str, str]:
    listen = plan.listen_address
    return (
        f"Opened Transparent pf/netfilter listener connection (ready) on "
        f"{listen}:{plan.trans_port}",
        f"Opened DNS listener connection (ready) on {listen}:{plan.dns_port}",
    )


def _wait_listening(host: Host, plan: TorPlan, *, timeout: float) -> None:
    """Return once tor has opened both ports; :class:`TorProblem` if it died.

    start-stop-daemon returns before its child wrote the pid file, so a
    tor not (yet) found running counts as dead only after a grace period,
    or at once when tor logged an error.
    """
    if host.mode == "dry-run":
        return
    wanted = _listening_lines(plan)
    started = time.monotonic()
    while True:
        log = host.files.read_text(LOG_FILE) or ""
        output = host.files.read_text(OUTPUT_FILE) or ""
        if all(line in log for line in wanted):
            return
        waited = time.monotonic() - started
        failed = "[err]" in log or "[err]" in output
        alive = _is_running(host)
        if failed or waited > timeout or (not alive and waited > START_GRACE):
            reason = _refusal(log[-4000:] + "\n" + output[-2000:])
            if alive:
                _stop(host)
            raise TorProblem(
                _("tor did not open its ports on %(address)s: %(reason)s")
                % {"address": plan.listen_address, "reason": reason}
            )
        time.sleep(0.1)


def apply_tor(
    host: Host, plan: TorPlan, *, start_timeout: float = START_TIMEOUT
) -> TorStatus:
    """Switch Tor gateway mode on (or bring it to ``plan``); idempotent.

    Order: validate and render everything first (a bad value changes
    nothing), check the torrc with tor and the ruleset with nft (either
    refused: both files are put back), load the table first (from then on
    nothing leaks, even before tor listens), then start tor, or restart it
    if it runs with another torrc than this one (:data:`STARTED_WITH`). An
    unchanged plan changes nothing and restarts nothing.
    """
    paths = TorPaths.for_host(host)
    torrc = render_torrc(plan, paths=paths)
    ruleset = render_tor_firewall(plan)
    _prepare_folders(host)
    previous = host.files.read_bytes(TORRC_PATH)
    torrc_changed = _check_torrc(host, torrc, previous)
    try:
        _apply_firewall(host, ruleset)
    except TorProblem:
        if torrc_changed:
            _put_back(host, TORRC_PATH, previous, mode=0o640)
        raise
    digest = hashlib.sha256(torrc.encode()).hexdigest()
    running = _is_running(host)
    if running and host.files.read_text(STARTED_WITH) != digest:
        _stop(host)
        running = False
    if not running:
        # Fresh logs per start: the bootstrap progress read from them is
        # this run's, and so are the ports opened and the errors seen.
        host.files.write(LOG_FILE, "", mode=0o640)
        host.files.write(OUTPUT_FILE, "", mode=0o640)
        _prepare_folders(host)
        _start(host)
        _wait_listening(host, plan, timeout=start_timeout)
        host.files.write(STARTED_WITH, digest, mode=0o644)
    return tor_status(host)


def _put_back(host: Host, node_path: str, previous: bytes | None, *, mode: int) -> None:
    if previous is None:
        host.files.remove(node_path)
    else:
        host.files.write(node_path, previous, mode=mode)


def remove_tor(host: Host) -> None:
    """Stop the gateway's tor and delete table ``inet byz_tor``, nothing else.

    tor stops first, the table goes last, so no client packet slips out
    unproxied in between. The torrc and ruleset files go too; tor's data
    folder stays (its onion keys, so addresses survive a switch off and on).
    """
    _stop(host)
    result = host.runner.run(nft.delete_table(TABLE, missing_ok=True))
    if not result.ok and "No such file or directory" not in result.stderr:
        raise TorProblem(
            _("nft could not delete the Tor firewall: %(output)s")
            % {"output": result.stderr[-600:]}
        )
    host.files.remove(TORRC_PATH)
    host.files.remove(RULESET_PATH)
    host.files.remove(STARTED_WITH)


def _bootstrap_percent(log: str | None) -> int | None:
    if not log:
        return None
    found = _BOOTSTRAP.findall(log)
    return min(100, int(found[-1])) if found else None


def _onion_hostnames(host: Host, torrc: str | None) -> dict[str, str]:
    """Each published service's onion address, read from tor's files."""
    names: dict[str, str] = {}
    for line in (torrc or "").splitlines():
        if not line.startswith("HiddenServiceDir "):
            continue
        name = line.rsplit("/", 1)[-1]
        if not _SLUG.fullmatch(name):
            continue
        hostname = host.files.read_text(f"{ONION_DIR}/{name}/hostname")
        if hostname and re.fullmatch(r"[a-z2-7]{56}\.onion\s*", hostname):
            names[name] = hostname.strip()
    return names


def bootstrap_progress(host: Host) -> int | None:
    """How far the running tor has bootstrapped (0 before its first log
    line); None when tor does not run. The uplink check's light read: one
    status command and the log, none of :func:`tor_status`'s nft listing."""
    if not _is_running(host):
        return None
    return _bootstrap_percent(host.files.read_text(LOG_FILE)) or 0


def tor_status(host: Host) -> TorStatus:
    """Whether the gateway's tor runs, how far it bootstrapped, its onions."""
    running = _is_running(host)
    try:
        loaded = host.mode != "dry-run" and _table_loaded(host)
    except CommandFailed:
        loaded = False
    return TorStatus(
        running=running,
        bootstrap_percent=_bootstrap_percent(host.files.read_text(LOG_FILE))
        if running
        else None,
        onion_hostnames=_onion_hostnames(host, host.files.read_text(TORRC_PATH)),
        firewall_loaded=loaded,
    )


def status_summary(status: TorStatus) -> dict[str, Any]:
    """JSON-able form of a status (for a job's summary)."""
    return {
        "running": status.running,
        "bootstrap_percent": status.bootstrap_percent,
        "onion_hostnames": dict(status.onion_hostnames),
        "firewall_loaded": status.firewall_loaded,
    }
