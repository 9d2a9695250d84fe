"""batman-adv, the second mesh routing protocol, driven by ``batctl``.

batman-adv routes at layer 2 inside the kernel: the mesh interfaces are
enslaved to a virtual interface (``bat0``) and the node's addresses go on
``bat0``. Syntax checked against batctl 2023.0 (Debian 12)::

    batctl meshif <netdev> interface|if [add|del iface(s)]
    batctl meshif <netdev> neighbors|n
    batctl meshif <netdev> originators|o

The long command names are used in argvs (easier to read in a job log); the
short ones are the same commands.

The kernel module is not on every machine (many small-board kernels and
containers lack it). :func:`module_loaded` looks for
``/sys/module/batman_adv``; :func:`ensure_module` then tries ``modprobe
batman-adv`` and, when that fails too, raises :class:`BatmanModuleMissing`
with a message the operator can act on, instead of batctl's own error.
"""

from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext as _

from ..commands import Command
from ..errors import CommandFailed, CommandNotAllowed, HostError
from . import iw

MESH_INTERFACE = "bat0"
MODULE_NAME = "batman-adv"
SYS_MODULE = Path("/sys/module")
BATCTL_TIMEOUT = 10.0


class BatmanModuleMissing(HostError):
    """The batman-adv kernel module is neither loaded nor loadable."""


def _batctl(*argv: str, check: bool = True) -> Command:
    return Command(("batctl", *argv), timeout=BATCTL_TIMEOUT, check=check)


def create_mesh_interface(mesh: str = MESH_INTERFACE) -> Command:
    """``ip link add name bat0 type batadv`` (batman-adv's virtual interface)."""
    return Command(
        ("ip", "link", "add", "name", iw.interface_name(mesh), "type", "batadv")
    )


def interface_add(interface: str, mesh: str = MESH_INTERFACE) -> Command:
    """Put an interface under batman-adv."""
    return _batctl(
        "meshif",
        iw.interface_name(mesh),
        "interface",
        "add",
        iw.interface_name(interface),
    )


def interface_del(interface: str, mesh: str = MESH_INTERFACE) -> Command:
    """Take an interface back from batman-adv (no error when it was not)."""
    return _batctl(
        "meshif",
        iw.interface_name(mesh),
        "interface",
        "del",
        iw.interface_name(interface),
        check=False,
    )


def interface_list(mesh: str = MESH_INTERFACE) -> Command:
    """The interfaces under batman-adv (``IF: active`` lines)."""
    return _batctl("meshif", iw.interface_name(mesh), "interface", check=False)


def neighbors(mesh: str = MESH_INTERFACE) -> Command:
    """batman-adv's one-hop neighbours."""
    return _batctl("meshif", iw.interface_name(mesh), "neighbors")


def originators(mesh: str = MESH_INTERFACE) -> Command:
    """Every node batman-adv knows, with the best next hop."""
    return _batctl("meshif", iw.interface_name(mesh), "originators")


def modprobe(module: str = MODULE_NAME, *, dry_run: bool = False) -> Command:
    """``modprobe batman-adv`` (``-n``: only say whether it could load)."""
    if module != MODULE_NAME:
        raise ValueError("only the batman-adv module is loaded by the portal")
    argv = ("modprobe", "-n", module) if dry_run else ("modprobe", module)
    return Command(argv, timeout=30, check=False)


def parse_interface_list(text: str) -> dict[str, str]:
    """``batctl meshif bat0 if`` output -> {interface: "active"|"inactive"}."""
    interfaces: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, state = line.partition(":")
        if sep and name.strip():
            interfaces[name.strip()] = state.strip()
    return interfaces


def module_loaded(sys_module: Path = SYS_MODULE) -> bool:
    """True when the kernel has batman-adv loaded (or built in)."""
    return (sys_module / "batman_adv").is_dir()


def missing_module_message() -> str:
    return _(
        "The batman-adv kernel module is missing: this computer's kernel has no "
        "batman-adv, so the mesh cannot use B.A.T.M.A.N. advanced. Use Babel "
        "(the default), or install a kernel with the batman-adv module."
    )


def ensure_module(
    runner: object, sys_module: Path = SYS_MODULE, *, load: bool = True
) -> None:
    """Load batman-adv if needed; :class:`BatmanModuleMissing` when impossible.

    ``runner`` is any portal runner (the module is global to the kernel, so
    loading it from a lab namespace loads it for the machine, as on a node).
    ``load=False`` only asks (``modprobe -n``) and changes nothing.
    """
    if module_loaded(sys_module):
        return
    try:
        result = runner.run(modprobe(dry_run=not load))  # type: ignore[attr-defined]
    except (CommandNotAllowed, CommandFailed) as error:
        # modprobe itself is missing (no kmod), or refused: the module is
        # as absent as can be.
        raise BatmanModuleMissing(missing_module_message()) from error
    if not result.ok or (load and not module_loaded(sys_module)):
        raise BatmanModuleMissing(missing_module_message())
