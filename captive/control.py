"""Make the node follow the database: the work behind the captive jobs.

Each function takes the :class:`~portal.host.node.Host` to act on, reads
the desired state from the models, and changes the kernel through
:mod:`captive.firewall_ops` (the firewall engineer's API) under
:func:`captive.queue.firewall_lock`.

Restart: the kernel's sets are the truth of who is let through now, the
database the record of who should be. :func:`apply_portal` installs the
table (carrying over whatever the kernel still holds) and, when the table
was gone (a reboot) and the operator wants it, puts back every session the
database still counts as live, each with the time it had left.
:func:`sync_clients` (every few seconds) copies counters and "last seen"
from the kernel, ends the rows whose elements the kernel expired, and
rebuilds the table if it vanished while the portal should be on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from portal.host.errors import InvalidValue
from portal.host.node import Host
from portal.jobqueue.errors import JobFailed
from portal.jobqueue.log import note

from . import firewall_ops, node_ops
from .firewall import Client, FirewallConfig, FirewallState
from .models import (
    CaptiveSettings,
    ClientSession,
    EndReason,
    MacRule,
    MacRuleKind,
    PortalInterface,
    SessionState,
)
from .queue import firewall_lock
from .selectors import held_port


def firewall_config() -> FirewallConfig | None:
    """The table the settings describe; None when the portal is off."""
    names = tuple(
        PortalInterface.objects.filter(enabled=True).values_list("name", flat=True)
    )
    if not names:
        return None
    row = CaptiveSettings.load()
    port = held_port()
    if port == 80:
        raise JobFailed(
            _(
                "The portal's held port is 80, the port of the node's own "
                "pages: set CAPTIVE_HELD_PORT (or http_port) to another port."
            )
        )
    return FirewallConfig(
        interfaces=names,
        portal_port=port,
        session_timeout=row.session_timeout,
        idle_timeout=row.idle_timeout,
    )


def _live() -> Any:
    return ClientSession.objects.filter(
        state__in=(SessionState.PENDING, SessionState.ACTIVE)
    )


def _end(rows: Any, reason: str) -> int:
    return rows.update(
        state=SessionState.ENDED, end_reason=reason, ended_at=timezone.now()
    )


def _mac_lists(state: FirewallState | None) -> dict[str, set[str]]:
    allowed = set(
        MacRule.objects.filter(kind=MacRuleKind.ALLOWED).values_list("mac", flat=True)
    )
    blocked = set(
        MacRule.objects.filter(kind=MacRuleKind.BLOCKED).values_list("mac", flat=True)
    )
    have_allowed = set(state.allowed_macs) if state else set()
    have_blocked = set(state.blocked_macs) if state else set()
    return {
        "allow": allowed - have_allowed,
        "disallow": have_allowed - allowed,
        "block": blocked - have_blocked,
        "unblock": have_blocked - blocked,
    }


def apply_portal(host: Host) -> dict[str, Any]:
    """Install, replace or remove the table; offline probe answers; restore.

    All of it under :func:`~captive.queue.firewall_lock`, dnsmasq included:
    the worker's main loop (``sync_clients`` rebuilding a vanished table)
    and its captive lane can both get here at once, and two restarts of
    dnsmasq side by side leave the second one unable to bind its address.
    """
    with firewall_lock():
        return _apply_portal(host)


def _apply_portal(host: Host) -> dict[str, Any]:
    row = CaptiveSettings.load()
    node_ops.set_probe_answers(host, online=row.uplink_online)
    config = firewall_config()
    if config is None:
        removed = firewall_ops.disable(host)
        _end(_live(), EndReason.LOST)
        note(_("The captive portal is off: its table is removed."))
        dns = refresh_node_dns(host)
        return {"enabled": False, "removed": removed, "dnsmasq": dns}
    carried = firewall_ops.enable(host, config, keep_clients=True)
    state = firewall_ops.read_state(host) if host.mode != "dry-run" else None
    restored = _restore_sessions(host, config, state, row.restore_after_restart)
    lists = _mac_lists(state)
    if any(lists.values()):
        firewall_ops.update_mac_lists(host, config, **lists)
    note(
        _(
            "Portal on for %(interfaces)s; %(carried)s client(s) carried over, "
            "%(restored)s restored."
        )
        % {
            "interfaces": ", ".join(config.interfaces),
            "carried": len(carried.sessions) if carried else 0,
            "restored": restored,
        }
    )
    dns = refresh_node_dns(host)
    return {"enabled": True, "restored": restored, "dnsmasq": dns}


def refresh_node_dns(host: Host) -> str:
    """Re-render the node's dnsmasq from the mesh settings, so DHCP option
    114 and the probe hosts file follow the portal (the mesh app owns
    dnsmasq; :func:`meshnet.apply.refresh_dnsmasq` is its narrow door)."""
    from meshnet.apply import MeshApplyError, refresh_dnsmasq
    from meshnet.jobs_routing import upstream_dns_servers
    from meshnet.state import MeshState

    try:
        outcome = refresh_dnsmasq(
            host, MeshState.from_db(), upstream_servers=upstream_dns_servers()
        )
    except (InvalidValue, MeshApplyError) as error:
        raise JobFailed(
            _("The node's DHCP and DNS could not follow the portal: %(reason)s")
            % {"reason": error}
        ) from error
    if outcome in ("started", "restarted"):
        note(_("dnsmasq now follows the portal (DHCP option 114, probe hosts)."))
    return outcome


def _restore_sessions(
    host: Host, config: FirewallConfig, state: FirewallState | None, restore: bool
) -> int:
    """Put back live sessions the kernel lost (a reboot), or end them."""
    now = timezone.now()
    in_kernel = {(s.mac, s.ip) for s in state.authorised} if state else set()
    missing = [
        s
        for s in _live().filter(state=SessionState.ACTIVE)
        if (s.mac, s.ip) not in in_kernel
    ]
    if not missing:
        return 0
    if not restore:
        _end(
            ClientSession.objects.filter(pk__in=[s.pk for s in missing]), EndReason.LOST
        )
        return 0
    count = 0
    for session in missing:
        left = int((session.expires_at - now).total_seconds())
        if left < 1:
            _end(ClientSession.objects.filter(pk=session.pk), EndReason.EXPIRED)
            continue
        firewall_ops.authorise(
            host,
            config,
            [Client(mac=session.mac, ip=session.ip)],
            session_timeout=min(left, config.session_timeout),
            forget_flows=False,
        )
        count += 1
    return count


def authorise_client(host: Host, session_id: int) -> dict[str, Any]:
    """Let the phone of a pending session through (the tap)."""
    session = ClientSession.objects.filter(pk=session_id).first()
    if session is None or session.state != SessionState.PENDING:
        return {"skipped": True}
    config = firewall_config()
    if config is None:
        _end(ClientSession.objects.filter(pk=session.pk), EndReason.LOST)
        raise JobFailed(_("The captive portal is off: there is nobody to let through."))
    mac = node_ops.mac_of(host, session.ip)
    if mac is None:
        _end(ClientSession.objects.filter(pk=session.pk), EndReason.LOST)
        raise JobFailed(_("No phone answers at %(ip)s any more.") % {"ip": session.ip})
    if MacRule.objects.filter(mac=mac, kind=MacRuleKind.BLOCKED).exists():
        _end(ClientSession.objects.filter(pk=session.pk), EndReason.BLOCKED)
        raise JobFailed(_("%(mac)s is blocked by the operator.") % {"mac": mac})
    left = max(1, int((session.expires_at - timezone.now()).total_seconds()))
    # Another phone that had this address before is let go first: the
    # download counter is keyed by the address.
    previous = list(
        _live().filter(ip=session.ip).exclude(pk=session.pk).exclude(mac=mac)
    )
    with firewall_lock():
        if previous:
            firewall_ops.deauthorise(
                host, config, [Client(mac=p.mac, ip=p.ip) for p in previous if p.mac]
            )
        firewall_ops.authorise(
            host,
            config,
            [Client(mac=mac, ip=session.ip)],
            session_timeout=min(left, config.session_timeout),
        )
    if previous:
        _end(
            ClientSession.objects.filter(pk__in=[p.pk for p in previous]),
            EndReason.REPLACED,
        )
    # Older rows of the same phone and address are folded into this one.
    _end(
        _live().filter(ip=session.ip, mac=mac).exclude(pk=session.pk),
        EndReason.REPLACED,
    )
    hostname = next(
        (lease.hostname for lease in node_ops.read_leases(host) if lease.mac == mac),
        "",
    )
    ClientSession.objects.filter(pk=session.pk).update(
        mac=mac, hostname=hostname, state=SessionState.ACTIVE, last_seen=timezone.now()
    )
    return {"mac": mac, "ip": session.ip}


def deauthorise_client(host: Host, session_id: int, reason: str) -> dict[str, Any]:
    """Send a phone back to the welcome page; its live flows stop."""
    session = ClientSession.objects.filter(pk=session_id).first()
    if session is None or not session.live:
        return {"skipped": True}
    config = firewall_config()
    if config is not None and session.mac:
        with firewall_lock():
            firewall_ops.deauthorise(
                host, config, [Client(mac=session.mac, ip=session.ip)]
            )
    _end(ClientSession.objects.filter(pk=session.pk), reason or EndReason.KICKED)
    return {"mac": session.mac, "ip": session.ip}


def update_mac_rules(host: Host) -> dict[str, Any]:
    """Make the kernel's MAC lists match the operator's rules."""
    config = firewall_config()
    if config is None:
        return {"enabled": False}
    leases = {lease.mac: lease.ip for lease in node_ops.read_leases(host)}
    with firewall_lock():
        state = firewall_ops.read_state(host) if host.mode != "dry-run" else None
        lists = _mac_lists(state)
        changed = set().union(*lists.values())
        addresses = [leases[mac] for mac in changed if mac in leases]
        firewall_ops.update_mac_lists(host, config, forget_flows_of=addresses, **lists)
    blocked = set(lists["block"])
    if blocked:
        _end(_live().filter(mac__in=blocked), EndReason.BLOCKED)
    return {key: sorted(value) for key, value in lists.items()}


def sync_clients(host: Host) -> dict[str, Any]:
    """Copy the kernel's view into the rows; rebuild a vanished table."""
    config = firewall_config()
    if config is None:
        return {"enabled": False}
    state = firewall_ops.read_state(host)
    if state is None:
        note(_("The portal's table was missing (a restart?): installing it again."))
        return apply_portal(host)
    now = timezone.now()
    # A tap whose job never ran (no worker) is forgotten after a minute.
    _end(
        _live().filter(
            state=SessionState.PENDING, since__lt=now - timedelta(minutes=1)
        ),
        EndReason.LOST,
    )
    kernel = {(s.mac, s.ip): s for s in state.sessions}
    ended = 0
    updated = 0
    for row in _live().filter(state=SessionState.ACTIVE):
        entry = kernel.get((row.mac, row.ip))
        if entry is None or not entry.authorised:
            reason = (
                EndReason.EXPIRED
                if row.expires_at <= now + timedelta(seconds=2)
                else EndReason.IDLE
            )
            ended += _end(ClientSession.objects.filter(pk=row.pk), reason)
            continue
        idle_for = max(0.0, config.idle_timeout - (entry.idle_left or 0.0))
        ClientSession.objects.filter(pk=row.pk).update(
            bytes_up=entry.bytes_up,
            bytes_down=entry.bytes_down,
            last_seen=now - timedelta(seconds=idle_for),
            expires_at=now + timedelta(seconds=entry.session_left or 0),
        )
        updated += 1
    known = {(r.mac, r.ip) for r in _live()}
    adopted = 0
    for entry in state.authorised:
        if (entry.mac, entry.ip) in known:
            continue
        ClientSession.objects.create(
            mac=entry.mac,
            ip=entry.ip,
            state=SessionState.ACTIVE,
            expires_at=now + timedelta(seconds=entry.session_left or 0),
            bytes_up=entry.bytes_up,
            bytes_down=entry.bytes_down,
        )
        adopted += 1
    return {"updated": updated, "ended": ended, "adopted": adopted}
