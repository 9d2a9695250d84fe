"""Two real back ends that start, stop and read service daemons.

- :class:`StartStopDaemonSupervisor`: Debian's ``start-stop-daemon`` with a
  pid file per daemon, run through the host's runner, so in the lab the
  daemon starts inside the node's network namespace. Used wherever PID 1 is
  not systemd (the lab, CI, containers).
- :class:`SystemdSupervisor`: a generated unit per daemon,
  ``/etc/systemd/system/byzantium-<id>[-<daemon>].service``, with the
  entry's sandboxing options, driven by ``systemctl``. Used on real nodes.

:func:`supervisor_for` picks one from the host (``/run/systemd/system``
exists only when systemd is PID 1). Both answer :meth:`is_running` from
the system (pid file + executable, or ``systemctl is-active``), never from
a stored flag. Starting returns when the start command returned; the
health check (:mod:`services.health`) decides whether it *works*.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from portal.host.builders import supervisor as builders
from portal.host.node import Host

from .catalogue import CatalogueEntry, Daemon
from .context import ServiceContext, expand

UNIT_FOLDER = "/etc/systemd/system"
# How much of a daemon's log a failed start quotes to the operator.
LOG_TAIL_BYTES = 2048


def unit_name(entry: CatalogueEntry, daemon: Daemon) -> str:
    """``byzantium-<id>.service`` for the first daemon, ``-<name>`` after."""
    if daemon is entry.daemons[0]:
        return f"byzantium-{entry.id}.service"
    return f"byzantium-{entry.id}-{daemon.name}.service"


class Supervisor(Protocol):
    """What components need of a back end."""

    name: str

    def prepare(self, paths: ServiceContext) -> None: ...

    def start(self, paths: ServiceContext, daemon: Daemon) -> None: ...

    def stop(self, paths: ServiceContext, daemon: Daemon) -> None: ...

    def is_running(self, paths: ServiceContext, daemon: Daemon) -> bool: ...

    def remove(self, paths: ServiceContext) -> None: ...

    def log_tail(self, paths: ServiceContext, daemon: Daemon) -> str: ...


def _argv(paths: ServiceContext, daemon: Daemon) -> tuple[str, ...]:
    return tuple(expand(arg, paths) for arg in daemon.args)


def _env(paths: ServiceContext, daemon: Daemon) -> tuple[tuple[str, str], ...]:
    return tuple((key, expand(value, paths)) for key, value in daemon.env)


@dataclass(frozen=True)
class StartStopDaemonSupervisor:
    """Daemons kept by pid files under the service's run folder."""

    host: Host
    name: str = "start-stop-daemon"

    def pidfile(self, paths: ServiceContext, daemon: Daemon) -> str:
        """The supervisor's own pid file, never the one a daemon writes.

        start-stop-daemon writes it as root before dropping to the service's
        user; a daemon told to write a pid file of the same name (prosody,
        icecast, tor) could not, and prosody stops when it cannot.
        """
        return f"{paths.real('run_dir')}/supervised-{daemon.name}.pid"

    def logfile(self, paths: ServiceContext, daemon: Daemon) -> str:
        return f"{paths.real('log_dir')}/{daemon.name}.log"

    def prepare(self, paths: ServiceContext) -> None:
        """Nothing to install: start-stop-daemon needs no unit."""

    def start(self, paths: ServiceContext, daemon: Daemon) -> None:
        self.host.runner.run(
            builders.start_daemon(
                pidfile=self.pidfile(paths, daemon),
                program=daemon.executable,
                args=_argv(paths, daemon),
                user=paths.entry.user,
                group=paths.entry.group,
                chdir=expand(daemon.working_dir, paths),
                output=self.logfile(paths, daemon),
                env=_env(paths, daemon),
            )
        )

    def stop(self, paths: ServiceContext, daemon: Daemon) -> None:
        self.host.runner.run(
            builders.stop_daemon(
                pidfile=self.pidfile(paths, daemon), program=daemon.executable
            )
        )

    def is_running(self, paths: ServiceContext, daemon: Daemon) -> bool:
        result = self.host.runner.run(
            builders.daemon_status(
                pidfile=self.pidfile(paths, daemon), program=daemon.executable
            )
        )
        return result.returncode == 0 and not result.timed_out

    def remove(self, paths: ServiceContext) -> None:
        """Nothing to remove."""

    def log_tail(self, paths: ServiceContext, daemon: Daemon) -> str:
        """The last lines the daemon wrote (why it stopped, usually)."""
        try:
            with open(self.logfile(paths, daemon), "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-40:])


def render_unit(paths: ServiceContext, daemon: Daemon) -> str:
    """A systemd unit for one daemon, with the entry's sandbox options."""
    entry = paths.entry
    argv = " ".join(
        _systemd_quote(arg) for arg in (daemon.executable, *_argv(paths, daemon))
    )
    writable = " ".join(
        _systemd_quote(paths.real(name)) for name in ("data_dir", "run_dir", "log_dir")
    )
    lines = [
        "# Written by the Byzantium portal (services app); do not edit.",
        "[Unit]",
        f"Description=Byzantium service {entry.id} ({daemon.name})",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={entry.user}",
        f"Group={entry.group}",
        f"WorkingDirectory={_systemd_quote(expand(daemon.working_dir, paths))}",
        f"ExecStart={argv}",
        "Restart=on-failure",
        "RestartSec=5",
    ]
    for key, value in daemon.env:
        lines.append(f"Environment={_systemd_quote(f'{key}={expand(value, paths)}')}")
    for key, value in sorted(entry.sandbox_options().items()):
        lines.append(f"{key}={value}")
    lines.append(f"ReadWritePaths={writable}")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def _systemd_quote(text: str) -> str:
    """Quote one word for a unit file (double quotes, escapes, ``%%``)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if escaped and all(ch.isalnum() or ch in "/._-:=,@+" for ch in escaped):
        return escaped
    return f'"{escaped}"'


@dataclass(frozen=True)
class SystemdSupervisor:
    """Generated units started and read with ``systemctl``."""

    host: Host
    name: str = "systemd"

    def unit_path(self, entry: CatalogueEntry, daemon: Daemon) -> str:
        return f"{UNIT_FOLDER}/{unit_name(entry, daemon)}"

    def prepare(self, paths: ServiceContext) -> None:
        changed = False
        for daemon in paths.entry.daemons:
            changed |= self.host.files.write(
                self.unit_path(paths.entry, daemon),
                render_unit(paths, daemon),
                mode=0o644,
            )
        if changed:
            self.host.runner.run(builders.systemctl_daemon_reload())

    def start(self, paths: ServiceContext, daemon: Daemon) -> None:
        self.host.runner.run(
            builders.systemctl("start", unit_name(paths.entry, daemon))
        )

    def stop(self, paths: ServiceContext, daemon: Daemon) -> None:
        self.host.runner.run(builders.systemctl("stop", unit_name(paths.entry, daemon)))

    def is_running(self, paths: ServiceContext, daemon: Daemon) -> bool:
        result = self.host.runner.run(
            builders.systemctl_is_active(unit_name(paths.entry, daemon))
        )
        return result.returncode == 0 and not result.timed_out

    def remove(self, paths: ServiceContext) -> None:
        """Units stay (they are inert unless started); nothing to do."""

    def log_tail(self, paths: ServiceContext, daemon: Daemon) -> str:
        """The journal has it; the portal does not read it."""
        return ""


def systemd_is_pid1(root: Path = Path("/")) -> bool:
    """True when systemd runs this machine (sd_booted()'s test)."""
    return os.path.isdir(root / "run/systemd/system")


def supervisor_for(host: Host) -> Supervisor:
    """systemd on a real node booted by systemd, start-stop-daemon elsewhere."""
    if host.mode == "system" and systemd_is_pid1():
        return SystemdSupervisor(host)
    return StartStopDaemonSupervisor(host)
