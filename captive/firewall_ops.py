"""Apply the captive portal's firewall through the host layer.

:mod:`captive.firewall` renders; this module runs. Every function takes the
:class:`~portal.host.node.Host` to act on (``current_host()`` in a job, a
lab node in the tests), so nothing here knows whether it manages a real
node, a lab namespace or a dry run.

- :func:`enable` writes the whole table to ``RULESET_PATH``, has nft check
  it (``nft -c -f``) and applies it (``nft -f``): one transaction that
  replaces the previous table, carrying its clients, counters and MAC lists
  over with the time they had left.
- :func:`authorise` / :func:`deauthorise` change the client sets in one nft
  batch, then make the kernel forget the clients' tracked connections, so a
  connection opened before the change follows the new rules from its next
  packet: a kept-alive connection redirected to the portal cannot keep
  getting the portal after the tap, and a live flow stops at once after a
  kick.
- :func:`read_state` reads every client, timer and counter in one call.
- :func:`disable` deletes the table and nothing else.

Element batches go to nft on its standard input (``nft -f -``) rather than
through a file: they are small, a tap should take milliseconds, and nothing
is left behind to clean. The whole table goes through a file so the
operator can read what was applied last.
"""

from __future__ import annotations

from collections.abc import Iterable

from portal.host.builders import conntrack, nft
from portal.host.commands import Command
from portal.host.errors import CommandFailed, HostError
from portal.host.node import Host

from .firewall import (
    TABLE,
    Client,
    FirewallConfig,
    FirewallState,
    parse_state,
    render_authorise,
    render_deauthorise,
    render_mac_lists,
    render_ruleset,
)

RULESET_PATH = "/etc/byzantium/captive.nft"
_MISSING = "No such file or directory"


def nft_batch(text: str, *, check_only: bool = False) -> Command:
    """An nft batch read from standard input (``nft [-c] -f -``).

    nft runs what it reads as one transaction: all of it or nothing.
    """
    argv = ("nft", "-c", "-f", "-") if check_only else ("nft", "-f", "-")
    return Command(argv, stdin=text.encode(), timeout=nft.NFT_TIMEOUT)


def read_state(host: Host, *, table: str = TABLE) -> FirewallState | None:
    """Clients, timers, counters and MAC lists; None when the table is absent."""
    try:
        result = host.runner.run(nft.list_table(table))
    except CommandFailed as error:
        stderr = getattr(error.result, "stderr", "")
        if _MISSING in stderr:
            return None
        raise
    return parse_state(result.stdout, table=table)


def is_enabled(host: Host, *, table: str = TABLE) -> bool:
    """Whether the portal's table exists (read from the kernel, not a flag)."""
    return read_state(host, table=table) is not None


def enable(
    host: Host, config: FirewallConfig, *, keep_clients: bool = True
) -> FirewallState | None:
    """Install (or replace) the table; returns the state carried over.

    With ``keep_clients`` the clients, counters and MAC lists of a table
    already in place are carried into the new one, each with the time it
    had left. In dry-run mode there is nothing to read and nothing carried.
    """
    state = None
    if keep_clients:
        try:
            state = read_state(host, table=config.table)
        except HostError:
            if host.mode != "dry-run":
                raise
    text = render_ruleset(config, state)
    host.files.write(RULESET_PATH, text, mode=0o600)
    path = str(host.files.path(RULESET_PATH))
    host.runner.run(nft.check_file(path))
    host.runner.run(nft.apply_file(path))
    return state


def disable(host: Host, *, table: str = TABLE) -> bool:
    """Delete the portal's table; True when there was one to delete."""
    result = host.runner.run(nft.delete_table(table, missing_ok=True))
    if result.ok:
        return True
    if _MISSING in result.stderr:
        return False
    raise CommandFailed(f"nft could not delete table {table}: {result.stderr}", result)


def _forget_flows(host: Host, clients: Iterable[Client], *, both_ways: bool) -> int:
    forgotten = 0
    for client in clients:
        forgotten += conntrack.deleted_count(
            host.runner.run(conntrack.delete_from(client.ip))
        )
        if both_ways:
            forgotten += conntrack.deleted_count(
                host.runner.run(conntrack.delete_to(client.ip))
            )
    return forgotten


def authorise(
    host: Host,
    config: FirewallConfig,
    clients: Iterable[Client],
    *,
    session_timeout: int | None = None,
    forget_flows: bool = True,
) -> int:
    """Let ``clients`` through in one batch; returns the flows forgotten.

    The sets change first, then the flows are forgotten: a connection
    opened between the two is already unredirected, one opened before is
    forgotten. ``forget_flows=False`` is for restoring many clients at
    start-up, when no flow of theirs can exist yet.
    """
    batch = list(clients)
    text = render_authorise(config, batch, session_timeout=session_timeout)
    if not text:
        return 0
    host.runner.run(nft_batch(text))
    return _forget_flows(host, batch, both_ways=False) if forget_flows else 0


def deauthorise(
    host: Host,
    config: FirewallConfig,
    clients: Iterable[Client],
    *,
    forget_flows: bool = True,
) -> int:
    """Send ``clients`` back to the portal; returns the flows forgotten.

    Flows in both directions are forgotten, so each live flow's next packet
    meets the rules of a held client (refused with a reset) at once.
    """
    batch = list(clients)
    text = render_deauthorise(config, batch)
    if not text:
        return 0
    host.runner.run(nft_batch(text))
    return _forget_flows(host, batch, both_ways=True) if forget_flows else 0


def update_mac_lists(
    host: Host,
    config: FirewallConfig,
    *,
    allow: Iterable[str] = (),
    disallow: Iterable[str] = (),
    block: Iterable[str] = (),
    unblock: Iterable[str] = (),
    forget_flows_of: Iterable[str] = (),
) -> int:
    """Edit the always-allowed and blocked MAC lists in one batch.

    ``forget_flows_of`` names the IPv4 addresses those MACs use now (from
    the DHCP leases), so their connections follow the new lists at once.
    """
    text = render_mac_lists(
        config, allow=allow, disallow=disallow, block=block, unblock=unblock
    )
    if not text:
        return 0
    host.runner.run(nft_batch(text))
    forgotten = 0
    for address in forget_flows_of:
        forgotten += conntrack.deleted_count(
            host.runner.run(conntrack.delete_from(address))
        )
        forgotten += conntrack.deleted_count(
            host.runner.run(conntrack.delete_to(address))
        )
    return forgotten
