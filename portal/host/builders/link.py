"""Links, bridges, addresses and routes (``ip link/address/route``).

Everything but :func:`veth_between_namespaces` is meant for a
:class:`NamespaceRunner`: it acts on the namespace it runs in. Readers ask
for JSON (``ip -j``) so nothing parses ``ip``'s human output.
"""

from __future__ import annotations

from portal.host import validate
from portal.host.commands import Command


def veth_between_namespaces(
    name_a: str, namespace_a: str, name_b: str, namespace_b: str
) -> Command:
    """A veth pair whose ends are born inside two namespaces.

    Both ends are created directly in their namespaces, so no interface ever
    appears, even for a moment, in the machine's own namespace; names only
    need to be unique inside each namespace.
    """
    return Command(
        (
            "ip",
            "link",
            "add",
            validate.interface_name(name_a),
            "netns",
            validate.namespace_name(namespace_a),
            "type",
            "veth",
            "peer",
            "name",
            validate.interface_name(name_b),
            "netns",
            validate.namespace_name(namespace_b),
        )
    )


def bridge_add(name: str) -> Command:
    """A Linux bridge (the node's wired client port)."""
    return Command(
        ("ip", "link", "add", "name", validate.interface_name(name), "type", "bridge")
    )


def set_up(name: str) -> Command:
    """Bring an interface up."""
    return Command(("ip", "link", "set", "dev", validate.interface_name(name), "up"))


def set_master(name: str, bridge: str) -> Command:
    """Attach an interface to a bridge."""
    return Command(
        (
            "ip",
            "link",
            "set",
            "dev",
            validate.interface_name(name),
            "master",
            validate.interface_name(bridge),
        )
    )


def address_add(name: str, address: str) -> Command:
    """Add an address with its prefix length (``10.213.0.1/32``)."""
    return Command(
        (
            "ip",
            "address",
            "add",
            validate.ip_interface(address),
            "dev",
            validate.interface_name(name),
        )
    )


def address_replace(name: str, address: str) -> Command:
    """Add or refresh an address (idempotent: a DHCP renewal re-applies it)."""
    return Command(
        (
            "ip",
            "address",
            "replace",
            validate.ip_interface(address),
            "dev",
            validate.interface_name(name),
        )
    )


def address_delete(name: str, address: str) -> Command:
    """Remove one address (with its prefix length) from an interface."""
    return Command(
        (
            "ip",
            "address",
            "delete",
            validate.ip_interface(address),
            "dev",
            validate.interface_name(name),
        )
    )


def address_flush_ipv4(name: str) -> Command:
    """Remove every IPv4 address of an interface."""
    return Command(
        ("ip", "-4", "address", "flush", "dev", validate.interface_name(name))
    )


def default_route_replace(
    gateway: str, name: str, *, metric: int | None = None
) -> Command:
    """Point the default route at ``gateway`` through interface ``name``.

    ``metric``: the route's priority (lower wins); the gateway app gives its
    uplink's route one, so a default route babeld installs from another
    gateway (metric 0) takes over when this uplink's route is withdrawn.
    """
    argv: tuple[str, ...] = (
        "ip",
        "route",
        "replace",
        "default",
        "via",
        validate.ipv4_address(gateway),
        "dev",
        validate.interface_name(name),
    )
    if metric is not None:
        argv += ("metric", str(validate.whole_number(metric, minimum=1, maximum=2**31)))
    return Command(argv)


def show_links() -> Command:
    """Every interface of the namespace, as JSON."""
    return Command(("ip", "-j", "link", "show"))


def show_link_details(name: str) -> Command:
    """One interface with its details (bridge port state ...), as JSON."""
    return Command(
        ("ip", "-j", "-d", "link", "show", "dev", validate.interface_name(name))
    )


def show_addresses() -> Command:
    """Every interface with its addresses, as JSON."""
    return Command(("ip", "-j", "address", "show"))


def show_ipv4_routes() -> Command:
    """The IPv4 main routing table, as JSON."""
    return Command(("ip", "-j", "-4", "route", "show"))
