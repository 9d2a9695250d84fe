"""babeld.conf rendered from a :class:`~meshnet.state.MeshState`.

What the file says, and why:

- one ``interface`` line per enabled mesh interface, typed ``wired`` or
  ``wireless`` from its medium (babeld then picks the right link-quality
  estimation instead of guessing from the driver);
- ``redistribute`` allows exactly this node's own prefixes: its mesh /32 (a
  local address on ``lo``) and its client subnet (a connected route), plus
  the default route only while ``state.announce_default_route`` is set (the
  gateway app decides that), and then default routes from other gateways are
  not installed (``in ... deny``: the node uses its own uplink); every
  other local address and kernel route is
  denied, so a node never leaks a route it does not own into the mesh;
- optional HMAC authentication (RFC 8967, babeld 1.12's ``key id ... type
  hmac-sha256 value HEX`` and ``interface ... key ID``) with the key every
  node of the mesh shares;
- no split horizon (``default split-horizon false``): a node that switches
  to a route through the neighbour it had been announcing to tells that
  neighbour at once, so a stale route (a withdrawn gateway's default) does
  not linger until its hold time;
- the local socket is the read-only one (``local-path``): the dashboard
  reads neighbours and routes through it, nothing can reconfigure babeld.

babeld has no "check the configuration" flag. Two checks stand in for it:
:func:`check_config` (pure, before every write: only directives this module
writes, and the deny-everything-else tail) and :func:`check_with_babeld`
(the real parser: babeld started on the file in a scratch network namespace,
its exit code and error read back), which the tests run on every rendered
config.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _

from portal.host import validate
from portal.host.builders import babeld, netns, process
from portal.host.errors import HostError, InvalidValue
from portal.host.files import FileStore
from portal.host.runner import NamespaceRunner, Runner, SystemRunner

from .state import MeshState

# Node paths (FileStore paths) shared by every part of the portal.
CONFIG = "/etc/byzantium/babeld.conf"
# The line that makes a gateway announce its default route (others read it
# to tell what the running config announces).
ANNOUNCE_DEFAULT = "redistribute ip 0.0.0.0/0 le 0 allow"
PID_FILE = "/run/byzantium/babeld.pid"
SOCKET = "/run/byzantium/babeld.sock"
STATE_FILE = "/var/lib/byzantium/babeld.state"
LOG_FILE = "/var/log/byzantium/babeld.log"

BATMAN_INTERFACE = "bat0"
# The name babeld knows the shared key by (local to this file).
KEY_ID = "mesh"
_HEX_KEY = re.compile(r"^(?:[0-9a-fA-F]{2}){32,64}\Z")
MIN_PASSPHRASE = 8
MAX_KEY = 128

_MEDIUM_TYPE = {"wired": "wired", "ibss": "wireless", "mesh-point": "wireless"}

_DIRECTIVES = frozenset(
    {
        "local-path",
        "pid-file",
        "state-file",
        "log-file",
        "default",
        "key",
        "interface",
        "redistribute",
        "in",
    }
)
_FILE_DIRECTIVES = ("local-path", "pid-file", "state-file", "log-file")


@dataclass(frozen=True)
class BabelTuning:
    """Timers that differ between a real radio mesh and the lab.

    ``hello_interval`` None keeps babeld's own defaults (4 s on wireless, and
    longer on wired links), right for real radios; the lab's perfect veth
    links use 0.5 s so a mesh converges in seconds.
    """

    hello_interval: float | None = None


def babeld_wanted(state: MeshState) -> bool:
    """babeld runs when babel is the protocol and there is something to route."""
    return (
        state.protocol in ("babel", "batman-adv")
        and bool(state.mesh_address)
        and bool(state.mesh_interfaces)
    )


def hmac_key_hex(key: str) -> str:
    """The HMAC-SHA256 key babeld gets for the mesh's shared ``key``.

    A key given as 64 to 128 hex digits (32 to 64 bytes, what other Babel
    implementations are configured with) is used as it is; anything else is
    a passphrase, hashed with SHA-256, so every node typing the same words
    derives the same key and the words never appear in the file.
    """
    if _HEX_KEY.match(key or ""):
        return key.lower()
    if (
        not isinstance(key, str)
        or len(key) < MIN_PASSPHRASE
        or len(key) > MAX_KEY
        or not key.isprintable()
    ):
        raise InvalidValue(
            _(
                "The routing key must be %(minimum)s to %(maximum)s printable "
                "characters, without line breaks."
            )
            % {"minimum": MIN_PASSPHRASE, "maximum": MAX_KEY}
        )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _mesh_host(state: MeshState) -> ipaddress.IPv4Network:
    address = ipaddress.IPv4Address(validate.ipv4_address(state.mesh_address or ""))
    return ipaddress.IPv4Network(f"{address}/32")


def client_network(state: MeshState) -> ipaddress.IPv4Network | None:
    """The client subnet as a network, None when the node has none yet."""
    if not state.client_subnet:
        return None
    network = ipaddress.ip_network(validate.ip_network(state.client_subnet))
    if (
        not isinstance(network, ipaddress.IPv4Network)
        or not 8 <= network.prefixlen <= 30
    ):
        raise InvalidValue(
            _("%(value)s is not an IPv4 client subnet from /8 to /30.")
            % {"value": state.client_subnet}
        )
    return network


def render(
    state: MeshState, files: FileStore, tuning: BabelTuning | None = None
) -> str:
    """The text of babeld.conf for ``state``; paths are ``files``' real paths.

    Every value is validated first: a hostile interface name or address
    raises :class:`InvalidValue` and nothing is rendered.
    """
    tuning = tuning or BabelTuning()
    if state.protocol not in ("babel", "batman-adv"):
        raise InvalidValue(
            _("%(value)s is not a routing protocol.") % {"value": state.protocol[:20]}
        )
    mesh = _mesh_host(state)
    subnet = client_network(state)
    lines = [
        f"# babeld configuration of node {_safe_title(state.node_name)}, "
        "rendered by the portal; do not edit.",
        f"local-path {_real(files, SOCKET)}",
        f"pid-file {_real(files, PID_FILE)}",
        f"state-file {_real(files, STATE_FILE)}",
        f"log-file {_real(files, LOG_FILE)}",
    ]
    if tuning.hello_interval is not None:
        hello = validate.positive_seconds(tuning.hello_interval, maximum=600)
        lines.append(f"default hello-interval {hello:g}")
    # Without split horizon a node tells the neighbour it learnt a route from
    # when it switches to that neighbour's route, so the neighbour drops its
    # stale copy at once instead of after the hold time: with two gateways a
    # withdrawn default route is then replaced in about a second, not 15.
    lines.append("default split-horizon false")
    key_suffix = ""
    if state.babel_hmac_key:
        key = hmac_key_hex(state.babel_hmac_key)
        lines.append(f"key id {KEY_ID} type hmac-sha256 value {key}")
        key_suffix = f" key {KEY_ID}"
    links = [(i.name, i.medium) for i in state.mesh_interfaces]
    if state.protocol == "batman-adv" and links:
        # batman-adv joins the mesh links into one layer-2 segment; babeld
        # routes this node's prefixes across it.
        links = [(BATMAN_INTERFACE, "wired")]
    if not links:
        lines.append("# no mesh interface yet")
    for link_name, medium in links:
        name = validate.interface_name(link_name)
        kind = _MEDIUM_TYPE.get(medium)
        if kind is None:
            raise InvalidValue(
                _("%(value)s is not a medium a mesh link can use.")
                % {"value": medium[:20]}
            )
        lines.append(f"interface {name} type {kind}{key_suffix}")
    lines.append("# Announce only this node's own prefixes.")
    lines.append(f"redistribute local ip {mesh} allow")
    if subnet is not None:
        lines.append(f"redistribute ip {subnet} eq {subnet.prefixlen} allow")
    if state.announce_default_route:
        # A working gateway uses its own uplink: a default route learnt from
        # another gateway would fight the uplink's in the kernel table.
        lines.append("# This node is a gateway: ignore the others' default routes.")
        lines.append("in ip 0.0.0.0/0 le 0 deny")
        lines.append("# This node is a gateway: announce its default route.")
        lines.append(ANNOUNCE_DEFAULT)
        # `ip route add default via ...` leaves a route of protocol "boot",
        # which babeld skips unless the protocol is named.
        lines.append("redistribute ip 0.0.0.0/0 le 0 proto 3 allow")
    lines.append("redistribute local deny")
    lines.append("redistribute deny")
    text = "\n".join(lines) + "\n"
    check_config(text)
    return text


def _real(files: FileStore, node_path: str) -> str:
    return validate.absolute_path(str(files.path(node_path)))


def _safe_title(name: str) -> str:
    """The node name as a comment may show it (anything odd replaced)."""
    return re.sub(r"[^A-Za-z0-9._-]", "?", name or "")[:63] or "?"


def check_config(text: str) -> None:
    """Refuse a configuration with anything this module never writes.

    Each line must be a comment or start with a known directive, no line may
    open the read-write socket, and the last lines must deny every route not
    explicitly allowed.
    """
    directives = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for line in directives:
        word = line.split()[0]
        if word not in _DIRECTIVES:
            raise InvalidValue(f"babeld.conf: unknown directive {word!r}")
    if directives[-2:] != ["redistribute local deny", "redistribute deny"]:
        raise InvalidValue("babeld.conf must end by denying every other route")


def check_with_babeld(
    text: str, *, scratch: Path | None = None, system: Runner | None = None
) -> None:
    """Have babeld itself parse ``text``; raise :class:`HostError` if it refuses.

    babeld is started (``-D``) on a copy of the file whose socket, pid, state
    and log paths point into a scratch folder, inside a scratch network
    namespace holding only ``lo``: nothing of the real node is touched, and
    the interfaces named in the file need not exist. A file babeld cannot
    parse makes it exit at once with the line number; one it accepts leaves
    a running daemon (and its pid file), which is stopped again. Needs root.
    """
    system = system or SystemRunner()
    with tempfile.TemporaryDirectory(prefix="babeld-check-", dir=scratch) as folder:
        base = Path(folder)
        rewritten = []
        for line in text.splitlines():
            word = line.split(maxsplit=1)[0] if line.strip() else ""
            if word in _FILE_DIRECTIVES:
                line = f"{word} {base / word}"
            rewritten.append(line)
        config = base / "babeld.conf"
        config.write_text("\n".join(rewritten) + "\n")
        namespace = f"byzchk-{secrets.token_hex(4)}"
        system.run(netns.add(namespace))
        try:
            inside = NamespaceRunner(namespace)
            result = inside.run(babeld.check_start(config))
            if not result.ok:
                raise HostError(
                    _("babeld refused the configuration: %(reason)s")
                    % {"reason": (result.stderr or result.stdout).strip()[-300:]}
                )
            pid_file = base / "pid-file"
            deadline = time.monotonic() + 5
            pid = None
            while time.monotonic() < deadline:
                text_pid = pid_file.read_text().strip() if pid_file.exists() else ""
                if text_pid.isdigit():
                    pid = int(text_pid)
                    break
                time.sleep(0.02)
            if pid is None:
                log = base / "log-file"
                detail = log.read_text()[-300:] if log.exists() else ""
                raise HostError(
                    _("babeld did not start on the configuration: %(reason)s")
                    % {"reason": detail.strip() or _("no pid file")}
                )
            inside.run(process.send_signal(pid, "TERM"))
        finally:
            result = system.run(netns.pids(namespace))
            for word in result.stdout.split():
                if word.isdigit():
                    system.run(process.send_signal(int(word), "KILL"))
            system.run(netns.delete(namespace))
