"""Framework tests without a lab: catalogue, dependencies, values, plans."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from portal.host.errors import CommandNotAllowed, InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner
from services import dependencies, services, strings
from services.catalogue import CatalogueError, load_catalogue
from services.components import install_hint, missing_packages, render_firewall
from services.context import NodeNetwork, ServiceContext
from services.models import ServiceState
from services.supervisors import (
    StartStopDaemonSupervisor,
    SystemdSupervisor,
    render_unit,
)
from services.values import SettingRefused, clean_setting, quote

from .fake_catalogue import BASE, TOP, write_fake_catalogue

NETWORK = NodeNetwork(
    node_name="n1",
    client_addresses=("10.213.1.1",),
    mesh_addresses=("10.213.0.1",),
    client_interfaces=("br-lan",),
    mesh_interfaces=("to-n2",),
)


def test_the_whole_installed_catalogue_loads():
    cat = load_catalogue()
    assert len(cat) >= 8
    for entry in cat:
        assert entry.daemons and entry.health and entry.client


def test_generated_catalogue_strings_are_current():
    assert strings.STRINGS_FILE.read_text() == strings.render_strings(load_catalogue())


def test_a_dependency_cycle_is_refused(tmp_path: Path):
    folder = write_fake_catalogue(tmp_path)
    base = (folder / "web-base" / "service.toml").read_text()
    (folder / "web-base" / "service.toml").write_text(
        base.replace('user = "nobody"', 'depends = ["web-top"]\nuser = "nobody"')
    )
    with pytest.raises(CatalogueError, match="cycle: web-base -> web-top -> web-base"):
        load_catalogue(folder)


def test_unknown_fields_placeholders_and_root_are_refused(tmp_path: Path):
    folder = write_fake_catalogue(tmp_path)
    path = folder / "web-top" / "service.toml"
    for bad, message in (
        (TOP + '\ncolour = "red"\n', "unknown field"),
        (TOP.replace("{port_http}", "{port_nope}"), "unknown placeholder"),
        (TOP.replace('user = "nobody"', 'user = "root"'), "refused"),
        (TOP.replace('depends = ["web-base"]', 'depends = ["ghost"]'), "unknown dep"),
        (TOP.replace("/usr/bin/python3", "python3"), "system path"),
    ):
        path.write_text(bad)
        with pytest.raises(CatalogueError, match=message):
            load_catalogue(folder)


def test_a_default_password_is_refused(tmp_path: Path):
    folder = write_fake_catalogue(tmp_path)
    (folder / "web-base" / "service.toml").write_text(
        BASE + '\n[[settings]]\nkey = "pw"\nkind = "password"\nlabel = "P"\n'
        'default = "changeme"\n'
    )
    with pytest.raises(CatalogueError, match="no default passwords"):
        load_catalogue(folder)


def test_activation_pulls_dependencies_first_and_deactivation_cascades(fake_catalogue):
    cat = fake_catalogue
    assert dependencies.activation_order(cat, "web-top") == ["web-base", "web-top"]
    assert dependencies.to_pull_in(cat, "web-top", []) == ["web-base"]
    assert dependencies.to_pull_in(cat, "web-top", ["web-base"]) == []
    assert dependencies.to_cascade(cat, "web-base", ["web-base", "web-top"]) == [
        "web-top"
    ]
    assert dependencies.deactivation_order(cat, "web-base", ["web-top"]) == [
        "web-top",
        "web-base",
    ]


@pytest.mark.parametrize(
    ("value", "format_name", "expected"),
    [
        ('a"b\\c', "lua", '"a\\"b\\\\c"'),
        ("<x&'>", "xml", "&lt;x&amp;&apos;&gt;"),
        ("it's", "php", "'it\\'s'"),
        ('q"', "json", '"q\\""'),
        ("plain words", "ini", "plain words"),
    ],
)
def test_values_are_quoted_for_their_config_format(value, format_name, expected):
    assert quote(value, format_name) == expected


@pytest.mark.parametrize(
    ("value", "format_name"),
    [("a;b", "ini"), ("x\ny", "lua"), ("a b", "words"), ("=", "ini")],
)
def test_values_a_format_cannot_carry_are_refused(value, format_name):
    with pytest.raises(SettingRefused):
        quote(value, format_name)


def test_hostile_settings_are_refused_with_a_message(fake_catalogue):
    entry = fake_catalogue.get("web-base")
    title = entry.setting("title")
    with pytest.raises(SettingRefused, match="line breaks"):
        clean_setting(title, "Mesh\ninclude /etc/shadow")
    port = entry.setting("port")
    with pytest.raises(SettingRefused, match="between 18080 and 18080"):
        clean_setting(port, "22")


@pytest.mark.django_db
def test_a_hostile_setting_changes_nothing(fake_catalogue):
    services.update_settings(service_id="web-base", values={"title": "Mesh news"})
    for hostile in ("x\n[global]", "semi;colon", 'quote"'):
        with pytest.raises(SettingRefused):
            services.update_settings(service_id="web-base", values={"title": hostile})
    assert ServiceState.objects.get(service_id="web-base").settings == {
        "title": "Mesh news"
    }


@pytest.mark.django_db
def test_only_catalogue_ids_reach_jobs(
    fake_catalogue, django_capture_on_commit_callbacks
):
    for hostile in ("../etc", "web-base; rm", "", None, "WEB-BASE"):
        with pytest.raises(services.UnknownService):
            services.request_activation(service_id=hostile)
    assert not ServiceState.objects.exists()


@pytest.mark.django_db
def test_switching_on_marks_dependencies_and_queues_one_job(
    fake_catalogue, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(
        services, "enqueue_job", lambda **kwargs: queued.append(kwargs) or kwargs
    )
    services.request_activation(service_id="web-top")
    assert set(services.enabled_ids()) == {"web-base", "web-top"}
    base = ServiceState.objects.get(service_id="web-base")
    assert len(base.secrets["admin"]) == 24 and base.secrets_unseen
    assert queued == [
        {
            "kind": "services.activate",
            "arguments": {"service_id": "web-top"},
            "user": None,
        }
    ]
    services.request_deactivation(service_id="web-base")
    assert services.enabled_ids() == set()


def test_missing_packages_name_the_install_command(fake_catalogue):
    entry = fake_catalogue.get("web-missing")
    missing = missing_packages(entry, installed={"python3"})
    assert missing == ["byzantium-no-such-package"]
    assert install_hint(missing) == "apt-get install byzantium-no-such-package"


def _context(entry, tmp_path: Path, runner=None) -> ServiceContext:
    host = Host(
        mode="system", runner=runner or RecordingRunner(), files=FileStore(tmp_path)
    )
    return ServiceContext(
        entry=entry, host=host, network=NETWORK, settings={"port": 18080}
    )


def test_start_stop_daemon_plan_is_pinned(fake_catalogue, tmp_path: Path):
    runner = RecordingRunner()
    context = _context(fake_catalogue.get("web-top"), tmp_path, runner)
    supervisor = StartStopDaemonSupervisor(context.host)
    daemon = context.entry.daemons[0]
    supervisor.start(context, daemon)
    supervisor.stop(context, daemon)
    run = f"{tmp_path}/run/byzantium/services/web-top"
    assert [c.argv for c in runner.commands] == [
        (
            "start-stop-daemon", "--start", "--background", "--make-pidfile",
            "--oknodo", "--pidfile", f"{run}/supervised-http.pid",
            "--chuid", "nobody:nogroup",
            "--chdir", f"{tmp_path}/var/lib/byzantium/services/web-top",
            "--output", f"{tmp_path}/var/log/byzantium/services/web-top/http.log",
            "--exec", "/usr/bin/python3", "--", "-m", "http.server", "--bind",
            "10.213.1.1", "--directory", f"{tmp_path}/etc/byzantium/services/web-top",
            "18081",
        ),
        (
            "start-stop-daemon", "--stop", "--oknodo", "--remove-pidfile",
            "--pidfile", f"{run}/supervised-http.pid", "--exec", "/usr/bin/python3",
            "--retry", "TERM/5/KILL/2",
        ),
    ]  # fmt: skip


def test_systemd_plan_writes_a_sandboxed_unit_then_uses_systemctl(
    fake_catalogue, tmp_path: Path
):
    runner = RecordingRunner()
    context = _context(fake_catalogue.get("web-top"), tmp_path, runner)
    supervisor = SystemdSupervisor(context.host)
    daemon = context.entry.daemons[0]
    supervisor.prepare(context)
    supervisor.start(context, daemon)
    supervisor.is_running(context, daemon)
    supervisor.stop(context, daemon)
    assert [c.argv for c in runner.commands] == [
        ("systemctl", "daemon-reload"),
        ("systemctl", "start", "byzantium-web-top.service"),
        ("systemctl", "is-active", "--quiet", "byzantium-web-top.service"),
        ("systemctl", "stop", "byzantium-web-top.service"),
    ]
    unit = (tmp_path / "etc/systemd/system/byzantium-web-top.service").read_text()
    for line in (
        "User=nobody",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "ExecStart=/usr/bin/python3 -m http.server --bind 10.213.1.1",
    ):
        assert line in unit
    assert unit == render_unit(context, daemon)
    supervisor.prepare(context)  # unchanged unit: no second daemon-reload
    assert len(runner.commands) == 4


def test_firewall_keeps_ports_off_the_uplink(fake_catalogue, tmp_path: Path):
    text = render_firewall(_context(fake_catalogue.get("web-base"), tmp_path))
    assert 'iifname { "br-lan", "to-n2" } tcp dport 18080 accept' in text
    assert "tcp dport 18080 drop" in text


def test_builders_refuse_hostile_values():
    from portal.host.builders import apt, supervisor

    with pytest.raises(InvalidValue):
        apt.install(["ngircd", "-o=APT::Foo"])
    with pytest.raises(InvalidValue):
        supervisor.systemctl("start", "ssh.service")
    with pytest.raises(InvalidValue):
        supervisor.start_daemon(
            pidfile="/run/x.pid", program="/tmp/evil", user="nobody",
            group="nogroup", chdir="/", output="/tmp/log",
        )  # fmt: skip
    with pytest.raises((InvalidValue, CommandNotAllowed)):
        supervisor.create_system_user("root", "root")


@pytest.fixture
def admin_client(db, monkeypatch):
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


def test_pages_list_services_and_confirm_dependencies(fake_catalogue, admin_client):
    page = admin_client.get(reverse("services:list"), secure=True)
    assert page.status_code == 200
    assert b"Base web" in page.content and b"Top web" in page.content
    confirm = admin_client.get(
        reverse("services:switch_on", args=["web-top"]), secure=True
    )
    assert b"Base web" in confirm.content
    assert admin_client.get("/services/nope/", secure=True).status_code == 404
    refused = admin_client.post(
        reverse("services:detail", args=["web-base"]),
        {"title": "bad;value", "port": "18080"},
        secure=True,
    )
    assert refused.status_code == 200 and b"cannot be written" in refused.content
    assert not ServiceState.objects.filter(settings__title="bad;value").exists()
