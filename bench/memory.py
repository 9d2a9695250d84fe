"""Idle memory of the node's processes: RSS, PSS and USS per process tree.

Why three figures: RSS counts every page a process maps, so the gunicorn
master and its forked worker (and the RQ worker and its scheduler process)
count the shared pages of Python and Django twice; their sum overstates
what the machine really spends. PSS (proportional set size, from
``/proc/PID/smaps_rollup``) splits each shared page among the processes
that share it, so PSS adds up to real memory use; USS (private pages only)
is what the machine would get back by stopping that process. The 150 MB
target of DESIGN.md is checked against the PSS total.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

TARGET_MB = 150.0
KIB = 1024
MIB = 1024 * 1024


def parse_smaps_rollup(text: str) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` as {field: bytes} (the file says kB)."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or len(parts) != 2 or parts[1] != "kB" or not parts[0].isdigit():
            continue
        fields[name.strip()] = int(parts[0]) * KIB
    return fields


@dataclass(frozen=True)
class ProcessMemory:
    """One process: who it is and its resident, proportional, private bytes."""

    pid: int
    name: str
    cmdline: str
    rss: int
    pss: int
    uss: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("rss", "pss", "uss"):
            data[f"{key}_mb"] = round(data.pop(key) / MIB, 1)
        return data


def process_memory(pid: int, proc: Path = Path("/proc")) -> ProcessMemory:
    """Memory of one process, read from its ``smaps_rollup``."""
    base = proc / str(pid)
    rollup = parse_smaps_rollup((base / "smaps_rollup").read_text())
    cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    name = (base / "comm").read_text().strip()
    private = rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)
    return ProcessMemory(
        pid=pid,
        name=name,
        cmdline=cmdline[:200],
        rss=rollup.get("Rss", 0),
        pss=rollup.get("Pss", 0),
        uss=private,
    )


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants (gunicorn workers, RQ's scheduler)."""
    try:
        root = psutil.Process(pid)
        return [pid] + [child.pid for child in root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass(frozen=True)
class ComponentMemory:
    """A part of the node (web, worker, redis) with all its processes."""

    component: str
    processes: tuple[ProcessMemory, ...]

    @property
    def rss(self) -> int:
        return sum(p.rss for p in self.processes)

    @property
    def pss(self) -> int:
        return sum(p.pss for p in self.processes)

    @property
    def uss(self) -> int:
        return sum(p.uss for p in self.processes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "rss_mb": round(self.rss / MIB, 1),
            "pss_mb": round(self.pss / MIB, 1),
            "uss_mb": round(self.uss / MIB, 1),
            "processes": [p.to_dict() for p in self.processes],
        }


def component_memory(component: str, pid: int) -> ComponentMemory:
    """Memory of the process tree rooted at ``pid``; gone processes skipped."""
    found = []
    for member in tree_pids(pid):
        try:
            found.append(process_memory(member))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return ComponentMemory(component, tuple(found))


def summarise(components: list[ComponentMemory]) -> dict[str, Any]:
    """Totals and the verdict against :data:`TARGET_MB` (on PSS)."""
    rss = sum(c.rss for c in components)
    pss = sum(c.pss for c in components)
    uss = sum(c.uss for c in components)
    return {
        "components": [c.to_dict() for c in components],
        "total_rss_mb": round(rss / MIB, 1),
        "total_pss_mb": round(pss / MIB, 1),
        "total_uss_mb": round(uss / MIB, 1),
        "target_mb": TARGET_MB,
        "pss_within_target": pss / MIB <= TARGET_MB,
        "pss_of_target": round(pss / MIB / TARGET_MB, 3),
    }
