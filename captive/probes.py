"""Operating systems' connectivity probes: who asks what, and the exact
"online" replies.

Phones and laptops decide whether a network "has Internet" by fetching a
known URL and comparing the answer byte for byte. The captive portal uses
that twice:

- a *held* client (not let through yet) must never get the online answer,
  so its system shows the portal sheet: it gets a redirect to the welcome
  page with ``Cache-Control: no-store`` and ``Connection: close``;
- an *authorised* client on a node without an uplink must get the exact
  online answer from the node itself, or the phone decides the network is
  useless and leaves it for mobile data (which, in a disaster, is not
  there either).

Telling the two apart needs no database and cannot be spoofed: the
firewall (:mod:`captive.firewall`) redirects every port-80 connection of a
held client, whatever its destination, to :data:`held_port` on the node,
keyed by MAC *and* IP in the kernel. nginx passes the port a request arrived
on (``X-Forwarded-Port``). So a request on the held port comes from a held
client; a probe arriving anywhere else came from a client the kernel lets
through (or from a node without the portal on), and gets the online answer.

Offline DNS: without an uplink nothing on the mesh resolves
``connectivitycheck.gstatic.com``. The node's dnsmasq answers the probe
hosts with :data:`OFFLINE_ADDRESS`, an address the node owns on its
loopback (``captive.apply_portal`` adds it). It must not be a private
(RFC 1918) address: Android treats a private answer for its probe host as
"no Internet". ``198.18.0.1`` is in the benchmarking block (RFC 2544), never
used on the Internet, so it hides no real host; babeld announces only the
node's own /32 and /24, so it never leaves the node, and every node can use
the same one. Windows also checks that ``dns.msftncsi.com`` resolves to
exactly ``131.107.255.255``, so that name gets that answer. The hosts go to
dnsmasq through an ``addn-hosts`` file (:data:`HOSTS_FILE`), empty when the
node is online (real DNS answers then), rewritten on a change of uplink and
re-read by dnsmasq on SIGHUP.

HTTPS probes (Android's second probe to ``www.google.com``) cannot be
answered offline: no node holds Google's certificate. Android then still
shows the network as connected from the HTTP probe.
"""

from __future__ import annotations

from dataclasses import dataclass

OFFLINE_ADDRESS = "198.18.0.1"
HOSTS_FILE = "/etc/byzantium/captive-probe-hosts"
# Windows' NCSI DNS probe must resolve to exactly this.
NCSI_DNS_HOST = "dns.msftncsi.com"
NCSI_DNS_ADDRESS = "131.107.255.255"

APPLE_SUCCESS = b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX_CANONICAL = (
    b'<meta http-equiv="refresh" '
    b'content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
)
NM_ONLINE = b"NetworkManager is online\n"


@dataclass(frozen=True)
class OnlineReply:
    """The exact answer a system expects when it is online."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()


ANDROID = OnlineReply(204)
APPLE = OnlineReply(200, APPLE_SUCCESS, "text/html")
WINDOWS_CONNECT = OnlineReply(200, b"Microsoft Connect Test")
WINDOWS_NCSI = OnlineReply(200, b"Microsoft NCSI")
FIREFOX_SUCCESS = OnlineReply(200, b"success\n")
FIREFOX_PAGE = OnlineReply(200, FIREFOX_CANONICAL, "text/html")
NETWORK_MANAGER = OnlineReply(
    200, NM_ONLINE, headers=(("X-NetworkManager-Status", "online"),)
)
FEDORA = OnlineReply(200, b"OK")
# Windows opens /redirect in a browser only when it found a portal; an
# authorised client that asks anyway goes to the venue page (see views).
WINDOWS_REDIRECT = "venue"

# Probe paths answered for any host (Android probes "any host" it is
# configured with; vendors change host names more often than paths).
PROBE_PATHS: dict[str, OnlineReply | str] = {
    "/generate_204": ANDROID,
    "/gen_204": ANDROID,
    "/hotspot-detect.html": APPLE,
    "/library/test/success.html": APPLE,
    "/connecttest.txt": WINDOWS_CONNECT,
    "/ncsi.txt": WINDOWS_NCSI,
    "/redirect": WINDOWS_REDIRECT,
    "/canonical.html": FIREFOX_PAGE,
    "/success.txt": FIREFOX_SUCCESS,
    "/check_network_status.txt": NETWORK_MANAGER,  # GNOME / Debian
    "/nm-check.txt": NETWORK_MANAGER,  # Arch
    "/nm": NETWORK_MANAGER,  # network-test.debian.org
}

# Probes whose path alone is too generic: matched by host and path.
HOST_PROBES: dict[tuple[str, str], OnlineReply] = {
    ("connectivity-check.ubuntu.com", "/"): OnlineReply(
        204, headers=(("X-NetworkManager-Status", "online"),)
    ),
    ("fedoraproject.org", "/static/hotspot.txt"): FEDORA,
}

# Hosts the node answers itself when offline (exact names).
PROBE_HOSTS: tuple[str, ...] = (
    "connectivitycheck.gstatic.com",
    "connectivitycheck.android.com",
    "clients1.google.com",
    "clients3.google.com",
    "www.google.com",
    "www.gstatic.com",
    "play.googleapis.com",
    "captive.apple.com",
    "www.apple.com",
    "www.appleiphonecell.com",
    "www.msftconnecttest.com",
    "www.msftncsi.com",
    "detectportal.firefox.com",
    "nmcheck.gnome.org",
    "network-test.debian.org",
    "connectivity-check.ubuntu.com",
    "ping.archlinux.org",
    "fedoraproject.org",
)


def probe_for(host: str | None, path: str) -> OnlineReply | str | None:
    """The online reply a probe for ``host`` + ``path`` expects, or None."""
    if host is not None:
        found = HOST_PROBES.get((host, path))
        if found is not None:
            return found
    return PROBE_PATHS.get(path)


def render_hosts_file(*, online: bool, address: str = OFFLINE_ADDRESS) -> str:
    """The ``addn-hosts`` file for dnsmasq: probe hosts -> the node when
    offline; nothing when online (real DNS answers)."""
    lines = [
        "# Connectivity-probe hosts, rendered by the captive portal; do not edit.",
    ]
    if online:
        lines.append("# The node is online: real DNS answers the probe hosts.")
    else:
        lines += [f"{address} {host}" for host in PROBE_HOSTS]
        lines.append(f"{NCSI_DNS_ADDRESS} {NCSI_DNS_HOST}")
    return "\n".join(lines) + "\n"
