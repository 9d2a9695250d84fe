"""Atomic file writes under a configurable root.

A config file is written to a temporary file in the same folder, flushed and
fsynced, then renamed over the old one, and the folder is fsynced: a process
killed at any moment leaves either the old file or the new one, never a mix.
Leftover temporary files from a killed writer are removed on the next write
to the same folder.

Paths are given as the absolute path they have on a node (``/etc/babeld.conf``)
and land under ``root``; the system host uses ``/``, the lab and the tests a
folder of their own, so a test renders a whole /etc into a temporary folder.

The temporary file is created 0600 and gets its final mode only once it is
complete, so a secret is never readable half-written. Writing content the
file already holds (same bytes, same mode) touches nothing and reports
``changed: False``: jobs are re-run freely. One writer per folder is assumed
(the privileged queue has a single worker); a second concurrent writer to the
same file could have its temporary file swept as a leftover. Where a second
process does touch the same thing (the captive lane restarts dnsmasq too),
both hold :meth:`FileStore.lock` on one lock file around the change.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import log
from .errors import InvalidValue

TEMP_PREFIX = ".byz-tmp-"


@dataclass(frozen=True)
class FileStore:
    """Reads and atomically writes files below ``root``."""

    root: Path

    def path(self, node_path: str) -> Path:
        """Map a node path such as ``/etc/babeld.conf`` to a real path."""
        pure = PurePosixPath(node_path)
        if not pure.is_absolute():
            raise InvalidValue(f"{node_path!r} is not an absolute path")
        if any(part in ("..", ".") for part in pure.parts):
            raise InvalidValue(f"{node_path!r} may not contain . or ..")
        if "\x00" in node_path:
            raise InvalidValue("path contains a NUL byte")
        return Path(self.root, *pure.parts[1:])

    def read_text(self, node_path: str) -> str | None:
        """The file's text, or None when it does not exist."""
        try:
            return self.path(node_path).read_text()
        except FileNotFoundError:
            return None

    def read_bytes(self, node_path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        try:
            return self.path(node_path).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, node_path: str) -> bool:
        return self.path(node_path).exists()

    def write(
        self,
        node_path: str,
        content: str | bytes,
        *,
        mode: int = 0o644,
        crash_before_rename: bool = False,
    ) -> bool:
        """Atomically replace ``node_path`` with ``content``.

        Returns False (and touches nothing) when the file already holds
        exactly this content, so re-running a job is cheap and idempotent.
        ``crash_before_rename`` exists for the crash test only: it stops
        after the temporary file is complete, as a killed process would.
        """
        data = content.encode() if isinstance(content, str) else content
        target = self.path(node_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries(target.parent, target.name)
        if not 0 <= mode <= 0o7777:
            raise InvalidValue(f"{mode!r} is not a file mode")
        digest = hashlib.sha256(data).hexdigest()
        try:
            unchanged = (
                target.read_bytes() == data and (target.stat().st_mode & 0o7777) == mode
            )
        except FileNotFoundError:
            unchanged = False
        if unchanged:
            log.emit(
                {
                    "type": "write",
                    "path": node_path,
                    "bytes": len(data),
                    "sha256": digest,
                    "changed": False,
                }
            )
            return False
        fd, temp_name = tempfile.mkstemp(
            prefix=f"{TEMP_PREFIX}{target.name}.", dir=target.parent
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_name, mode)
            if crash_before_rename:
                raise SimulatedCrash(temp_name)
            os.replace(temp_name, target)
        except SimulatedCrash:
            raise
        except BaseException:
            try:
                os.unlink(temp_name)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(target.parent)
        log.emit(
            {
                "type": "write",
                "path": node_path,
                "bytes": len(data),
                "sha256": digest,
                "changed": True,
            }
        )
        return True

    def remove(self, node_path: str) -> bool:
        """Delete ``node_path`` if present; True when something was removed."""
        target = self.path(node_path)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(target.parent)
        log.emit({"type": "remove", "path": node_path})
        return True

    @contextlib.contextmanager
    def lock(self, node_path: str) -> Iterator[None]:
        """Hold an exclusive ``flock`` on ``node_path`` (created if missing)
        for the ``with`` block; another process asking for it waits. The
        kernel drops the lock when its holder dies, so a killed job never
        leaves the node locked."""
        target = self.path(node_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _remove_stale_temporaries(folder: Path, name: str) -> None:
        for leftover in folder.glob(f"{TEMP_PREFIX}{glob.escape(name)}.*"):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass


class SimulatedCrash(Exception):
    """Raised by ``FileStore.write(crash_before_rename=True)`` in tests."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
