"""RQ entry points of the gateway app.

- ``gateway.apply``: make the node match the settings (uplink, NAT, the
  mesh's default route, dnsmasq's upstreams, Tor);
- ``gateway.check_uplink`` (every 5 s, routine): when the operator's check
  interval has passed, one check of the uplink through the uplink
  interface, fed to the hysteresis (:mod:`gateway.health`); a change of
  verdict moves the announcement and the captive portal
  (:func:`gateway.services.uplink_observed`); it also refreshes the list of
  uplink candidates the pages show;
- ``gateway.scan_uplinks``: that list, on the operator's request.

Jobs re-read everything from the database; arguments are never needed.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.host.errors import HostError, InvalidValue
from portal.host.node import current_host
from portal.jobqueue.errors import JobFailed
from portal.jobqueue.log import note
from portal.jobqueue.registry import registered_job

from . import health, services, tor, uplink
from .apply import GatewayApplyError, apply_gateway, lease_file_text
from .models import GatewaySettings

CHECK_EVERY = 5


@registered_job(services.APPLY_KIND, title=_("Apply the gateway settings"))
def apply_gateway_job() -> dict[str, Any]:
    """Apply the gateway settings in the database to this node."""
    from meshnet.state import MeshState

    from .selectors import gateway_plan

    try:
        report = apply_gateway(current_host(), gateway_plan(), MeshState.from_db())
    except (InvalidValue, GatewayApplyError, ValueError) as error:
        raise JobFailed(str(error)) from error
    if not report.steps:
        note(str(_("Nothing to change: the node already matches its settings.")))
    for step in report.steps:
        note(step)
    return report.to_dict()


def _mesh_interface_names() -> list[str]:
    from meshnet.models import MeshInterface

    return list(MeshInterface.objects.values_list("name", flat=True))


def _scan(host: Any, row: GatewaySettings) -> list[dict[str, Any]]:
    leased = (
        [row.uplink_interface]
        if lease_file_text(host, row.uplink_interface or "lo")
        else []
    )
    found = uplink.read_candidates(
        host, mesh_interfaces=_mesh_interface_names(), leased=leased
    )
    return [asdict(candidate) for candidate in found]


@registered_job(services.SCAN_KIND, title=_("Look for uplinks"))
def scan_uplinks_job() -> dict[str, Any]:
    """List the interfaces that could be an uplink and keep the list."""
    row = GatewaySettings.load()
    try:
        found = _scan(current_host(), row)
    except HostError as error:
        raise JobFailed(str(error)) from error
    services.candidates_store(candidates=found)
    return {"candidates": [c["name"] for c in found]}


def _rendered_upstreams(host: Any) -> tuple[str, ...] | None:
    """The ``server=`` lines of the node's dnsmasq.conf (None: no file)."""
    from meshnet.dnsmasq_config import CONFIG

    text = host.files.read_text(CONFIG)
    if text is None:
        return None
    return tuple(
        line[len("server=") :]
        for line in text.splitlines()
        if line.startswith("server=")
    )


def _tor_progress(host: Any, row: GatewaySettings) -> int | None:
    """tor's bootstrap percentage while Tor mode is on and tor runs."""
    return tor.bootstrap_progress(host) if row.tor_enabled else None


def _apply_unless_queued() -> bool:
    """Queue ``gateway.apply`` unless one is waiting or running already."""
    from portal.models import Job, JobStatus

    waiting = Job.objects.filter(
        kind=services.APPLY_KIND, status__in=(JobStatus.PENDING, JobStatus.RUNNING)
    )
    if waiting.exists():
        return False
    services.apply_request()
    return True


def _follow_upstreams(host: Any) -> bool:
    """Queue ``gateway.apply`` when dnsmasq's upstreams are not the ones
    wanted now (a gateway of the mesh came or went, a new lease)."""
    from .selectors import dns_upstream_servers

    rendered = _rendered_upstreams(host)
    if rendered is None or rendered == dns_upstream_servers():
        return False
    return _apply_unless_queued()


def _follow_announcement(host: Any) -> bool:
    """Queue ``gateway.apply`` when babeld's config does not announce what
    the verdict wants: the apply queued on the change failed (a daemon did
    not restart), or someone edited the file. Without this a failed apply
    left the mesh without its gateway until the uplink's next change."""
    from meshnet.babel_config import ANNOUNCE_DEFAULT, CONFIG
    from meshnet.models import MeshSettings

    text = host.files.read_text(CONFIG)
    if text is None:
        return False
    announced = ANNOUNCE_DEFAULT in text.splitlines()
    if announced == MeshSettings.load().announce_default_route:
        return False
    return _apply_unless_queued()


def _follow_the_mesh() -> dict[str, Any]:
    """A node without an uplink: online for the captive portal while the
    mesh has a gateway, and dnsmasq forwarding to the mesh's gateways."""
    from captive.services import uplink_state_set

    from .selectors import mesh_gateway_addresses

    online = bool(mesh_gateway_addresses())
    uplink_state_set(online=online)
    return {"mesh_online": online, "dns_follows": _follow_upstreams(current_host())}


@registered_job(
    services.CHECK_KIND, every=CHECK_EVERY, routine=True, title=_("Check the uplink")
)
def check_uplink_job() -> dict[str, Any]:
    """One uplink check when it is due; acts only on a change of verdict."""
    row = GatewaySettings.load()
    if not row.uplink_interface:
        return {"checked": False, "reason": "no uplink", **_follow_the_mesh()}
    now = timezone.now()
    if row.checked_at and now - row.checked_at < timedelta(
        seconds=row.check_interval_seconds - 1
    ):
        return {"checked": False, "reason": "not due"}
    host = current_host()
    targets = tuple(row.check_targets or ())
    try:
        passed = health.check_uplink(host, row.uplink_interface, targets)
    except HostError as error:
        passed = False
        note(str(error))
    value, changed = health.observe(
        health.UplinkHealth.from_dict(row.health),
        passed,
        fail_threshold=row.fail_threshold,
        pass_threshold=row.pass_threshold,
    )
    lease_dns: list[str] = []
    if row.addressing == "dhcp":
        lease = uplink.parse_dhclient_leases(
            lease_file_text(host, row.uplink_interface)
        )
        if lease is not None and lease.interface == row.uplink_interface:
            lease_dns = list(lease.dns_servers)
    services.uplink_observed(health=value, changed=changed, lease_dns_servers=lease_dns)
    try:
        services.candidates_store(candidates=_scan(host, row))
    except HostError:
        pass
    services.tor_progress_store(percent=_tor_progress(host, row))
    return {
        "checked": True,
        "passed": passed,
        "online": value.online,
        "changed": changed,
        "announcement_follows": not changed and _follow_announcement(host),
    }
