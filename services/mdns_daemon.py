"""The client-side mDNS responder: announced services, browsable by apps.

Apps on the client side (Mumble, chat clients, browsers) find services by
DNS-SD browsing (``_mumble._tcp``, ``_irc._tcp``, ``_http._tcp`` ...). The
announcement component (:mod:`services.components`) writes one JSON record
per announced service into a folder; this long-running program publishes
one DNS-SD service per valid record with the python ``zeroconf`` library,
and nothing else.

It runs as its own small process (started by :mod:`services.mdns` with
start-stop-daemon inside the node's namespace in the lab, on the node
itself on a real one) and is deliberately standalone: only the standard
library and ``zeroconf``, no Django, started with ``python -P`` by absolute
path, so no module of the portal can shadow the standard library and a
broken portal setting cannot stop it.

Decisions:

- Bound to the node's client address only. Every socket is tied to the
  interface that holds that address (``SO_BINDTODEVICE``, set as root
  before the process drops to ``nobody``) and receives multicast only for
  the group it joined there (``IP_MULTICAST_ALL`` off), so a query from the
  uplink or the mesh is never heard and never answered, even when some
  other program joined the mDNS group on those interfaces. If the address
  is not on any interface the responder refuses to start.
- Reloads on ``SIGHUP`` (the portal signals after writing or removing a
  record, so a change shows within a second) *and* compares a cheap
  signature of the folder (names, sizes, mtimes: one ``scandir`` of a
  dozen entries) every few seconds. The poll is the safety net: a record
  written while the responder was starting, a signal lost between two
  starts, or a folder restored by hand still converge without a restart.
- A record that is not what the component writes (wrong types, a huge
  name, bytes that are not UTF-8, not JSON, too big) is ignored and logged
  with the reason; the responder never crashes on a record.
- ``SIGTERM`` sends goodbye packets for every service before exiting, so
  browsing apps drop the services at once instead of after the TTL.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("byzantium.mdns")

# The process name (``/proc/PID/comm``) start-stop-daemon matches with
# ``--name``, so a stale pid file naming another python program (the portal's
# own workers run the same interpreter) is never signalled.
PROCESS_NAME = "byz-mdns"

MAX_RECORD_BYTES = 4096
MAX_RECORDS = 64
# A DNS label (the service instance name) holds at most 63 bytes; longer names
# are cut at a character boundary, absurd ones refused.
MAX_LABEL_BYTES = 63
MAX_NAME_CHARS = 256
MAX_TXT_VALUE = 200
ID_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
TYPE_RE = re.compile(r"_[a-z0-9][a-z0-9-]{0,14}\._(tcp|udp)")
NODE_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
DEFAULT_POLL_SECONDS = 5.0

# Linux socket options Python 3.11 does not name.
_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
_IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
_PR_SET_NAME = 15
_PR_SET_NO_NEW_PRIVS = 38


class RecordRefused(ValueError):
    """A record file that is not a valid announcement; the reason is logged."""


@dataclass(frozen=True)
class Record:
    """One announced service as the responder publishes it."""

    id: str
    name: str
    type: str
    port: int
    txt: tuple[tuple[str, str], ...] = field(default=())

    @property
    def fqdn_type(self) -> str:
        """The DNS-SD type as zeroconf wants it (``_irc._tcp.local.``)."""
        return f"{self.type}.local."


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise RecordRefused(f"{what} is not text")
    if len(value) > limit:
        raise RecordRefused(f"{what} is longer than {limit} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise RecordRefused(f"{what} contains control characters")
    return value


def instance_name(value: object) -> str:
    """A service instance name: one DNS label, cut to 63 UTF-8 bytes.

    The component cuts names to 63 *characters*; a translated name in a
    non-Latin script can still be longer in bytes, so it is cut here at a
    character boundary rather than refused.
    """
    name = _text(value, "name", MAX_NAME_CHARS).strip()
    if not name:
        raise RecordRefused("name is empty")
    encoded = name.encode("utf-8")[:MAX_LABEL_BYTES]
    return encoded.decode("utf-8", errors="ignore").rstrip()


def _txt(data: dict, service_type: str) -> tuple[tuple[str, str], ...]:
    """TXT entries: ``path`` (DNS-SD's key for HTTP) and ``url`` where given."""
    entries: dict[str, str] = {}
    url = data.get("url")
    if url not in (None, ""):
        url = _text(url, "url", MAX_TXT_VALUE)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RecordRefused("url is not an http(s) address")
        entries["url"] = url
        if service_type.startswith("_http"):
            entries["path"] = parts.path or "/"
    path = data.get("path")
    if path not in (None, ""):
        path = _text(path, "path", MAX_TXT_VALUE)
        if not path.startswith("/"):
            raise RecordRefused("path does not start with /")
        entries["path"] = path
    return tuple(sorted(entries.items()))


def parse_record(raw: bytes, file_id: str) -> Record:
    """A record from a file's bytes; :class:`RecordRefused` says why not.

    ``file_id`` is the file name without ``.json``; the record's ``id``
    must match it, so one file can never announce another service.
    Unknown keys (``addresses`` among them: the responder publishes the
    address it is bound to) are ignored.
    """
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordRefused(f"larger than {MAX_RECORD_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordRefused("not UTF-8") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise RecordRefused("not JSON") from None
    if not isinstance(data, dict):
        raise RecordRefused("not a JSON object")
    record_id = data.get("id")
    if not isinstance(record_id, str) or not ID_RE.fullmatch(record_id):
        raise RecordRefused("id is not a catalogue id")
    if record_id != file_id:
        raise RecordRefused("id does not match the file name")
    service_type = data.get("type")
    if not isinstance(service_type, str) or not TYPE_RE.fullmatch(service_type):
        raise RecordRefused("type is not a DNS-SD type like _irc._tcp")
    port = data.get("port")
    if type(port) is not int or not 1 <= port <= 65535:
        raise RecordRefused("port is not a number from 1 to 65535")
    return Record(
        id=record_id,
        name=instance_name(data.get("name")),
        type=service_type,
        port=port,
        txt=_txt(data, service_type),
    )


def read_records(folder: Path) -> dict[str, Record]:
    """Every valid record of ``folder`` by id; the others are logged.

    A missing folder is an empty one: no service is announced yet.
    """
    records: dict[str, Record] = {}
    names: set[str] = set()
    for path, file_id in _record_files(folder):
        try:
            if len(records) >= MAX_RECORDS:
                raise RecordRefused(f"more than {MAX_RECORDS} records")
            with path.open("rb") as handle:
                raw = handle.read(MAX_RECORD_BYTES + 1)
            record = parse_record(raw, file_id)
            if record.name.casefold() in names:
                raise RecordRefused("another record has the same name")
        except RecordRefused as refused:
            log.warning("ignoring record %s: %s", ascii(path.name), refused)
            continue
        except OSError as error:
            log.warning("ignoring record %s: %s", ascii(path.name), error.strerror)
            continue
        names.add(record.name.casefold())
        records[record.id] = record
    return records


def _record_files(folder: Path) -> list[tuple[Path, str]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return []
    files = []
    for entry in entries:
        if not entry.name.endswith(".json") or entry.name.startswith("."):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        files.append((Path(entry.path), entry.name[: -len(".json")]))
    return files


def folder_signature(folder: Path) -> tuple:
    """What changes when a record is written, replaced or removed."""
    signature = []
    for path, _file_id in _record_files(folder):
        try:
            info = path.stat()
        except OSError:
            continue
        signature.append((path.name, info.st_size, info.st_mtime_ns, info.st_ino))
    return tuple(signature)


def interface_of(address: str) -> str:
    """The name of the interface holding ``address``; ValueError if none."""
    import ifaddr

    wanted = ipaddress.ip_address(address)
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and ipaddress.ip_address(ip.ip) == wanted:
                return str(adapter.name)
    raise ValueError(f"no interface holds {address}")


def host_name(node_name: str) -> str:
    """The ``.local`` host name the services point at (``n1.local.``)."""
    label = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:63]
    if not NODE_RE.fullmatch(label):
        label = "byzantium"
    return f"{label}.local."


def set_process_name(name: str = PROCESS_NAME) -> None:
    """Name the process for ``start-stop-daemon --name`` (Linux prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        log.warning("could not set the process name")


def confine_sockets(sockets: list[socket.socket], interface: str) -> None:
    """Tie every socket to ``interface``: nothing arrives or leaves elsewhere."""
    device = interface.encode()
    for sock in sockets:
        sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, device)
        if sock.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)


def drop_privileges(user: str, group: str) -> None:
    """Become ``user:group`` for good, once the sockets are bound and tied.

    The responder is started as root and drops here rather than being
    started as ``nobody``: tying a socket to a device is then possible on
    any kernel, and the interpreter may live where only root can run it (a
    developer's pyenv). Nothing is imported lazily after this point.
    """
    if os.geteuid() != 0:
        return
    import grp
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    gid = grp.getgrnam(group).gr_gid
    if uid == 0 or gid == 0:
        raise OSError(f"refusing to keep running as {user}:{group}")
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


class Responder:
    """Keeps the published services equal to the folder's valid records."""

    def __init__(
        self,
        *,
        folder: Path,
        address: str,
        interface: str,
        node_name: str,
        user: str = "nobody",
        group: str = "nogroup",
    ) -> None:
        self.folder = folder
        self.address = address
        self.interface = interface
        self.server = host_name(node_name)
        self.user = user
        self.group = group
        self.published: dict[str, tuple[Record, object]] = {}
        self.signature: tuple | None = None
        self.zeroconf = None

    async def start(self) -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncZeroconf

        self.zeroconf = AsyncZeroconf(
            interfaces=[self.address], ip_version=IPVersion.V4Only
        )
        engine = self.zeroconf.zeroconf.engine
        sockets = [engine._listen_socket, *engine._respond_sockets]  # noqa: SLF001
        if engine._listen_socket is None or not engine._respond_sockets:  # noqa: SLF001
            raise OSError(f"cannot listen for mDNS on {self.address}")
        confine_sockets([s for s in sockets if s is not None], self.interface)
        # Build one service description now, so every module it needs is
        # imported before the interpreter's folders may become unreadable.
        self._info(Record(id="probe", name="probe", type="_http._tcp", port=1))
        drop_privileges(self.user, self.group)

    def _info(self, record: Record):
        from zeroconf import ServiceInfo

        return ServiceInfo(
            record.fqdn_type,
            f"{record.name}.{record.fqdn_type}",
            port=record.port,
            addresses=[socket.inet_aton(self.address)],
            properties=dict(record.txt),
            server=self.server,
        )

    async def sync(self, *, force: bool = False) -> None:
        """Publish new and changed records, withdraw removed ones."""
        signature = folder_signature(self.folder)
        if not force and signature == self.signature:
            return
        self.signature = signature
        wanted = read_records(self.folder)
        assert self.zeroconf is not None
        withdrawn = [
            (record_id, info)
            for record_id, (record, info) in self.published.items()
            if wanted.get(record_id) != record
        ]
        for record_id, _info in withdrawn:
            del self.published[record_id]
            log.info("withdrawing %s", record_id)
        await asyncio.gather(
            *(self._unregister(info) for _record_id, info in withdrawn)
        )
        added = [r for r in wanted.values() if r.id not in self.published]
        results = await asyncio.gather(
            *(self._register(record) for record in added), return_exceptions=True
        )
        for record, result in zip(added, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not publish %s: %s", record.id, result)
            else:
                self.published[record.id] = (record, result)
                log.info(
                    "publishing %s as %r %s port %d",
                    record.id,
                    record.name,
                    record.type,
                    record.port,
                )

    async def _register(self, record: Record):
        info = self._info(record)
        assert self.zeroconf is not None
        task = await self.zeroconf.async_register_service(info, allow_name_change=True)
        await task
        return info

    async def _unregister(self, info) -> None:
        assert self.zeroconf is not None
        task = await self.zeroconf.async_unregister_service(info)
        await task

    async def close(self) -> None:
        """Goodbye packets for everything, then close the sockets."""
        if self.zeroconf is not None:
            await self.zeroconf.async_unregister_all_services()
            await self.zeroconf.async_close()


async def serve(responder: Responder, poll_seconds: float) -> None:
    """Run until SIGTERM/SIGINT; SIGHUP re-reads the folder at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    wake = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, wake.set)
    # Only now may start-stop-daemon find the process by name: a SIGHUP sent
    # before the handler existed would have killed it.
    set_process_name()
    await responder.start()
    log.info(
        "answering on %s (%s) for %s",
        responder.interface,
        responder.address,
        responder.folder,
    )
    try:
        force = True
        while not stop.is_set():
            await responder.sync(force=force)
            force = False
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(wake.wait()),
            ]
            _done, pending = await asyncio.wait(
                waiters, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
            if wake.is_set():
                wake.clear()
                force = True
                log.info("reloading on SIGHUP")
    finally:
        await responder.close()
        log.info("stopped")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", required=True, type=Path)
    parser.add_argument("--address", required=True)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--poll", type=float, default=DEFAULT_POLL_SECONDS)
    parser.add_argument("--user", default="nobody")
    parser.add_argument("--group", default="nogroup")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        ipaddress.IPv4Address(arguments.address)
        interface = interface_of(arguments.address)
    except ValueError as error:
        log.error("refusing to start: %s", error)
        return 2
    responder = Responder(
        folder=arguments.records,
        address=arguments.address,
        interface=interface,
        node_name=arguments.node_name,
        user=arguments.user,
        group=arguments.group,
    )
    try:
        asyncio.run(serve(responder, max(0.5, arguments.poll)))
    except OSError as error:
        log.error("stopped: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
