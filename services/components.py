"""A catalogued service as an ordered list of small components.

Each component sets itself up, switches on, switches off and diagnoses
itself. :func:`switch_on` runs them in order (packages, config files, data
seed, firewall ports, daemon, health check, announcement) and
:func:`switch_off` in reverse, so a port is closed to the uplink before a
daemon listens, and a service is announced only after its health check
passed, and withdrawn before it stops.

An expected problem (packages missing, a config its daemon refuses, a
daemon that never answers) raises :class:`ServiceProblem` with a ``state``
(``missing`` / ``failing``) and a message for the operator; the job turns
it into the stored state and a failed job.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.template import Context, Engine
from django.utils.translation import gettext as _

from portal.host.builders import kiwix, nft
from portal.host.builders import supervisor as supervisor_builders
from portal.host.commands import Command

from .catalogue import CatalogueEntry, ConfigFile, Import
from .context import ServiceContext, expand
from .health import HealthResult, check_health, wait_healthy
from .supervisors import Supervisor
from .values import SettingRefused, quote

DPKG_STATUS = Path("/var/lib/dpkg/status")
MDNS_FOLDER = "/etc/byzantium/services/mdns"


class ServiceProblem(Exception):
    """An expected failure of a service, in the operator's words."""

    def __init__(self, message: str, *, state: str = "failing") -> None:
        super().__init__(message)
        self.message = message
        self.state = state


@dataclass(frozen=True)
class Finding:
    """One diagnosis line: which component, whether it is fine, and why."""

    component: str
    ok: bool
    message: str


class Component(Protocol):
    name: str

    def setup(self, context: ServiceContext) -> None: ...

    def on(self, context: ServiceContext) -> None: ...

    def off(self, context: ServiceContext) -> None: ...

    def diagnose(self, context: ServiceContext) -> Finding: ...


# -- packages -----------------------------------------------------------------


def installed_debian_packages(status_file: Path = DPKG_STATUS) -> set[str]:
    """Names dpkg lists as installed (read from its status file)."""
    installed: set[str] = set()
    try:
        text = status_file.read_text(errors="replace")
    except OSError:
        return installed
    for stanza in text.split("\n\n"):
        name = status = ""
        for line in stanza.splitlines():
            if line.startswith("Package: "):
                name = line[9:].strip()
            elif line.startswith("Status: "):
                status = line[8:].strip()
        if name and status.endswith(" installed"):
            installed.add(name)
    return installed


def missing_packages(
    entry: CatalogueEntry, installed: set[str] | None = None
) -> list[str]:
    """Debian packages not installed, and npm/PyPI ones whose program is absent."""
    installed = installed_debian_packages() if installed is None else installed
    missing = [name for name in entry.packages if name not in installed]
    if entry.npm_packages or entry.pypi_packages:
        if not all(os.path.exists(daemon.executable) for daemon in entry.daemons):
            missing += [f"npm:{name}" for name in entry.npm_packages]
            missing += [f"pypi:{name}" for name in entry.pypi_packages]
    return missing


def install_hint(missing: list[str]) -> str:
    """The command an operator runs to install what is missing."""
    debian = [name for name in missing if ":" not in name]
    npm = [name[4:] for name in missing if name.startswith("npm:")]
    pypi = [name[5:] for name in missing if name.startswith("pypi:")]
    parts = []
    if debian:
        parts.append("apt-get install " + " ".join(debian))
    if npm:
        parts.append("npm install -g " + " ".join(npm))
    if pypi:
        parts.append("pip install " + " ".join(pypi))
    return "; ".join(parts)


class PackagesComponent:
    name = "packages"

    def setup(self, context: ServiceContext) -> None:
        """Packages are installed by their own job, never implicitly."""

    def on(self, context: ServiceContext) -> None:
        missing = missing_packages(context.entry)
        if missing:
            raise ServiceProblem(
                _("Packages missing: %(names)s. Install them with: %(hint)s")
                % {"names": ", ".join(missing), "hint": install_hint(missing)},
                state="missing",
            )

    def off(self, context: ServiceContext) -> None:
        """Packages stay installed."""

    def diagnose(self, context: ServiceContext) -> Finding:
        missing = missing_packages(context.entry)
        if missing:
            return Finding(
                self.name,
                False,
                _("Packages missing: %(names)s.") % {"names": ", ".join(missing)},
            )
        return Finding(self.name, True, _("Packages installed."))


# -- user, folders and config files --------------------------------------------


def _ids(entry: CatalogueEntry) -> tuple[int, int] | None:
    try:
        return pwd.getpwnam(entry.user).pw_uid, grp.getgrnam(entry.group).gr_gid
    except KeyError:
        return None


def _chown(path: Path, uid: int, gid: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, uid, gid)


def template_engine(entry: CatalogueEntry) -> Engine:
    """A standalone engine reading only the entry's folder; no autoescape."""
    return Engine(dirs=[str(entry.folder)], autoescape=False, libraries={})


def template_context(context: ServiceContext, config: ConfigFile) -> dict:
    """The values a template sees; settings and secrets quoted for its format."""
    entry = context.entry
    return {
        "service": {"id": entry.id},
        "node": {"name": context.network.node_name},
        "paths": {
            name: context.real(name)
            for name in (
                "config_dir",
                "data_dir",
                "run_dir",
                "log_dir",
                "tls_cert",
                "tls_key",
                "tls_pem",
            )
        },
        "listen": {
            "client": list(context.network.client_addresses),
            "mesh": list(context.network.mesh_addresses),
            "all": list(context.listen_all),
        },
        "ports": {port.name: port.port for port in entry.ports},
        "user": entry.user,
        "group": entry.group,
        "settings": {
            key: quote(value, config.format) for key, value in context.settings.items()
        },
        "secrets": {
            key: quote(value, config.format) for key, value in context.secrets.items()
        },
    }


def render_config(context: ServiceContext, config: ConfigFile) -> str:
    """One config file's text; :class:`SettingRefused` if a value cannot go in."""
    template = template_engine(context.entry).get_template(config.template)
    # The Context decides escaping, not the Engine: without autoescape=False
    # here, a quoted Lua or ini value would arrive as &quot;...&quot;.
    return template.render(Context(template_context(context, config), autoescape=False))


def checker_command(
    context: ServiceContext, config: ConfigFile, real_path: str
) -> Command:
    argv = (
        config.check[0],
        *(expand(arg, context, {"path": real_path}) for arg in config.check[1:]),
    )
    return Command(argv, check=False, timeout=60.0)


def node_tls_source() -> tuple[Path, Path]:
    """The node's own certificate and key (made by ``portal_init``)."""
    from django.conf import settings

    from portal.tls import CERT_NAME, KEY_NAME

    folder = Path(settings.PORTAL.state_dir) / "tls"
    return folder / CERT_NAME, folder / KEY_NAME


class ConfigFilesComponent:
    """The service's user, its folders, TLS copies and rendered configs."""

    name = "config"

    def setup(self, context: ServiceContext) -> None:
        entry = context.entry
        ids = _ids(entry)
        if ids is None and entry.create_user:
            context.host.runner.run(
                supervisor_builders.create_system_user(entry.user, entry.group)
            )
            ids = _ids(entry)
        if ids is None:
            raise ServiceProblem(
                _("The system user %(user)s does not exist; install the packages.")
                % {"user": entry.user},
                state="missing",
            )
        uid, gid = ids
        for name, owner in (
            ("config_dir", 0),
            ("data_dir", uid),
            ("run_dir", uid),
            ("log_dir", uid),
        ):
            folder = Path(context.real(name))
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o750)  # noqa: S103 - group is the service's own
            _chown(folder, owner, gid)

    def _tls(self, context: ServiceContext) -> None:
        """Copies of the node's certificate the service's user can read.

        Certificate and key separately (root, group = the service's group,
        0640), and both in one PEM for programs that read them together
        (Icecast): that one owned by the service's user, 0600, since some
        programs refuse a key file others can read.
        """
        cert_file, key_file = node_tls_source()
        if not (cert_file.is_file() and key_file.is_file()):
            return
        cert, key = cert_file.read_bytes(), key_file.read_bytes()
        ids = _ids(context.entry)
        for name, data in (("tls_cert", cert), ("tls_key", key)):
            context.host.files.write(context.node_path(name), data, mode=0o640)
            if ids:
                _chown(Path(context.real(name)), 0, ids[1])
        combined = cert.rstrip(b"\n") + b"\n" + key
        context.host.files.write(context.node_path("tls_pem"), combined, mode=0o600)
        if ids:
            _chown(Path(context.real("tls_pem")), *ids)

    def on(self, context: ServiceContext) -> None:
        entry = context.entry
        try:
            rendered = [
                (config, render_config(context, config))
                for config in entry.config_files
            ]
        except SettingRefused as refused:
            raise ServiceProblem(refused.message) from None
        self._tls(context)
        ids = _ids(entry)
        for config, text in rendered:
            node_path = expand_node_path(context, config.path)
            previous = context.host.files.read_bytes(node_path)
            context.host.files.write(node_path, text, mode=config.mode)
            real = Path(context.real_path(node_path))
            if ids:
                _chown(real, 0, ids[1])
            if not config.check:
                continue
            result = context.host.runner.run(
                checker_command(context, config, str(real))
            )
            if not result.ok:
                if previous is None:
                    context.host.files.remove(node_path)
                else:
                    context.host.files.write(node_path, previous, mode=config.mode)
                output = (result.stderr or result.stdout).strip()[-400:]
                raise ServiceProblem(
                    _("%(program)s refused the new %(file)s: %(output)s")
                    % {
                        "program": config.check[0],
                        "file": config.template,
                        "output": output,
                    }
                )

    def off(self, context: ServiceContext) -> None:
        """Configs stay, so switching on again starts from the same state."""

    def diagnose(self, context: ServiceContext) -> Finding:
        absent = [
            config.template
            for config in context.entry.config_files
            if not context.host.files.exists(expand_node_path(context, config.path))
        ]
        if absent:
            return Finding(
                self.name,
                False,
                _("Config not written yet: %(files)s.") % {"files": ", ".join(absent)},
            )
        return Finding(self.name, True, _("Config files written."))


def expand_node_path(context: ServiceContext, path: str) -> str:
    """A config path with its folder placeholder as a *node* path."""
    for name in ("config_dir", "data_dir", "run_dir"):
        token = "{" + name + "}"
        if path.startswith(token):
            return context.node_path(name) + path[len(token) :]
    raise ValueError(path)


# -- first-run data --------------------------------------------------------------


class DataSeedComponent:
    """Copies the bundled initial state into an empty data folder."""

    name = "seed"

    def setup(self, context: ServiceContext) -> None:
        """Folders are made by the config component."""

    def on(self, context: ServiceContext) -> None:
        entry = context.entry
        if not entry.seed:
            return
        target = Path(context.real("data_dir"))
        if target.is_dir() and any(target.iterdir()):
            return
        shutil.copytree(entry.seed_dir, target, dirs_exist_ok=True)
        ids = _ids(entry)
        if ids:
            for path in [target, *target.rglob("*")]:
                _chown(path, *ids)

    def off(self, context: ServiceContext) -> None:
        """Data is the community's: never removed."""

    def diagnose(self, context: ServiceContext) -> Finding:
        target = Path(context.real("data_dir"))
        if context.entry.seed and not (target.is_dir() and any(target.iterdir())):
            return Finding(self.name, False, _("The data folder is empty."))
        return Finding(self.name, True, _("Data folder ready."))


# -- imports from an operator folder -----------------------------------------------

IMPORT_TOOLS = {"kiwix-manage": kiwix.add_book}


def import_files(folder: Path, suffix: str) -> list[Path]:
    """Regular files directly in ``folder`` ending in ``suffix``, sorted."""
    try:
        found = [
            path
            for path in folder.iterdir()
            if path.name.endswith(suffix) and path.is_file()
        ]
    except OSError:
        return []
    return sorted(found)


class ImportsComponent:
    """Rebuilds an index from the operator's folder before each start.

    The index is built beside the live one and renamed over it, so the
    daemon (kiwix-serve watches its library) never reads half a file. A
    file the tool refuses is skipped and named in the job log; the seed's
    copy of the index is the starting point, so the bundled book stays.
    """

    name = "imports"

    def setup(self, context: ServiceContext) -> None:
        """Folders are made by the config component."""

    def on(self, context: ServiceContext) -> None:
        for item in context.entry.imports:
            self._rebuild(context, item)

    def _rebuild(self, context: ServiceContext, item: Import) -> None:
        entry = context.entry
        folder_value = context.settings.get(item.setting)
        files: list[Path] = []
        if folder_value:
            folder = Path(str(folder_value))
            if not folder.is_dir():
                raise ServiceProblem(
                    _("The folder %(folder)s does not exist on this computer.")
                    % {"folder": folder}
                )
            files = import_files(folder, item.suffix)
        node_index = expand_node_path(context, item.index)
        name = node_index.rsplit("/", 1)[1]
        building = f"{node_index}.new.xml" if name.endswith(".xml") else node_index
        seed_copy = entry.seed_dir / name
        context.host.files.remove(building)
        if entry.seed and seed_copy.is_file():
            context.host.files.write(building, seed_copy.read_bytes(), mode=0o640)
        real_building = context.real_path(building)
        refused: list[str] = []
        for path in files:
            result = context.host.runner.run(
                IMPORT_TOOLS[item.tool](library=real_building, zim=str(path))
            )
            if not result.ok:
                refused.append(path.name)
        if refused:
            from portal.jobqueue.log import note

            note(
                _("Not added (the file could not be read): %(files)s")
                % {"files": ", ".join(refused)}
            )
        real = Path(real_building)
        if not real.exists():
            # Nothing to list (no seed copy, no file): the index stays as is.
            return
        os.chmod(real, 0o640)
        ids = _ids(entry)
        if ids:
            _chown(real, *ids)
        os.replace(real, context.real_path(node_index))

    def off(self, context: ServiceContext) -> None:
        """The index stays; the next start rebuilds it."""

    def diagnose(self, context: ServiceContext) -> Finding:
        for item in context.entry.imports:
            folder_value = context.settings.get(item.setting)
            if folder_value and not Path(str(folder_value)).is_dir():
                return Finding(
                    self.name,
                    False,
                    _("The folder %(folder)s does not exist on this computer.")
                    % {"folder": folder_value},
                )
        return Finding(self.name, True, _("Imported files listed."))


# -- firewall --------------------------------------------------------------------


def firewall_table(entry: CatalogueEntry) -> str:
    return "byz_svc_" + entry.id.replace("-", "_")


def listening_ports(entry: CatalogueEntry) -> list:
    """The entry's ports it listens on itself (not those naming another's)."""
    return [port for port in entry.ports if port.listens]


def render_firewall(context: ServiceContext) -> str:
    """An nft table that keeps the service's ports off the uplink.

    Its own table per service: switching one service off deletes only its
    table. Policy accept, so it never opens anything; it drops traffic to
    the ports that arrives on interfaces that are not the allowed sides.
    """
    entry = context.entry
    table = firewall_table(entry)
    lines = [
        f"table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        "  chain input {",
        "    type filter hook input priority filter - 5; policy accept;",
        '    iifname "lo" accept',
    ]
    for port in listening_ports(entry):
        if context.on_uplink:
            break
        allowed: list[str] = []
        if "client" in port.on:
            allowed += context.network.client_interfaces
        if "mesh" in port.on:
            allowed += context.network.mesh_interfaces
        if allowed:
            names = ", ".join(f'"{name}"' for name in sorted(set(allowed)))
            lines.append(
                f"    iifname {{ {names} }} {port.proto} dport {port.port} accept"
            )
        lines.append(f"    {port.proto} dport {port.port} drop")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


class FirewallPortsComponent:
    name = "firewall"

    def rules_path(self, context: ServiceContext) -> str:
        return f"{context.entry.config_dir}/firewall.nft"

    def setup(self, context: ServiceContext) -> None:
        """Nothing beyond on()."""

    def on(self, context: ServiceContext) -> None:
        if not listening_ports(context.entry):
            return
        path = self.rules_path(context)
        context.host.files.write(path, render_firewall(context), mode=0o640)
        real = context.real_path(path)
        context.host.runner.run(nft.check_file(real))
        context.host.runner.run(nft.apply_file(real))

    def off(self, context: ServiceContext) -> None:
        if not listening_ports(context.entry):
            return
        context.host.runner.run(
            nft.delete_table(firewall_table(context.entry), missing_ok=True)
        )

    def diagnose(self, context: ServiceContext) -> Finding:
        return Finding(
            self.name, True, _("Ports limited to the client and mesh sides.")
        )


# -- daemon and health --------------------------------------------------------------


class DaemonComponent:
    name = "daemon"

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def setup(self, context: ServiceContext) -> None:
        self.supervisor.prepare(context)

    def on(self, context: ServiceContext) -> None:
        for daemon in context.entry.daemons:
            if not self.supervisor.is_running(context, daemon):
                self.supervisor.start(context, daemon)

    def off(self, context: ServiceContext) -> None:
        for daemon in reversed(context.entry.daemons):
            self.supervisor.stop(context, daemon)

    def diagnose(self, context: ServiceContext) -> Finding:
        stopped = [
            daemon.name
            for daemon in context.entry.daemons
            if not self.supervisor.is_running(context, daemon)
        ]
        if stopped:
            return Finding(
                self.name,
                False,
                _("Not running: %(names)s.") % {"names": ", ".join(stopped)},
            )
        return Finding(self.name, True, _("Running."))


class HealthCheckComponent:
    """Starting is confirmed by the check, not assumed."""

    name = "health"

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.last: HealthResult | None = None

    def setup(self, context: ServiceContext) -> None:
        """Nothing to prepare."""

    def on(self, context: ServiceContext) -> None:
        self.last = wait_healthy(context, self.supervisor)
        if not self.last.ok:
            said = " ".join(
                self.supervisor.log_tail(context, daemon)
                for daemon in context.entry.daemons
            ).strip()
            message = _("Started, but the health check fails: %(message)s") % {
                "message": self.last.message
            }
            if said:
                message += " " + _("Its last words: %(log)s") % {"log": said[-4000:]}
            raise ServiceProblem(message)

    def off(self, context: ServiceContext) -> None:
        """Nothing to undo."""

    def diagnose(self, context: ServiceContext) -> Finding:
        self.last = check_health(context, self.supervisor)
        return Finding(self.name, self.last.ok, self.last.message)


# -- the address a service publishes itself (an onion address) -------------------

HOST_NAME_RE = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+"
)
ADDRESS_WAIT_SECONDS = 5.0


def read_client_address(context: ServiceContext, wait: float = 0.0) -> str:
    """The host name the daemon wrote to its ``address_file``, or "".

    tor writes its onion ``hostname`` a moment after it starts, hence the
    short wait. Anything but one host name (at most 100 characters) is
    ignored: the file is the daemon's, but the page must show a name only.
    """
    address_file = context.entry.client.address_file
    if not address_file:
        return ""
    path = Path(expand(address_file, context))
    deadline = time.monotonic() + wait
    while True:
        try:
            text = path.read_text(errors="replace").strip()
        except OSError:
            text = ""
        if text or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if len(text) <= 100 and HOST_NAME_RE.fullmatch(text):
        return text
    return ""


# -- announcement -----------------------------------------------------------------


def mdns_record(context: ServiceContext) -> dict | None:
    """The DNS-SD record the client-side responder publishes, or None."""
    entry = context.entry
    port_name = entry.client.port or entry.health.port
    if not port_name and entry.ports:
        port_name = entry.ports[0].name
    if not entry.client.mdns_type or not port_name:
        return None
    return {
        "id": entry.id,
        "name": f"{entry.name} ({context.network.node_name})"[:63],
        "type": entry.client.mdns_type,
        "port": entry.port(port_name).port,
        "addresses": list(context.network.client_addresses),
    }


class AnnouncementComponent:
    """Node document (and so mesh DNS and the captive page) plus mDNS.

    The node document is built from the database by the web process
    (:mod:`services.announce`); here the cached copy is dropped so the
    change shows at once, and the mDNS record file is written or removed.
    """

    name = "announcement"

    def record_path(self, context: ServiceContext) -> str:
        return f"{MDNS_FOLDER}/{context.entry.id}.json"

    def setup(self, context: ServiceContext) -> None:
        """Nothing to prepare."""

    def on(self, context: ServiceContext) -> None:
        record = mdns_record(context)
        if record is not None:
            context.host.files.write(
                self.record_path(context),
                json.dumps(record, sort_keys=True),
                mode=0o644,
            )
            _sync_mdns(context)
        _invalidate_document()

    def off(self, context: ServiceContext) -> None:
        if context.host.files.remove(self.record_path(context)):
            _sync_mdns(context)
        _invalidate_document()

    def diagnose(self, context: ServiceContext) -> Finding:
        return Finding(self.name, True, _("Announced while healthy."))


def _sync_mdns(context: ServiceContext) -> None:
    """Make the client-side responder follow the records folder now.

    It starts with the first record, re-reads on SIGHUP and stops (with
    goodbye packets) after the last one goes. A responder that cannot
    start does not fail the service: the job log shows its commands.
    """
    from . import mdns

    mdns.sync_responder(context.host, context.network)


def _invalidate_document() -> None:
    try:
        from meshnet.node_document import invalidate_cached_document
    except ImportError:  # pragma: no cover - meshnet is always installed
        return
    invalidate_cached_document()


# -- the whole service ---------------------------------------------------------------


def service_components(supervisor: Supervisor) -> list[Component]:
    """The components of any service, in switch-on order."""
    return [
        PackagesComponent(),
        ConfigFilesComponent(),
        DataSeedComponent(),
        ImportsComponent(),
        FirewallPortsComponent(),
        DaemonComponent(supervisor),
        HealthCheckComponent(supervisor),
        AnnouncementComponent(),
    ]


def switch_on(context: ServiceContext, supervisor: Supervisor) -> list[str]:
    """Set up and switch on every component in order; names of those run."""
    ran: list[str] = []
    for component in service_components(supervisor):
        component.setup(context)
        component.on(context)
        ran.append(component.name)
    return ran


def switch_off(context: ServiceContext, supervisor: Supervisor) -> list[str]:
    """Switch off every component in reverse order; names of those run."""
    ran: list[str] = []
    for component in reversed(service_components(supervisor)):
        component.off(context)
        ran.append(component.name)
    return ran


def diagnose(context: ServiceContext, supervisor: Supervisor) -> list[Finding]:
    """Every component's own diagnosis, in order."""
    return [component.diagnose(context) for component in service_components(supervisor)]


def is_running(context: ServiceContext, supervisor: Supervisor) -> bool:
    """Read from the system: every daemon of the service runs."""
    return all(supervisor.is_running(context, d) for d in context.entry.daemons)
