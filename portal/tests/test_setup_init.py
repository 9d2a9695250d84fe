"""``manage.py portal_init``: folders, TLS certificate, one-time secret."""

from __future__ import annotations

import io
import re
import stat
import subprocess

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from portal import access, tls
from portal.models import NodeSettings

pytestmark = pytest.mark.django_db


def _init(state) -> str:
    out = io.StringIO()
    with override_settings(STATE_DIR=state):
        call_command("portal_init", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _printed_secret(output: str) -> str:
    match = re.search(r"^\s+([A-Z0-9]{5}(?:-[A-Z0-9]{5}){3})$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_first_run_makes_folders_certificate_and_secret(tmp_path):
    state = tmp_path / "state"
    output = _init(state)
    for folder in ("db", "run", "tls"):
        assert (state / folder).is_dir()
    cert, key = state / "tls" / "portal.crt", state / "tls" / "portal.key"
    assert _mode(key) == 0o600
    assert _mode(cert) == 0o600
    assert _mode(state / "tls") == 0o700
    # The printed fingerprint is the one openssl computes.
    openssl = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    expected = openssl.split("=", 1)[1]
    assert f"Certificate SHA-256 fingerprint: {expected}" in output
    # The certificate names localhost and 127.0.0.1.
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    # The secret is printed, stored root-only, and only its hash is in the DB.
    secret = _printed_secret(output)
    secret_file = state / "setup-secret"
    assert secret_file.read_text().strip() == secret
    assert _mode(secret_file) == 0o600
    node = NodeSettings.load()
    assert node.setup_secret_matches(secret)
    assert secret not in node.setup_secret_hash
    assert access.normalise_setup_secret(secret) not in node.setup_secret_hash


def test_running_again_keeps_certificate_and_secret(tmp_path):
    state = tmp_path / "state"
    first = _init(state)
    cert_before = (state / "tls" / "portal.crt").read_bytes()
    second = _init(state)
    assert (state / "tls" / "portal.crt").read_bytes() == cert_before
    assert _printed_secret(first) == _printed_secret(second)
    assert "Using the HTTPS certificate" in second
    fingerprint = tls.fingerprint(cert_before.decode())
    assert fingerprint in first and fingerprint in second


def test_a_lost_secret_file_gets_a_new_secret(tmp_path):
    state = tmp_path / "state"
    first = _printed_secret(_init(state))
    (state / "setup-secret").unlink()
    second = _printed_secret(_init(state))
    assert first != second
    node = NodeSettings.load()
    assert node.setup_secret_matches(second)
    assert not node.setup_secret_matches(first)


def test_after_setup_the_secret_file_is_deleted(tmp_path):
    state = tmp_path / "state"
    _init(state)
    node = NodeSettings.load()
    node.setup_completed_at = timezone.now()
    node.setup_secret_hash = ""
    node.save()
    output = _init(state)
    assert not (state / "setup-secret").exists()
    assert "Setup is done" in output
    assert not re.search(r"[A-Z0-9]{5}-[A-Z0-9]{5}-", output)


def test_fingerprint_of_a_pem_certificate_matches_sha256_of_der(tmp_path):
    files = tls.TlsFiles(tmp_path / "tls")
    from portal.host.runner import SystemRunner

    assert tls.ensure_certificate(files, node_name="node-7", runner=SystemRunner())
    assert not tls.ensure_certificate(files, node_name="node-7", runner=SystemRunner())
    der = subprocess.run(
        ["openssl", "x509", "-in", str(files.cert), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    import hashlib

    digest = hashlib.sha256(der).hexdigest().upper()
    assert tls.fingerprint(files.cert.read_text()).replace(":", "") == digest


def _init_in_mode(state, mode: str) -> str:
    import dataclasses

    from django.conf import settings

    portal = dataclasses.replace(settings.PORTAL, host_mode=mode)
    with override_settings(PORTAL=portal):
        return _init(state)


def test_lab_first_run_holds_the_lab_phone_with_the_captive_portal(tmp_path):
    from captive.models import PortalInterface
    from portal.models import Job

    output = _init_in_mode(tmp_path / "state", "lab")
    assert list(PortalInterface.objects.values_list("name", "enabled")) == [
        ("br-lan", True)
    ]
    assert "captive portal is on" in output
    # The worker applies it when it starts: a pending job row waits for it.
    assert Job.objects.filter(kind="captive.apply_portal").count() == 1


def test_lab_later_runs_keep_the_operators_choice_of_portal_interfaces(tmp_path):
    from captive.models import PortalInterface
    from portal.models import Job

    PortalInterface.objects.create(name="br-lan", enabled=False)
    output = _init_in_mode(tmp_path / "state", "lab")
    assert list(PortalInterface.objects.values_list("name", "enabled")) == [
        ("br-lan", False)
    ]
    assert "captive portal is on" not in output
    assert not Job.objects.filter(kind="captive.apply_portal").exists()


def test_system_mode_never_switches_the_portal_on_by_itself(tmp_path):
    from captive.models import PortalInterface

    _init_in_mode(tmp_path / "state", "system")
    assert not PortalInterface.objects.exists()


def test_lab_first_run_stores_the_lab_nodes_plan_as_the_mesh_state(tmp_path):
    from meshnet.models import MeshInterface, MeshSettings
    from meshnet.state import MeshState

    output = _init_in_mode(tmp_path / "state", "lab")
    state = MeshState.from_db()
    assert state.mesh_address == "10.213.0.1"
    assert state.client_subnet == "10.213.1.0/24"
    assert {(i.name, i.role) for i in state.interfaces} == {
        ("to-n2", "mesh"),
        ("br-lan", "clients"),
    }
    assert "10.213.0.1" in output
    # The captive portal now names the node by its client-side address.
    from captive.selectors import portal_facts

    assert portal_facts().portal_host == "10.213.1.1"
    # A second run (or an operator's own choice) is left alone.
    MeshInterface.objects.filter(name="to-n2").delete()
    MeshSettings.objects.update(client_subnet="10.99.1.0/24")
    _init_in_mode(tmp_path / "state", "lab")
    assert MeshState.from_db().client_subnet == "10.99.1.0/24"
    assert not MeshInterface.objects.filter(name="to-n2").exists()
