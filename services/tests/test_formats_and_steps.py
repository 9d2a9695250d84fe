"""What the catalogue's authors needed of the framework, each with its case.

Quoting precise per config format (ngircd takes ``#mesh``, murmurd's Qt ini
refuses ``"``), booleans that test false in templates (prosody's
registration really switches off), the node's certificate and key as one
PEM for Icecast, the offline library's index rebuilt from the operator's
.zim folder with kiwix-manage, and a port that only names another
service's port left alone by the firewall. Real programs where they exist
(prosodyctl, xmllint, kiwix-manage), no lab needed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.template import Context, Template

from portal.host.errors import InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner, SystemRunner
from services import components
from services.catalogue import CatalogueError, catalogue, load_catalogue
from services.components import (
    ConfigFilesComponent,
    FirewallPortsComponent,
    ImportsComponent,
    checker_command,
    render_config,
    render_firewall,
)
from services.context import NodeNetwork, ServiceContext
from services.values import (
    RenderedBool,
    SettingRefused,
    effective_settings,
    ensure_secrets,
    quote,
)

from .fake_catalogue import write_fake_catalogue

NETWORK = NodeNetwork(
    node_name="n1",
    client_addresses=("10.213.1.1",),
    mesh_addresses=("10.213.0.1",),
    client_interfaces=("br-lan",),
    mesh_interfaces=("to-n2",),
)
SEED_ZIM = catalogue().get("library").seed_dir / "mesh-guide.zim"


def _context(
    service_id: str, root: Path, runner=None, settings: dict | None = None
) -> ServiceContext:
    entry = catalogue().get(service_id)
    secrets, _generated = ensure_secrets(entry, {})
    values = effective_settings(entry, settings or {})
    return ServiceContext(
        entry=entry,
        host=Host(
            mode="system", runner=runner or SystemRunner(), files=FileStore(root)
        ),
        network=NETWORK,
        settings={k: v for k, v in values.items() if v is not None},
        secrets=secrets,
    )


# -- (a) quoting per format ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "format_name", "expected"),
    [
        ("#mesh", "ngircd", "#mesh"),
        ("Topic; with # and = signs", "ngircd", "Topic; with # and = signs"),
        ("Hi; #all, a=b", "qtini", '"Hi; #all, a=b"'),
        ("@ByteArray(x)", "qtini", '"@@ByteArray(x)"'),
        ("", "qtini", '""'),
        ("#mesh", "words", "#mesh"),
    ],
)
def test_each_format_carries_what_its_reader_allows(value, format_name, expected):
    assert quote(value, format_name) == expected


@pytest.mark.parametrize(
    ("value", "format_name"),
    [
        ("#mesh", "ini"),
        (" padded", "ngircd"),
        ("x\n[Global]", "ngircd"),
        ('say "hi"', "qtini"),
        ("back\\slash", "qtini"),
        ("line\nbreak", "qtini"),
    ],
)
def test_each_format_refuses_what_its_reader_treats_specially(value, format_name):
    with pytest.raises(SettingRefused):
        quote(value, format_name)


def test_ngircd_takes_the_channel_setting_and_its_check_passes(tmp_path: Path):
    context = _context("ircd", tmp_path, settings={"channel": "#relief-north"})
    config = context.entry.config_files[0]
    text = render_config(context, config)
    assert "\tName = #relief-north\n" in text
    result = _check(context, config, text)
    assert result.returncode == 0, result.stderr


def test_murmurd_values_are_quoted_and_a_double_quote_is_refused(tmp_path: Path):
    context = _context(
        "voice", tmp_path, settings={"welcome": "Hello; #ops is at 9, a=b"}
    )
    text = render_config(context, context.entry.config_files[0])
    assert 'welcometext="Hello; #ops is at 9, a=b"\n' in text
    assert 'serverpassword=""\n' in text
    hostile = _context("voice", tmp_path, settings={"welcome": 'x" host=0.0.0.0'})
    with pytest.raises(SettingRefused):
        render_config(hostile, hostile.entry.config_files[0])


# -- (b) booleans --------------------------------------------------------------------


def test_a_false_boolean_renders_as_its_format_and_tests_false():
    rendered = quote(False, "lua")
    assert isinstance(rendered, RenderedBool)
    assert rendered == "false" and not rendered
    assert quote(True, "lua") == "true" and quote(True, "lua")
    template = Template("{% if flag %}on{% else %}off{% endif %} {{ flag }}")
    assert template.render(Context({"flag": quote(False, "lua")})) == "off false"
    assert quote(False, "ngircd") == "no" and quote(True, "xml") == "1"


@pytest.mark.parametrize("registration", [True, False])
def test_prosody_registration_follows_the_setting_and_prosodyctl_accepts_it(
    registration: bool, tmp_path: Path
):
    context = _context("xmpp", tmp_path, settings={"registration": registration})
    config = context.entry.config_files[0]
    text = render_config(context, config)
    expected = "true" if registration else "false"
    assert f"\nallow_registration = {expected}\n" in text
    result = _check(context, config, text)
    assert result.returncode == 0, (result.stdout, result.stderr)


# -- (c) one PEM for icecast ----------------------------------------------------------


@pytest.fixture
def node_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "state-tls"
    folder.mkdir()
    cert, key = folder / "portal.crt", folder / "portal.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=n1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    monkeypatch.setattr(components, "node_tls_source", lambda: (cert, key))
    return cert, key


def test_icecast_gets_certificate_and_key_in_one_pem_only_its_user_reads(
    node_certificate, tmp_path: Path
):
    cert, key = node_certificate
    root = tmp_path / "root"
    context = _context("stream", root)
    component = ConfigFilesComponent()
    component.setup(context)
    component.on(context)
    pem = Path(context.real("tls_pem"))
    assert pem.read_bytes() == cert.read_bytes().rstrip(b"\n") + b"\n" + (
        key.read_bytes()
    )
    status = pem.stat()
    assert status.st_mode & 0o777 == 0o600
    assert status.st_uid == pwd.getpwnam("icecast2").pw_uid
    text = Path(context.real("config_dir"), "icecast.xml").read_text()
    assert f"<ssl-certificate>{pem}</ssl-certificate>" in text
    assert "<port>8443</port>" in text and "<ssl>1</ssl>" in text


# -- (d) kiwix library from the operator's folder -------------------------------------


def _other_book(path: Path) -> Path:
    """A second book: the seed with another UUID (kiwix keys books by it)."""
    data = bytearray(SEED_ZIM.read_bytes())
    data[8:24] = bytes(range(16))
    path.write_bytes(bytes(data))
    return path


def test_every_zim_of_the_folder_joins_the_seed_book_in_the_library(tmp_path: Path):
    zims = tmp_path / "usb stick"
    zims.mkdir()
    _other_book(zims / "relief handbook.zim")
    (zims / "notes.txt").write_text("not a book")
    (zims / "broken.zim").write_text("not a zim either")
    root = tmp_path / "root"
    context = _context("library", root, settings={"zim_folder": str(zims)})
    ConfigFilesComponent().setup(context)
    components.DataSeedComponent().on(context)
    ImportsComponent().on(context)
    library = Path(context.real("data_dir"), "library.xml")
    text = library.read_text()
    assert 'id="a47aaa98-6c81-fedd-f895-67e2f55be19f" path="mesh-guide.zim"' in text
    assert 'id="00010203-0405-0607-0809-0a0b0c0d0e0f"' in text
    assert "relief handbook.zim" in text and "broken.zim" not in text
    assert library.stat().st_uid == pwd.getpwnam(context.entry.user).pw_uid
    # A book removed from the folder leaves the library at the next start.
    (zims / "relief handbook.zim").unlink()
    ImportsComponent().on(context)
    assert "relief handbook" not in library.read_text()
    assert 'path="mesh-guide.zim"' in library.read_text()


def test_a_missing_zim_folder_is_a_clear_problem(tmp_path: Path):
    context = _context("library", tmp_path, settings={"zim_folder": "/srv/no/such"})
    with pytest.raises(components.ServiceProblem, match="/srv/no/such"):
        ImportsComponent().on(context)


def test_the_kiwix_builder_takes_only_zim_paths():
    from portal.host.builders import kiwix

    command = kiwix.add_book(library="/var/lib/x/library.xml", zim="/srv/a b.zim")
    assert command.argv == (
        "kiwix-manage",
        "/var/lib/x/library.xml",
        "add",
        "/srv/a b.zim",
    )
    for hostile in ("--zimPathToSave=/x.zim", "/srv/../etc/x.zim", "/srv/x.xml"):
        with pytest.raises(InvalidValue):
            kiwix.add_book(library="/var/lib/x/library.xml", zim=hostile)
    with pytest.raises(InvalidValue):
        kiwix.add_book(library="/etc/shadow", zim="/srv/a.zim")


# -- (e) a port that is only described -------------------------------------------------


def test_the_onion_service_never_touches_the_chat_port_in_the_firewall(
    tmp_path: Path,
):
    runner = RecordingRunner()
    context = _context("onion-chat", tmp_path, runner)
    assert "dport 6667" not in render_firewall(context)
    FirewallPortsComponent().on(context)
    FirewallPortsComponent().off(context)
    assert runner.commands == []
    assert not (tmp_path / "etc/byzantium/services/onion-chat/firewall.nft").exists()
    # The chat itself still keeps 6667 off the uplink.
    assert "tcp dport 6667 drop" in render_firewall(_context("ircd", tmp_path))


def test_a_health_check_on_a_port_it_does_not_listen_on_is_refused(tmp_path: Path):
    folder = write_fake_catalogue(tmp_path / "cat")
    toml = folder / "web-base" / "service.toml"
    text = toml.read_text().replace(
        "port = 18080\n", "port = 18080\nlistens = false\n", 1
    )
    toml.write_text(text)
    with pytest.raises(CatalogueError, match="listens on"):
        load_catalogue(folder)


# -- helpers --------------------------------------------------------------------


def _check(context: ServiceContext, config, text: str) -> subprocess.CompletedProcess:
    """Run the daemon's own check on a copy its user can read (checkers drop
    root)."""
    folder = Path(tempfile.mkdtemp(prefix="byz-check-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        path = folder / config.template
        path.write_text(text)
        os.chmod(path, 0o644)
        command = checker_command(context, config, str(path))
        return subprocess.run(
            command.argv, capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
