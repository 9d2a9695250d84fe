"""Lab convergence: how long a fresh mesh takes until every node routes to
every other node's prefixes.

Each case builds a lab with :class:`portal.lab.Lab` under the bench-only
prefix, waits for convergence with the lab's own check (the kernel routing
table of every namespace, what packets really use) and tears it down, in a
``finally``, whatever happens. Two clocks are kept per repetition:

- ``babel_seconds``: from the start of the first babeld to convergence
  (what ``lab up`` reports; the lab starts its clock there so that building
  namespaces and links, which grows with the node count, is not counted);
- ``up_seconds``: from calling ``up`` to convergence, what a user waits.

No clients: DHCP leases are local to a node and the lab takes them before
starting babeld, so they would only lengthen ``up_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import median

CONVERGE_TIMEOUT = 180.0


@dataclass(frozen=True)
class Case:
    """A topology to time, and how many times."""

    nodes: int
    topology: str
    repetitions: int

    @property
    def name(self) -> str:
        return f"{self.topology}-{self.nodes}"


DEFAULT_CASES = (
    Case(5, "line", 3),
    Case(10, "line", 3),
    Case(10, "ring", 2),
)


def summarise_case(case: Case, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median and max of both clocks over the repetitions that converged."""
    done = [run for run in runs if run.get("error") is None]
    babel = [run["babel_seconds"] for run in done]
    up = [run["up_seconds"] for run in done]
    return {
        "case": case.name,
        "nodes": case.nodes,
        "topology": case.topology,
        "repetitions": len(runs),
        "converged": len(done),
        "babel_seconds_median": median(babel),
        "babel_seconds_max": max(babel) if babel else None,
        "up_seconds_median": median(up),
        "up_seconds_max": max(up) if up else None,
        "runs": list(runs),
    }


def time_case(lab: Any, case: Case) -> dict[str, Any]:
    """One repetition: up, converge, down (always)."""
    from portal.lab import LabSpec

    spec = LabSpec(nodes=case.nodes, topology=case.topology, clients=0)
    started = time.monotonic()
    try:
        lab.up(spec)
        built = (lab.daemons_started_at or time.monotonic()) - started
        babel = lab.wait_converged(timeout=CONVERGE_TIMEOUT, spec=spec)
        total = time.monotonic() - started
        return {
            "babel_seconds": round(babel, 3),
            "up_seconds": round(total, 3),
            "build_seconds": round(built, 3),
            "error": None,
        }
    except Exception as error:  # noqa: BLE001 - recorded, the next case runs
        return {"error": str(error)[:500]}
    finally:
        lab.down()


def run_convergence(
    prefix: str,
    base_dir: Path,
    cases: Sequence[Case] = DEFAULT_CASES,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Time every case; the lab is down again when this returns or raises."""
    import os

    from portal.lab import Lab

    lab = Lab(prefix=prefix, base_dir=base_dir, owner_pid=os.getpid())
    summaries = []
    try:
        for case in cases:
            runs = []
            for index in range(case.repetitions):
                run = time_case(lab, case)
                runs.append(run)
                if run["error"] is None:
                    say(
                        f"  {case.name:<8} #{index + 1}: converged "
                        f"{run['babel_seconds']:.2f} s after babeld started, "
                        f"{run['up_seconds']:.2f} s after up"
                    )
                else:
                    say(f"  {case.name:<8} #{index + 1}: FAILED {run['error']}")
            summaries.append(summarise_case(case, runs))
    finally:
        lab.down()
    return summaries
