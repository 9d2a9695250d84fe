"""nftables: check and apply rule files, list and delete our tables.

Rulesets are applied from files, never from argv fragments: a job renders
the file with :class:`~portal.host.files.FileStore`, checks it with
:func:`check_file` (``nft -c -f``: parsed and validated by the kernel's own
rules, nothing committed), then applies it with :func:`apply_file`. nft
applies a file as one transaction, so a bad file changes nothing.

Each part of the portal owns whole tables (``inet byz_captive`` ...), which
it lists with :func:`list_table` (JSON, parsed by the owner) and removes with
:func:`delete_table`. nftables 1.0.6 (Debian 12) has no ``destroy`` command,
so deleting a table that may be absent is asked for with ``missing_ok``: the
command then may fail without raising, and the caller reads the result.

The path handed to nft is the real path on this machine (``FileStore.path``),
checked by :func:`portal.host.validate.absolute_path`.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from .. import validate
from ..commands import Command
from ..errors import InvalidValue

FAMILIES = frozenset({"inet", "ip", "ip6", "arp", "bridge", "netdev"})
# A table holding thousands of authorised clients lists as a few MiB of JSON.
LIST_OUTPUT_CAP = 16 * 1024 * 1024
NFT_TIMEOUT = 30.0


def family(value: str) -> str:
    """An nftables address family."""
    if not isinstance(value, str) or value not in FAMILIES:
        raise InvalidValue(
            _("%(value)s is not an nftables family.") % {"value": repr(value)[:40]}
        )
    return value


def check_file(path: str) -> Command:
    """Check a ruleset file without applying it (``nft -c -f PATH``)."""
    return Command(
        ("nft", "-c", "-f", validate.absolute_path(path)), timeout=NFT_TIMEOUT
    )


def apply_file(path: str) -> Command:
    """Apply a ruleset file as one transaction (``nft -f PATH``)."""
    return Command(("nft", "-f", validate.absolute_path(path)), timeout=NFT_TIMEOUT)


def list_table(name: str, *, table_family: str = "inet") -> Command:
    """A whole table with its chains, sets and elements, as JSON."""
    return Command(
        (
            "nft",
            "-j",
            "list",
            "table",
            family(table_family),
            validate.nft_identifier(name),
        ),
        timeout=NFT_TIMEOUT,
        output_cap=LIST_OUTPUT_CAP,
    )


def delete_table(
    name: str, *, table_family: str = "inet", missing_ok: bool = False
) -> Command:
    """Delete a table and everything in it."""
    return Command(
        ("nft", "delete", "table", family(table_family), validate.nft_identifier(name)),
        timeout=NFT_TIMEOUT,
        check=not missing_ok,
    )
