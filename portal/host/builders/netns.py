"""Network namespaces: create, list, delete, find the processes inside.

``ip netns add`` leaves a handle under /run/netns, shared by every namespace,
so these commands run on the machine itself (:class:`SystemRunner`), never
through a :class:`NamespaceRunner`. The lab is their only user: it names every
namespace with its prefix and never passes a name it did not build.
"""

from __future__ import annotations

import re

from portal.host import validate
from portal.host.commands import Command
from portal.host.errors import InvalidValue

# sysctl keys we may set inside a namespace: dotted words, nothing else.
_SYSCTL_KEY = re.compile(r"^net\.[a-z0-9_]+(\.[A-Za-z0-9_-]+){1,4}\Z")


def add(name: str) -> Command:
    """Create the named namespace (fails if it exists)."""
    return Command(("ip", "netns", "add", validate.namespace_name(name)))


def delete(name: str) -> Command:
    """Remove the handle of the named namespace.

    The namespace itself (and every interface in it) disappears once no
    process lives in it any more, which is why the lab kills those first.
    """
    return Command(("ip", "netns", "delete", validate.namespace_name(name)))


def list_all() -> Command:
    """Every named namespace, as JSON (``ip -j netns list``)."""
    return Command(("ip", "-j", "netns", "list"))


def pids(name: str) -> Command:
    """The ids of the processes living in the namespace, one per line."""
    return Command(("ip", "netns", "pids", validate.namespace_name(name)), check=False)


def sysctl_set(key: str, value: int) -> Command:
    """Set a network sysctl; run it through a NamespaceRunner.

    Keys under ``net.`` are per namespace, so inside a lab namespace this
    never changes the machine's own settings. Other keys are refused.
    """
    if not isinstance(key, str) or not _SYSCTL_KEY.match(key):
        raise InvalidValue(f"{key!r} is not a network sysctl key")
    number = validate.whole_number(value, minimum=0, maximum=2**31 - 1)
    return Command(("sysctl", "-q", "-w", f"{key}={number}"))
