"""The script dhclient runs on lab clients, instead of /sbin/dhclient-script.

Why our own script: Debian's dhclient-script rewrites ``/etc/resolv.conf``
(and runs every hook under /etc/dhcp), and inside ``ip netns exec`` the
machine's /etc is the namespace's /etc, so a lab client would change the
DNS servers of the developer's own computer. This hook does only what a
phone does with a lease, and only inside the client's namespace:

- sets the leased address on the interface and the default route via the
  router the lease names (through the host layer's argv builders);
- writes the offered DNS servers to ``/etc/netns/<namespace>/resolv.conf``,
  a file the lab created and owns; ``ip netns exec`` bind-mounts it over
  /etc/resolv.conf for every program later run in that namespace, so
  ``lab exec c1 -- curl http://node.lab/`` resolves through the node's
  dnsmasq like a phone would. The machine's own /etc/resolv.conf is never
  named here, and both defences must fail for it to be touched.

The lab renders a two-line launcher per client (see :func:`render_launcher`)
that runs :func:`main` with that client's resolv.conf path baked in.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from portal.config import REPO_DIR

BOUND_REASONS = {"BOUND", "RENEW", "REBIND", "REBOOT"}
GONE_REASONS = {"EXPIRE", "FAIL", "RELEASE", "STOP", "RELEASE6", "STOP6"}


def render_launcher(resolv_conf: Path, *, route_metric: int | None = None) -> str:
    """The executable dhclient runs (``-sf``): this module, isolated mode.

    ``route_metric``: the default route's metric (the gateway app gives its
    uplink's route one, see :mod:`gateway.apply`); None for the kernel's.
    """
    metric = "" if route_metric is None else f", route_metric={int(route_metric)}"
    return (
        f"#!{sys.executable} -I\n"
        "# DHCP hook of a lab client, rendered by the portal; do not edit.\n"
        "import os, sys\n"
        f"sys.path.insert(0, {str(REPO_DIR)!r})\n"
        "from pathlib import Path\n"
        "from portal.lab.dhcp_hook import main\n"
        f"sys.exit(main(os.environ, Path({str(resolv_conf)!r}){metric}))\n"
    )


def main(
    environ: Mapping[str, str], resolv_conf: Path, route_metric: int | None = None
) -> int:
    """Apply one dhclient event; returns the exit code dhclient expects."""
    from portal.host.builders import link
    from portal.host.runner import SystemRunner

    reason = environ.get("reason", "")
    interface = environ.get("interface", "")
    runner = SystemRunner()
    try:
        if reason == "PREINIT":
            runner.run(link.set_up(interface))
        elif reason in BOUND_REASONS:
            address = environ["new_ip_address"]
            prefixlen = ipaddress.IPv4Network(
                f"0.0.0.0/{environ.get('new_subnet_mask', '255.255.255.0')}"
            ).prefixlen
            old = environ.get("old_ip_address")
            if old and old != address:
                runner.run(link.address_flush_ipv4(interface))
            runner.run(link.address_replace(interface, f"{address}/{prefixlen}"))
            routers = environ.get("new_routers", "").split()
            if routers:
                runner.run(
                    link.default_route_replace(
                        routers[0], interface, metric=route_metric
                    )
                )
            servers = environ.get("new_domain_name_servers", "").split()
            write_resolv_conf(resolv_conf, servers, environ.get("new_domain_name", ""))
        elif reason in GONE_REASONS:
            runner.run(link.address_flush_ipv4(interface))
    except Exception as error:  # dhclient logs what the hook prints
        print(f"lab DHCP hook, {reason}: {error}", file=sys.stderr)
        return 1
    return 0


def write_resolv_conf(path: Path, servers: list[str], domain: str) -> None:
    """Atomically replace the client's own resolv.conf (never /etc/resolv.conf)."""
    if path == Path("/etc/resolv.conf") or path.parent == Path("/etc"):
        raise ValueError("refusing to write the machine's own resolv.conf")
    lines = ["# written by the lab's DHCP hook from the client's lease"]
    lines += [f"nameserver {ipaddress.ip_address(server)}" for server in servers[:3]]
    if domain and domain.replace(".", "").replace("-", "").isalnum():
        lines.append(f"search {domain}")
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text("\n".join(lines) + "\n")
    os.replace(temporary, path)
