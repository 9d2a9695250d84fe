"""Which machine this process manages, chosen by the ``host_mode`` setting.

- ``system``: this computer, a real node (runner on the system, files under /).
- ``lab``: node 1 of the lab, a network namespace on this computer, so a
  developer machine runs a live node without its own network being touched.
- ``dry-run``: nothing is changed; commands are recorded and succeed empty,
  files land in a scratch folder. Used when the portal does not run as root.
"""

from __future__ import annotations

from dataclasses import dataclass

from .files import FileStore
from .runner import NamespaceRunner, RecordingRunner, Runner, SystemRunner


@dataclass(frozen=True)
class Host:
    """The runner and file store of the node this process manages."""

    mode: str
    runner: Runner
    files: FileStore

    @property
    def namespace(self) -> str | None:
        return self.runner.namespace


def lab_namespace(prefix: str, node: str) -> str:
    """Name of a lab node's (or client's) network namespace."""
    return f"{prefix}-{node}"


def current_host() -> Host:
    """Build the :class:`Host` for the configured host mode."""
    from django.conf import settings

    config = settings.PORTAL
    files = FileStore(config.effective_files_root)
    if config.host_mode == "system":
        return Host(mode="system", runner=SystemRunner(), files=files)
    if config.host_mode == "lab":
        namespace = lab_namespace(config.lab_prefix, config.lab_node)
        return Host(mode="lab", runner=NamespaceRunner(namespace), files=files)
    return Host(mode="dry-run", runner=RecordingRunner(), files=files)
