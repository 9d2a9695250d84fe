"""The catalogue's real services: every entry loads, its programs exist, and
every rendered config passes its daemon's own check mode.

The checks run the real programs (ngircd --configtest, prosodyctl check
config, squid -k parse, xmllint, tor --verify-config) on configs rendered by
the framework's renderer with a lab-like node (n1: client 10.213.1.1, mesh
10.213.0.1), so a template that the daemon would refuse fails here, not on
a node in the field. The Debian packages come from the Makefile's
DEBIAN_PACKAGES.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import SystemRunner
from services.catalogue import CatalogueEntry, catalogue
from services.components import checker_command, render_config
from services.context import NodeNetwork, ServiceContext
from services.values import effective_settings, ensure_secrets

REPO = Path(__file__).resolve().parents[2]
NETWORK = NodeNetwork(
    node_name="n1",
    client_addresses=("10.213.1.1",),
    mesh_addresses=("10.213.0.1",),
    client_interfaces=("br-lan",),
    mesh_interfaces=("to-n2",),
)
ANY_ADDRESS = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d/])|\[::\]")
CHECKED = {"ircd", "xmpp", "stream", "proxy", "onion-chat"}


def _makefile_packages() -> set[str]:
    text = (REPO / "Makefile").read_text()
    match = re.search(r"^DEBIAN_PACKAGES := (.*?)(?<!\\)\n", text, re.M | re.S)
    assert match
    return set(match.group(1).replace("\\\n", " ").split())


def _readable_copy(tmp_path: Path, name: str, text: str) -> Path:
    """The file where the daemon's own user can read it (checkers drop root)."""
    folder = Path(tempfile.mkdtemp(prefix="byz-check-", dir="/tmp"))
    folder.chmod(0o755)
    path = folder / name
    path.write_text(text)
    path.chmod(0o644)
    _made.append(folder)
    return path


_made: list[Path] = []


def _traversable_root() -> Path:
    """A node root every user may walk through, as / is on a node: the
    checkers run as the daemon's user, who must reach the data folders
    (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="byz-root-", dir="/tmp"))
    folder.chmod(0o755)
    _made.append(folder)
    return folder


@pytest.fixture(autouse=True)
def _remove_readable_copies():
    yield
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)


def _context(entry: CatalogueEntry, root: Path) -> ServiceContext:
    secrets, _generated = ensure_secrets(entry, {})
    return ServiceContext(
        entry=entry,
        host=Host(mode="system", runner=SystemRunner(), files=FileStore(root)),
        network=NETWORK,
        settings=effective_settings(entry, {}),
        secrets=secrets,
    )


def test_catalogue_has_at_least_eight_real_services() -> None:
    entries = list(catalogue())
    assert len(entries) >= 8
    for entry in entries:
        assert entry.packages, entry.id
        for daemon in entry.daemons:
            assert Path(daemon.executable).is_file(), daemon.executable
            # A compiled program, not a script: the supervisors find the
            # process by its executable, and a script's is its interpreter.
            with open(daemon.executable, "rb") as program:
                assert program.read(4) == b"\x7fELF", daemon.executable


def test_every_package_of_the_catalogue_is_installed_by_the_makefile() -> None:
    wanted = {package for entry in catalogue() for package in entry.packages}
    assert wanted <= _makefile_packages()


def test_no_service_runs_as_root_or_listens_on_the_uplink() -> None:
    for entry in catalogue():
        assert entry.user != "root" and entry.group != "root"
        assert not entry.uplink_allowed, entry.id
        for port in entry.ports:
            assert "uplink" not in port.on


@pytest.mark.parametrize("service_id", sorted(CHECKED))
def test_rendered_config_passes_the_daemons_own_check(
    service_id: str, tmp_path: Path
) -> None:
    entry = catalogue().get(service_id)
    context = _context(entry, _traversable_root())
    assert entry.config_files
    for config in entry.config_files:
        text = render_config(context, config)
        assert "{{" not in text and "{%" not in text
        for secret in context.secrets.values():
            # generated secrets, never a well-known default
            assert "hackme" not in text and len(secret) >= 16
        if not config.check:
            continue
        assert shutil.which(config.check[0]), config.check[0]
        path = _readable_copy(tmp_path, config.template, text)
        command = checker_command(context, config, str(path))
        result = subprocess.run(
            command.argv, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, (config.template, result.stdout, result.stderr)


@pytest.mark.parametrize("service_id", sorted(CHECKED))
def test_a_broken_config_is_refused_by_the_same_check(
    service_id: str, tmp_path: Path
) -> None:
    entry = catalogue().get(service_id)
    context = _context(entry, tmp_path)
    config = next(config for config in entry.config_files if config.check)
    text = render_config(context, config)
    broken = {
        "ircd": text.replace("Name = irc.n1.mesh", "Name = nodot"),
        "xmpp": text + "\nthis is not lua (\n",
        "stream": text.replace("</icecast>", ""),
        "proxy": text + "\nno_such_directive on\n",
        "onion-chat": text + "\nNoSuchTorOption 1\n",
    }[service_id]
    assert broken != text
    path = _readable_copy(tmp_path, config.template, broken)
    command = checker_command(context, config, str(path))
    result = subprocess.run(
        command.argv, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0


def test_configs_listen_only_on_the_client_and_mesh_addresses(tmp_path: Path) -> None:
    for entry in catalogue():
        context = _context(entry, tmp_path)
        for config in entry.config_files:
            text = render_config(context, config)
            assert not ANY_ADDRESS.search(text), (entry.id, config.template)
        for daemon in entry.daemons:
            assert not any(ANY_ADDRESS.search(arg) for arg in daemon.args)


def test_library_seed_is_a_kiwix_library_with_the_mesh_guide() -> None:
    entry = catalogue().get("library")
    library = (entry.seed_dir / "library.xml").read_text()
    assert 'path="mesh-guide.zim"' in library
    assert (entry.seed_dir / "mesh-guide.zim").stat().st_size > 1000


def test_onion_chat_check_passes_again_once_tor_owns_its_data_folder(
    tmp_path: Path,
) -> None:
    """The worker checks as root; after the first start tor's data folder
    belongs to debian-tor, and a root tor would refuse it unless told the
    user the daemon runs as (a second switch-on failed that way)."""
    import pwd

    entry = catalogue().get("onion-chat")
    context = _context(entry, _traversable_root())
    config = entry.config_files[0]
    text = render_config(context, config)
    data_dir = Path(re.search(r"^DataDirectory (\S+)$", text, re.M).group(1))
    data_dir.mkdir(parents=True)
    data_dir.chmod(0o700)
    for parent in data_dir.parents:
        if parent == Path("/tmp"):
            break
        parent.chmod(0o755)
    tor_user = pwd.getpwnam("debian-tor")
    os.chown(data_dir, tor_user.pw_uid, tor_user.pw_gid)
    path = _readable_copy(tmp_path, config.template, text)
    command = checker_command(context, config, str(path))
    result = subprocess.run(
        command.argv, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_webchat_seed_holds_converse_installed_by_make_deps() -> None:
    """The page loads /converse/converse.min.js and its chunks from the seed:
    without `make deps` the web chat would serve a page that does nothing."""
    entry = catalogue().get("webchat")
    converse = entry.seed_dir / "converse"
    assert (converse / "converse.min.js").is_file(), "run make deps"
    assert (converse / "converse.min.css").is_file()
    assert any((converse / "chunkjs" / "locales").glob("*.js"))  # translations
    assert not list(converse.rglob("*.map"))
    page = (entry.folder / "index.html").read_text()
    assert 'assets_path: "/converse/"' in page and "use_system_emojis: true" in page
