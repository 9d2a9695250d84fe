"""The captive portal's firewall: one nft table, rendered from plain data.

Nothing here runs anything; :mod:`captive.firewall_ops` applies what these
functions render through the host layer. Everything lives in one table of
the ``inet`` family (``table inet byz_captive``), so turning the portal off
is deleting that table and nothing else.

Who is let through
------------------
A client is a MAC address and an IPv4 address together. Authorised clients
are elements of sets, never rules: the rule count is the same for one
client or fifty thousand, and a lookup costs the same (a hash).

- ``session`` (``ether_addr . ipv4_addr``): each element carries the hard
  session timeout. Packets only *look it up*, nothing refreshes it, so the
  kernel removes it when the session is over, whatever the client does.
- ``active`` (same key): each element carries the idle timeout, and every
  packet of an authorised client refreshes it (``update @active {...
  timeout IDLE}``). When the client is silent for longer than that, the
  kernel removes it.

A client is authorised only while it is in *both* sets. The refresh rule
runs only after both lookups matched, so a packet can never (re)create an
``active`` element for a client whose session is over or who was never let
through: ``update`` adds missing elements, which is why it must be guarded.
If a de-authorisation races with a packet already past the lookups, the
packet may leave a stray ``active`` element; without its ``session`` twin
it grants nothing and expires on its own.

No polling daemon exists: expiry is the kernel's own set garbage collection.

Spoofing: both sets are keyed by the MAC *and* the IP, so another MAC with an
authorised client's IP, or an authorised MAC with another IP, matches
nothing and is held like any new client (it gets the portal).

Per-client byte counters
------------------------
``traffic_up`` (``ether_addr . ipv4_addr``) and ``traffic_down``
(``ipv4_addr``) carry a ``counter`` per element and the same hard timeout as
the session, so counters disappear with the session they count. They are
separate from ``session`` because the NAT chain looks the session up too,
and a lookup updates an element's counter: counting there would count the
first packet of every connection twice. The download direction is keyed by
the IP alone: before the neighbour lookup the destination MAC of a
forwarded packet is not known. ``nft -j list table`` reads every counter of
every client in one call. Counters count one session: authorising again
starts them from zero.

Held clients (not authorised)
-----------------------------
- DHCP to the node is allowed;
- every port-53 packet, to any address, is redirected to the node's
  resolver (for authorised clients too, unless
  ``FirewallConfig.redirect_dns_of_authorised`` is off: an offline mesh
  answers the phones' probe hosts from the node's own resolver);
- TCP port 80 to any host is redirected to the portal's HTTP port on the
  node (``redirect``: the address of the interface the client came in on);
- DNS over TLS (853), TCP 443 and everything else is rejected at once (TCP
  reset, else ICMP administratively prohibited), never silently dropped, so
  a phone learns in milliseconds that it is behind a portal.

Blocked MACs are held whatever the sets say (they still get DHCP and the
portal page, which tells them). Always-allowed MACs pass without a session.

Connections opened while held
-----------------------------
A connection a held client opened (a phone's browser keeps its port-80
connection alive) was redirected to the portal, and its tracked flow keeps
that redirect. Authorising forgets those flows (``conntrack -D``), but only
after the sets changed: in between, tens of milliseconds in which the phone
already reaches the Internet on new connections, a request on the old one
would still land on the portal. So a let-through client's packet on a flow
that was redirected to the portal port (``ct status dnat``, reply from the
portal port) is reset, from the same nft transaction that let the client
through: the old connection can never get the portal page again, and the
browser opens a new one. The reset is sent from a prerouting filter chain
(priority -150), before the redirect rewrites the packet, so it already
names the host the phone asked for: a reset from the input hook would leave
from the portal's port without being translated back when the bridge's
netfilter hands it straight to the port (``br_netfilter``), and the phone
would ignore it and wait.

IPv6: blocked for clients, by design
------------------------------------
The mesh routes IPv4 (babel announces each node's IPv4 /32 and client /24)
and the node gives clients IPv4 only (DHCP, no router advertisements), so a
client has nothing but a link-local IPv6 address. Rather than hold IPv6 a
second way, no IPv6 packet from a client interface is forwarded, for any
client (authorised and always-allowed ones included), and IPv6 to the node
is limited to neighbour discovery; the rest is rejected at once (ICMPv6
administratively prohibited, TCP reset), so a dual-stack phone falls back to
IPv4 immediately and can never walk round the portal over IPv6.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from portal.host import validate
from portal.host.errors import HostError, InvalidValue

TABLE = "byz_captive"
FAMILY = "inet"
# Most clients one table holds; also the size of each set.
MAX_CLIENTS = 65536
# nft accepts timeouts up to ~49 days; an operator's session is far shorter.
MAX_TIMEOUT = 30 * 86400
DNS_PORT = 53
# The chain that resets redirected flows of let-through clients: after
# conntrack (-200), before the redirect is applied to a packet (dstnat, -100),
# so the reset carries the address the client asked for and needs no NAT.
HELD_FLOWS_PRIORITY = -150
DHCP_SERVER_PORT = 67

SESSION_SET = "session"
ACTIVE_SET = "active"
UP_SET = "traffic_up"
DOWN_SET = "traffic_down"
ALLOWED_SET = "allowed_macs"
BLOCKED_SET = "blocked_macs"
CLIENT_SETS = (SESSION_SET, ACTIVE_SET, UP_SET, DOWN_SET)

# What a client may send the node over IPv6: neighbour discovery and the
# multicast listener reports that go with it, so its link-local address
# works; nothing else.
_ICMPV6_ALLOWED = (
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "nd-router-solicit",
    "mld-listener-report",
    "mld2-listener-report",
)


def _seconds(value: int, what: str) -> int:
    validate.whole_number(value, minimum=1, maximum=MAX_TIMEOUT)
    return value


@dataclass(frozen=True)
class FirewallConfig:
    """What the table looks like: which interfaces, ports and timeouts.

    ``interfaces`` are the client interfaces the portal holds (a bridge such
    as ``br-lan``, a wireless interface ...). ``portal_port`` is the port of
    the portal's plain HTTP server on the node, where held clients' HTTP is
    redirected. Timeouts are whole seconds: ``session_timeout`` is the hard
    cap (and the default for new sessions), ``idle_timeout`` how long a
    silent client stays authorised.
    """

    interfaces: tuple[str, ...]
    portal_port: int
    session_timeout: int = 4 * 3600
    idle_timeout: int = 1800
    resolver_port: int = DNS_PORT
    redirect_dns_of_authorised: bool = True
    table: str = TABLE

    def __post_init__(self) -> None:
        interfaces = tuple(self.interfaces)
        if not interfaces:
            raise InvalidValue("the captive portal needs at least one interface")
        if len(set(interfaces)) != len(interfaces):
            raise InvalidValue("an interface is listed twice")
        object.__setattr__(
            self, "interfaces", tuple(validate.interface_name(i) for i in interfaces)
        )
        validate.port_number(self.portal_port)
        validate.port_number(self.resolver_port)
        _seconds(self.session_timeout, "session")
        _seconds(self.idle_timeout, "idle")
        validate.nft_identifier(self.table)


@dataclass(frozen=True)
class Client:
    """One client as the firewall knows it: its MAC and IPv4 address."""

    mac: str
    ip: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", validate.mac_address(self.mac))
        object.__setattr__(self, "ip", validate.ipv4_address(self.ip))

    @property
    def key(self) -> str:
        """The element key in nft syntax (``aa:bb:.. . 10.0.0.1``)."""
        return f"{self.mac} . {self.ip}"


@dataclass(frozen=True)
class ClientSession:
    """A client in the kernel's sets, as read back from nft.

    ``session_left``/``idle_left`` are the seconds until the kernel removes
    the element (None: not in that set). ``authorised`` is what the rules
    decide: in both sets.
    """

    mac: str
    ip: str
    session_timeout: int | None = None
    session_left: float | None = None
    idle_left: float | None = None
    bytes_up: int = 0
    packets_up: int = 0
    bytes_down: int = 0
    packets_down: int = 0

    @property
    def client(self) -> Client:
        return Client(mac=self.mac, ip=self.ip)

    @property
    def authorised(self) -> bool:
        return self.session_left is not None and self.idle_left is not None


@dataclass(frozen=True)
class FirewallState:
    """Everything the table holds besides its rules."""

    sessions: tuple[ClientSession, ...] = ()
    allowed_macs: frozenset[str] = field(default_factory=frozenset)
    blocked_macs: frozenset[str] = field(default_factory=frozenset)

    def session(self, mac: str, ip: str) -> ClientSession | None:
        for entry in self.sessions:
            if entry.mac == mac and entry.ip == ip:
                return entry
        return None

    @property
    def authorised(self) -> tuple[ClientSession, ...]:
        return tuple(entry for entry in self.sessions if entry.authorised)


# -- rendering -----------------------------------------------------------


def _quoted_interfaces(config: FirewallConfig) -> str:
    return "{ " + ", ".join(f'"{name}"' for name in config.interfaces) + " }"


def _element_lines(elements: Sequence[str], indent: str) -> str:
    return (",\n" + indent).join(elements)


def _set_block(
    name: str,
    key_type: str,
    *,
    flags: str | None,
    counter: bool,
    elements: Sequence[str],
) -> list[str]:
    lines = [f"\tset {name} {{", f"\t\ttype {key_type}", f"\t\tsize {MAX_CLIENTS}"]
    if flags:
        lines.append(f"\t\tflags {flags}")
    if counter:
        lines.append("\t\tcounter")
    if elements:
        indent = "\t\t\t"
        lines.append(f"\t\telements = {{\n{indent}{_element_lines(elements, indent)}")
        lines.append("\t\t}")
    lines.append("\t}")
    return lines


def _restored(seconds_left: float | None, timeout: int | None) -> str | None:
    """``timeout T expires E`` for an element carried over, or None if spent."""
    if seconds_left is None or seconds_left < 1 or not timeout:
        return None
    left = min(int(seconds_left), timeout)
    return f"timeout {timeout}s expires {left}s"


def _counter(packets: int, bytes_: int) -> str:
    return f"counter packets {int(packets)} bytes {int(bytes_)}"


def render_ruleset(config: FirewallConfig, state: FirewallState | None = None) -> str:
    """The whole table as one nft file that replaces any previous one.

    The file creates the table if it is missing, deletes it and defines it
    again: nft runs a file as one transaction, so the old table is replaced
    at once or (on any error) left exactly as it was. ``state`` carries
    clients, counters and MAC lists over: each element keeps the time it had
    left, so re-applying the table (new timeouts, a restart) neither
    extends nor cuts a session.
    """
    state = state or FirewallState()
    table = config.table
    session, active, up, down = [], [], [], []
    for entry in state.sessions:
        client = Client(mac=entry.mac, ip=entry.ip)
        timeout = entry.session_timeout or config.session_timeout
        kept = _restored(entry.session_left, timeout)
        if kept is None:
            continue
        session.append(f"{client.key} {kept}")
        up.append(f"{client.key} {_counter(entry.packets_up, entry.bytes_up)} {kept}")
        down.append(
            f"{client.ip} {_counter(entry.packets_down, entry.bytes_down)} {kept}"
        )
        idle = _restored(entry.idle_left, config.idle_timeout)
        if idle is not None:
            active.append(f"{client.key} {idle}")
    allowed = sorted(validate.mac_address(mac) for mac in state.allowed_macs)
    blocked = sorted(validate.mac_address(mac) for mac in state.blocked_macs)

    ifaces = _quoted_interfaces(config)
    key = "ether saddr . ip saddr"
    idle = config.idle_timeout
    authorised = (
        f"{key} @{SESSION_SET} {key} @{ACTIVE_SET} "
        f"update @{ACTIVE_SET} {{ {key} timeout {idle}s }} {key} @{UP_SET} accept"
    )
    dns = (
        f"meta nfproto ipv4 meta l4proto {{ tcp, udp }} th dport {DNS_PORT} "
        f"redirect to :{config.resolver_port}"
    )
    lines = [
        "# Byzantium captive portal: rendered by captive.firewall; do not edit.",
        f"table {FAMILY} {table} {{}}",
        f"delete table {FAMILY} {table}",
        f"table {FAMILY} {table} {{",
    ]
    lines += _set_block(
        SESSION_SET,
        "ether_addr . ipv4_addr",
        flags="timeout",
        counter=False,
        elements=session,
    )
    lines += _set_block(
        ACTIVE_SET,
        "ether_addr . ipv4_addr",
        flags="dynamic, timeout",
        counter=False,
        elements=active,
    )
    lines += _set_block(
        UP_SET, "ether_addr . ipv4_addr", flags="timeout", counter=True, elements=up
    )
    lines += _set_block(
        DOWN_SET, "ipv4_addr", flags="timeout", counter=True, elements=down
    )
    lines += _set_block(
        ALLOWED_SET, "ether_addr", flags=None, counter=False, elements=allowed
    )
    lines += _set_block(
        BLOCKED_SET, "ether_addr", flags=None, counter=False, elements=blocked
    )
    lines += [
        "",
        "\t# Held clients: DNS to the node's resolver, HTTP to the portal.",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        f"\t\tiifname != {ifaces} return",
    ]
    if config.redirect_dns_of_authorised:
        lines.append(f"\t\t{dns}")
    lines += [
        f"\t\tether saddr @{BLOCKED_SET} goto held_nat",
        f"\t\tether saddr @{ALLOWED_SET} return",
        f"\t\t{key} @{SESSION_SET} {key} @{ACTIVE_SET} return",
        "\t\tgoto held_nat",
        "\t}",
        "",
        "\t# A connection redirected to the portal while its client was held,",
        "\t# seen before the redirect is applied to it (after conntrack, before",
        "\t# dstnat): reset once the client is let through.",
        "\tchain held_flows {",
        "\t\ttype filter hook prerouting priority "
        f"{HELD_FLOWS_PRIORITY}; policy accept;",
        f"\t\tiifname != {ifaces} return",
        "\t\tmeta nfproto ipv4 meta l4proto tcp ct direction original ct status dnat "
        f"ct reply proto-src {config.portal_port} jump redirected_flow",
        "\t}",
        "",
        "\tchain redirected_flow {",
        f"\t\tether saddr @{BLOCKED_SET} return",
        f"\t\tether saddr @{ALLOWED_SET} reject with tcp reset",
        f"\t\t{key} @{SESSION_SET} {key} @{ACTIVE_SET} reject with tcp reset",
        "\t}",
        "",
        "\tchain held_nat {",
    ]
    if not config.redirect_dns_of_authorised:
        lines.append(f"\t\t{dns}")
    lines += [
        f"\t\tmeta nfproto ipv4 tcp dport 80 redirect to :{config.portal_port}",
        "\t}",
        "",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        f"\t\tiifname {ifaces} jump from_client",
        f"\t\toifname {ifaces} ip daddr @{DOWN_SET}",
        "\t}",
        "",
        "\t# Forwarded by the node: only authorised clients, IPv4 only.",
        "\tchain from_client {",
        "\t\tmeta nfproto ipv6 goto refuse",
        f"\t\tether saddr @{BLOCKED_SET} goto refuse",
        f"\t\tether saddr @{ALLOWED_SET} accept",
        f"\t\t{authorised}",
        "\t\tgoto refuse",
        "\t}",
        "",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        f"\t\tiifname {ifaces} jump to_node",
        "\t}",
        "",
        "\t# To the node itself: held clients reach DHCP, DNS and the portal.",
        "\tchain to_node {",
        "\t\tmeta nfproto ipv6 goto ipv6_to_node",
        f"\t\tether saddr @{BLOCKED_SET} goto held_to_node",
        f"\t\tether saddr @{ALLOWED_SET} accept",
        f"\t\t{authorised}",
        "\t\tgoto held_to_node",
        "\t}",
        "",
        "\tchain held_to_node {",
        f"\t\tudp dport {DHCP_SERVER_PORT} accept",
        f"\t\tmeta l4proto {{ tcp, udp }} th dport {config.resolver_port} accept",
        f"\t\ttcp dport {config.portal_port} accept",
        "\t\ticmp type echo-request accept",
        "\t\tgoto refuse",
        "\t}",
        "",
        "\tchain ipv6_to_node {",
        f"\t\ticmpv6 type {{ {', '.join(_ICMPV6_ALLOWED)} }} accept",
        "\t\tgoto refuse",
        "\t}",
        "",
        "\t# Refused at once, never dropped: the client learns it in a moment.",
        "\tchain refuse {",
        "\t\tmeta l4proto tcp reject with tcp reset",
        "\t\treject with icmpx admin-prohibited",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _unique(clients: Iterable[Client]) -> list[Client]:
    """The clients of one batch; an IP given to two MACs is refused."""
    result: list[Client] = []
    seen_ips: dict[str, str] = {}
    for client in clients:
        if not isinstance(client, Client):
            raise InvalidValue("expected a Client")
        other = seen_ips.get(client.ip)
        if other is not None:
            if other == client.mac:
                continue
            raise InvalidValue(
                f"{client.ip} is given to both {other} and {client.mac} in one batch"
            )
        seen_ips[client.ip] = client.mac
        result.append(client)
    if len(result) > MAX_CLIENTS:
        raise InvalidValue(f"at most {MAX_CLIENTS} clients fit in the table")
    return result


def _replace(table: str, name: str, plain: list[str], timed: list[str]) -> list[str]:
    """Add-or-replace elements: add (no-op when present), delete, add.

    nft 1.0.6 has no ``destroy``, and ``add`` leaves an existing element's
    timeout alone; adding, deleting and adding again in one transaction
    gives every element its fresh timeout whether it existed or not.
    """
    prefix = f"element {FAMILY} {table} {name}"
    body = ",\n\t".join(timed)
    keys = ",\n\t".join(plain)
    return [
        f"add {prefix} {{\n\t{body}\n}}",
        f"delete {prefix} {{\n\t{keys}\n}}",
        f"add {prefix} {{\n\t{body}\n}}",
    ]


def _remove(table: str, name: str, plain: list[str]) -> list[str]:
    """Delete elements whether present or not (add first, then delete)."""
    prefix = f"element {FAMILY} {table} {name}"
    keys = ",\n\t".join(plain)
    return [f"add {prefix} {{\n\t{keys}\n}}", f"delete {prefix} {{\n\t{keys}\n}}"]


def render_authorise(
    config: FirewallConfig,
    clients: Iterable[Client],
    *,
    session_timeout: int | None = None,
) -> str:
    """One nft batch that lets ``clients`` through, with fresh timeouts.

    The hard timeout is ``session_timeout`` (default: the configured one);
    the idle timeout is the configured one. Counters start from zero. The
    caller makes sure an IP is not still authorised for another MAC (DHCP
    gives each client its own address): the download counter is keyed by IP.
    """
    batch = _unique(clients)
    if not batch:
        return ""
    hard = _seconds(
        session_timeout if session_timeout is not None else config.session_timeout,
        "session",
    )
    idle = config.idle_timeout
    keys = [client.key for client in batch]
    ips = [client.ip for client in batch]
    table = config.table
    lines = ["# authorise"]
    lines += _replace(table, SESSION_SET, keys, [f"{k} timeout {hard}s" for k in keys])
    lines += _replace(table, ACTIVE_SET, keys, [f"{k} timeout {idle}s" for k in keys])
    lines += _replace(table, UP_SET, keys, [f"{k} timeout {hard}s" for k in keys])
    lines += _replace(table, DOWN_SET, ips, [f"{ip} timeout {hard}s" for ip in ips])
    return "\n".join(lines) + "\n"


def render_deauthorise(config: FirewallConfig, clients: Iterable[Client]) -> str:
    """One nft batch that removes ``clients`` from every client set."""
    batch = _unique(clients)
    if not batch:
        return ""
    keys = [client.key for client in batch]
    ips = [client.ip for client in batch]
    table = config.table
    lines = ["# deauthorise"]
    for name in (SESSION_SET, ACTIVE_SET, UP_SET):
        lines += _remove(table, name, keys)
    lines += _remove(table, DOWN_SET, ips)
    return "\n".join(lines) + "\n"


def render_mac_lists(
    config: FirewallConfig,
    *,
    allow: Iterable[str] = (),
    disallow: Iterable[str] = (),
    block: Iterable[str] = (),
    unblock: Iterable[str] = (),
) -> str:
    """One nft batch that edits the always-allowed and blocked MAC lists."""
    table = config.table
    lines: list[str] = []
    for name, macs, adding in (
        (ALLOWED_SET, allow, True),
        (ALLOWED_SET, disallow, False),
        (BLOCKED_SET, block, True),
        (BLOCKED_SET, unblock, False),
    ):
        keys = sorted({validate.mac_address(mac) for mac in macs})
        if not keys:
            continue
        if adding:
            body = ",\n\t".join(keys)
            lines.append(f"add element {FAMILY} {table} {name} {{\n\t{body}\n}}")
        else:
            lines += _remove(table, name, keys)
    return "\n".join(lines) + "\n" if lines else ""


# -- reading -------------------------------------------------------------


def _element_value(entry: Any) -> tuple[Any, dict[str, Any]]:
    """The key of one JSON set element and its attributes (timeout ...)."""
    if isinstance(entry, dict) and "elem" in entry:
        inner = entry["elem"]
        return inner.get("val"), inner
    return entry, {}


def _key(value: Any) -> tuple[str, ...]:
    if isinstance(value, dict) and "concat" in value:
        return tuple(str(part) for part in value["concat"])
    return (str(value),)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_state(json_text: str, *, table: str = TABLE) -> FirewallState:
    """Read ``nft -j list table inet TABLE`` into a :class:`FirewallState`.

    Raises :class:`HostError` when the text is not nft's JSON or lacks the
    table's sets (a table someone else made under our name).
    """
    try:
        document = json.loads(json_text)
        objects = document["nftables"]
    except (ValueError, KeyError, TypeError):
        raise HostError("nft did not answer with a JSON ruleset") from None
    sets: dict[str, list[Any]] = {}
    for item in objects:
        found = item.get("set") if isinstance(item, dict) else None
        if isinstance(found, dict) and found.get("table") == table:
            sets[found.get("name", "")] = list(found.get("elem", []))
    missing = [
        name for name in (*CLIENT_SETS, ALLOWED_SET, BLOCKED_SET) if name not in sets
    ]
    if missing:
        raise HostError(
            f"table {table} lacks the set(s) {', '.join(missing)}: not ours?"
        )

    sessions: dict[tuple[str, str], dict[str, Any]] = {}

    def slot(mac: str, ip: str) -> dict[str, Any]:
        return sessions.setdefault((mac, ip), {"mac": mac, "ip": ip})

    for entry in sets[SESSION_SET]:
        value, attrs = _element_value(entry)
        mac, ip = _key(value)
        timeout = _number(attrs.get("timeout"))
        record = slot(mac, ip)
        record["session_timeout"] = int(timeout) if timeout else None
        record["session_left"] = _number(attrs.get("expires"))
    for entry in sets[ACTIVE_SET]:
        value, attrs = _element_value(entry)
        mac, ip = _key(value)
        if (mac, ip) in sessions:
            sessions[(mac, ip)]["idle_left"] = _number(attrs.get("expires"))
    for entry in sets[UP_SET]:
        value, attrs = _element_value(entry)
        mac, ip = _key(value)
        if (mac, ip) in sessions:
            counter = attrs.get("counter") or {}
            sessions[(mac, ip)]["bytes_up"] = int(counter.get("bytes", 0))
            sessions[(mac, ip)]["packets_up"] = int(counter.get("packets", 0))
    down: dict[str, dict[str, Any]] = {}
    for entry in sets[DOWN_SET]:
        value, attrs = _element_value(entry)
        down[_key(value)[0]] = attrs.get("counter") or {}
    result = []
    for (_mac, ip), record in sorted(sessions.items(), key=lambda item: _sort(item[0])):
        counter = down.get(ip, {})
        record["bytes_down"] = int(counter.get("bytes", 0))
        record["packets_down"] = int(counter.get("packets", 0))
        result.append(ClientSession(**record))
    return FirewallState(
        sessions=tuple(result),
        allowed_macs=frozenset(
            _key(_element_value(e)[0])[0] for e in sets[ALLOWED_SET]
        ),
        blocked_macs=frozenset(
            _key(_element_value(e)[0])[0] for e in sets[BLOCKED_SET]
        ),
    )


def _sort(key: tuple[str, str]) -> tuple[int, str]:
    mac, ip = key
    return (int(ipaddress.IPv4Address(ip)), mac)
