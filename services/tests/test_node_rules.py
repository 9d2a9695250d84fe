"""Rules of the node around the services, without a lab.

- Packages are installed by a job only while the node has an uplink; without
  one the operator gets the command for a local medium and nothing is queued.
- At boot the services come back to their stored state: the worker's unit
  (``ExecStartPost=``) and ``runnode`` both queue ``services.reconcile``.
- What a running service's announcement carries (its purpose too).
- Hardening on a real node: the systemd unit of every real catalogue entry
  passes ``systemd-analyze verify`` and scores "OK" in its security check.
"""

from __future__ import annotations

import configparser
import html
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from captive.models import CaptiveSettings
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner
from portal.models import Job
from services import components, services
from services.catalogue import CatalogueEntry, catalogue
from services.context import NodeNetwork, ServiceContext
from services.models import ObservedState, ServiceState
from services.supervisors import render_unit, unit_name
from services.values import effective_settings, ensure_secrets

NETWORK = NodeNetwork(
    node_name="n1",
    client_addresses=("10.213.1.1",),
    mesh_addresses=("10.213.0.1",),
    client_interfaces=("br-lan",),
    mesh_interfaces=("to-n2",),
)


@pytest.fixture
def operator(db, monkeypatch):
    from portal.jobqueue import health as health_module
    from portal.jobqueue.health import QueueHealth
    from portal.tests.access_helpers import finish_setup, logged_in_client

    finish_setup(node_name="riverside")
    monkeypatch.setattr(
        health_module,
        "queue_health",
        lambda *a, **k: QueueHealth(
            redis_ok=True, worker_count=1, queued=0, message=""
        ),
    )
    return logged_in_client()


def _uplink(online: bool) -> None:
    row = CaptiveSettings.load()
    row.uplink_online = online
    row.save()


@pytest.fixture
def no_prosody(monkeypatch):
    """This machine has prosody; the node of these tests has not."""
    from services import selectors

    installed = selectors.installed_debian_packages() - {"prosody"}
    monkeypatch.setattr(selectors, "installed_debian_packages", lambda: installed)
    monkeypatch.setattr(
        selectors, "missing_packages", lambda entry, known=None: [
            name for name in entry.packages if name not in installed
        ],
    )  # fmt: skip


def _missing(service_id: str) -> None:
    row = services.state_for(service_id)
    row.observed = ObservedState.MISSING
    row.missing_packages = ["prosody"]
    row.save()


# -- packages --------------------------------------------------------------------


def test_without_an_uplink_no_install_job_and_the_command_is_given(
    operator, no_prosody
):
    _uplink(False)
    _missing("xmpp")
    page = operator.get(reverse("services:detail", args=["xmpp"]), secure=True)
    assert b"apt-get install prosody" in page.content
    assert reverse("services:install", args=["xmpp"]).encode() not in page.content

    before = Job.objects.count()
    with pytest.raises(services.NoUplink) as refused:
        services.request_package_install(service_id="xmpp")
    assert "apt-get install prosody" in str(refused.value)
    assert "no uplink" in str(refused.value)
    reply = operator.post(
        reverse("services:install", args=["xmpp"]), secure=True, follow=True
    )
    assert b"no uplink" in reply.content
    assert Job.objects.count() == before


def test_with_an_uplink_the_page_offers_the_install_job(operator, no_prosody):
    _uplink(True)
    _missing("xmpp")
    page = operator.get(reverse("services:detail", args=["xmpp"]), secure=True)
    assert reverse("services:install", args=["xmpp"]).encode() in page.content
    reply = operator.post(reverse("services:install", args=["xmpp"]), secure=True)
    job = Job.objects.get(kind="services.install_packages")
    assert job.arguments == {"service_id": "xmpp"}
    assert reply.status_code == 302 and str(job.pk) in reply["Location"]


# -- hostile settings on the real entries --------------------------------------------

HOSTILE = [
    ("ircd", "channel", "#mesh\n[Operator]", "line breaks"),
    ("ircd", "channel", "mesh", "followed by letters"),
    ("library", "zim_folder", "/srv/../etc", "no '..'"),
    ("library", "zim_folder", "zim", "full folder path"),
    ("voice", "welcome", 'Hi" ; rm', "double quotes"),
    ("voice", "max_users", "100000", "between 2 and 500"),
    ("stream", "max_listeners", "ten", "whole number"),
]


@pytest.mark.parametrize(("service_id", "key", "value", "reason"), HOSTILE)
def test_a_hostile_setting_is_refused_on_the_page_and_changes_nothing(
    operator, service_id, key, value, reason
):
    row = services.state_for(service_id)
    row.enabled = True  # a running service would be restarted by a change
    row.save()
    before = Job.objects.count()
    form = {
        setting.key: setting.default
        for setting in catalogue().get(service_id).settings
        if setting.default is not None and setting.kind != "boolean"
    }
    form[key] = value
    page = operator.post(
        reverse("services:detail", args=[service_id]), form, secure=True
    )
    assert page.status_code == 200
    assert reason in html.unescape(page.content.decode())
    assert services.state_for(service_id).settings == {}
    assert Job.objects.count() == before  # nothing queued


# -- the address a service publishes itself -----------------------------------------


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion\n", None),
        ("", ""),
        ("<script>x</script>.onion", ""),
        ("two\nlines.onion", ""),
        ("a" * 120 + ".onion", ""),
    ],
)
def test_only_a_host_name_is_taken_from_the_address_file(tmp_path, written, read):
    entry = catalogue().get("onion-chat")
    context = ServiceContext(
        entry=entry,
        host=Host(mode="lab", runner=RecordingRunner(), files=FileStore(tmp_path)),
        network=NETWORK,
    )
    hostname = Path(context.real("data_dir")) / "chat/hostname"
    hostname.parent.mkdir(parents=True)
    hostname.write_text(written)
    expected = written.strip() if read is None else read
    assert components.read_client_address(context) == expected


# -- boot --------------------------------------------------------------------------


def test_the_reconcile_command_queues_the_job(db):
    call_command("services_reconcile", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Job.objects.filter(kind="services.reconcile").count() == 1


def test_the_worker_unit_reconciles_the_services_after_it_starts(db):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(Path(settings.BASE_DIR) / "deploy/systemd/byzantium-worker.service")
    assert unit["Service"]["ExecStartPost"].endswith("manage.py node_start")
    call_command("node_start", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Job.objects.filter(kind="services.reconcile").count() == 1


def test_runnode_queues_the_reconcile_once_the_worker_runs(db):
    from portal.management.commands.runnode import Supervisor

    Supervisor.queue_start_jobs(None)  # type: ignore[arg-type]
    assert Job.objects.filter(kind="services.reconcile").count() == 1


# -- announcement --------------------------------------------------------------------


def test_an_announced_service_carries_its_purpose_in_the_node_document(db, client):
    row = services.state_for("voice")
    row.enabled, row.observed, row.last_health_ok = True, ObservedState.RUNNING, True
    row.save()
    components._invalidate_document()
    document = client.get("/api/v1/node").json()
    (voice,) = document["services"]
    assert voice["id"] == "voice" and voice["port"] == 64738
    assert voice["purpose"] == catalogue().get("voice").purpose
    ServiceState.objects.filter(service_id="voice").update(withdrawn=True)
    components._invalidate_document()
    assert client.get("/api/v1/node").json()["services"] == []


# -- hardening: systemd units of the real catalogue ------------------------------------


def _units(tmp_path: Path) -> list[Path]:
    written = []
    for entry in catalogue():
        context = _context(entry)
        for daemon in entry.daemons:
            path = tmp_path / unit_name(entry, daemon)
            path.write_text(render_unit(context, daemon))
            written.append(path)
    return written


def _context(entry: CatalogueEntry) -> ServiceContext:
    return ServiceContext(
        entry=entry,
        host=Host(mode="system", runner=RecordingRunner(), files=FileStore(Path("/"))),
        network=NETWORK,
        settings=effective_settings(entry, {}),
        secrets=ensure_secrets(entry, {})[0],
    )


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_unit_verifies_and_runs_as_its_own_user(tmp_path: Path):
    units = _units(tmp_path)
    assert len(units) >= 8
    for path in units:
        text = path.read_text()
        assert "\nUser=root" not in text and "\nUser=" in text
        assert "\nNoNewPrivileges=yes" in text and "\nProtectSystem=strict" in text
    result = _analyze("verify", "--man=no", *map(str, units))
    # verify exits 0 on a value it ignores; it says so on stderr.
    assert result.returncode == 0 and result.stderr == "", result.stderr
    broken = tmp_path / "byzantium-broken.service"
    broken.write_text(units[0].read_text().replace("ProtectSystem=strict", "Prot=x"))
    assert "Unknown key" in _analyze("verify", "--man=no", str(broken)).stderr


def test_every_unit_scores_ok_in_systemds_security_check(tmp_path: Path):
    for path in _units(tmp_path):
        result = _analyze(
            "security", "--offline=yes", "--no-pager", "--threshold=40", str(path)
        )
        assert result.returncode == 0, (path.name, result.stdout[-300:])
    bare = tmp_path / "byzantium-bare.service"
    bare.write_text("[Service]\nExecStart=/usr/sbin/ngircd --nodaemon\nUser=irc\n")
    result = _analyze(
        "security", "--offline=yes", "--no-pager", "--threshold=40", str(bare)
    )
    assert result.returncode != 0  # without the sandbox: far above the bound
