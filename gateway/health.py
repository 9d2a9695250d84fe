"""Is the uplink really working? A pure state machine with hysteresis.

A gateway announces the mesh's default route only while its uplink works;
one lost ping must not pull the route from under every client of the mesh,
and one lucky answer after an outage must not bring it back. So the
verdict changes only after ``fail_threshold`` failed checks in a row
(withdraw) or ``pass_threshold`` passed checks in a row (announce). An
uplink that alternates pass/fail never reaches either threshold and the
route keeps its last verdict: the mesh's route does not flap.

A *check* is one round over the check targets (ICMP echo through the
uplink interface, :func:`portal.host.builders.ping.echo_via`); it passes
when any target answers, so one target's outage is not the Internet's.

:class:`UplinkHealth` is plain data (stored in the database between
periodic checks as JSON) and :func:`observe` returns the next value and
whether the verdict changed; the caller acts on a change only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from portal.host import validate
from portal.host.builders import ping

DEFAULT_FAIL_THRESHOLD = 3
DEFAULT_PASS_THRESHOLD = 2
MAX_THRESHOLD = 20


@dataclass(frozen=True)
class UplinkHealth:
    """The verdict on the uplink and the run of results that leads to it."""

    online: bool = False
    passes: int = 0  # consecutive passed checks
    failures: int = 0  # consecutive failed checks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> UplinkHealth:
        if not isinstance(data, dict):
            return cls()
        return cls(
            online=data.get("online") is True,
            passes=_count(data.get("passes")),
            failures=_count(data.get("failures")),
        )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and 0 <= value <= 10**6 else 0


def observe(
    health: UplinkHealth,
    passed: bool,
    *,
    fail_threshold: int = DEFAULT_FAIL_THRESHOLD,
    pass_threshold: int = DEFAULT_PASS_THRESHOLD,
) -> tuple[UplinkHealth, bool]:
    """The health after one more check, and whether ``online`` changed."""
    fail_threshold = validate.whole_number(
        fail_threshold, minimum=1, maximum=MAX_THRESHOLD
    )
    pass_threshold = validate.whole_number(
        pass_threshold, minimum=1, maximum=MAX_THRESHOLD
    )
    if passed:
        health = replace(health, passes=health.passes + 1, failures=0)
        if not health.online and health.passes >= pass_threshold:
            return replace(health, online=True), True
    else:
        health = replace(health, failures=health.failures + 1, passes=0)
        if health.online and health.failures >= fail_threshold:
            return replace(health, online=False), True
    return health, False


def check_uplink(host, interface: str, targets: tuple[str, ...]) -> bool:  # noqa: ANN001
    """One check: True when any target answers through ``interface``."""
    for target in targets:
        result = host.runner.run(ping.echo_via(target, interface))
        if result.ok:
            return True
    return False
