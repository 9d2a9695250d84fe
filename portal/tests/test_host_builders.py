"""Builders: exact argv per builder, and hostile parameters refused.

Every builder's argv is pinned as a tuple, so a change in what the portal
runs is a visible test change. Every validated parameter of every builder is
fed a list of hostile strings; each must raise InvalidValue before any
Command exists.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from portal.host import validate
from portal.host.builders import arping, inspect, nft, sysctl, tor
from portal.host.commands import CommandResult
from portal.host.errors import CommandFailed, InvalidValue

HOSTILE = [
    "",
    "eth0;touch /tmp/byzh-pwned",
    "$(touch /tmp/byzh-pwned)",
    "`touch /tmp/byzh-pwned`",
    "eth0|cat",
    "eth0&&reboot",
    "eth0\nreboot",
    "eth0\r",
    "'eth0'",
    '"eth0"',
    "eth 0",
    " eth0",
    "eth0\x00",
    "\x00",
    "a" * 5000,
    "ethé0",
    "eth0\t",
    "../../etc/passwd",
    "-rf",
    "--help",
    "*",
    "eth0>x",
    "10.0.0.1;reboot",
    "fe80::1%$(reboot)",
    "net.ipv4.ip_forward;reboot",
    "net.ipv4.ip_forward=1 kernel.x",
    "/tmp/a b",
    "/tmp/$(x)",
    "/tmp/../etc/shadow",
    "\u202eeth0",
]

# (name, builder called with one hostile value in one parameter)
BUILDER_PARAMETERS: list[tuple[str, Callable[[str], object]]] = [
    ("addr_show.interface", lambda v: inspect.addr_show(v)),
    ("link_show.interface", lambda v: inspect.link_show(v)),
    ("route_show.table", lambda v: inspect.route_show(table=v)),
    ("route_show6.table", lambda v: inspect.route_show(family=6, table=v)),
    ("nft.check_file.path", lambda v: nft.check_file(v)),
    ("nft.apply_file.path", lambda v: nft.apply_file(v)),
    ("nft.list_table.name", lambda v: nft.list_table(v)),
    ("nft.list_table.family", lambda v: nft.list_table("byz", table_family=v)),
    ("nft.delete_table.name", lambda v: nft.delete_table(v)),
    ("nft.delete_table.family", lambda v: nft.delete_table("byz", table_family=v)),
    ("sysctl.read.key", lambda v: sysctl.read(v)),
    ("sysctl.write.key", lambda v: sysctl.write(v, 1)),
    (
        "sysctl.interface_key.interface",
        lambda v: sysctl.interface_key("ipv4", v, "forwarding"),
    ),
    ("sysctl.interface_key.setting", lambda v: sysctl.interface_key("ipv4", "eth0", v)),
    ("arping.interface", lambda v: arping.duplicate_address_probe(v, "10.0.0.1")),
    ("arping.address", lambda v: arping.duplicate_address_probe("eth0", v)),
    ("tor.verify_config.torrc", lambda v: tor.verify_config(v)),
    ("tor.daemon_args.torrc", lambda v: tor.daemon_args(v)),
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
@pytest.mark.parametrize(
    "builder",
    [b for _, b in BUILDER_PARAMETERS],
    ids=[n for n, _ in BUILDER_PARAMETERS],
)
def test_every_builder_refuses_hostile_parameter(builder, hostile):
    with pytest.raises(InvalidValue):
        builder(hostile)


@pytest.mark.parametrize("hostile", [1.5, True, -1, 0, 2**40, b"eth0", ["eth0"]])
def test_builders_refuse_wrong_types(hostile):
    # None is not here: it means "all interfaces" / "main table" where allowed.
    for name, builder in BUILDER_PARAMETERS:
        with pytest.raises(InvalidValue):
            builder(hostile)
            pytest.fail(f"{name} accepted {hostile!r}")


@pytest.mark.parametrize(
    "validator",
    [
        validate.interface_name,
        validate.namespace_name,
        validate.mac_address,
        validate.ipv4_address,
        validate.ip_address,
        validate.ip_interface,
        validate.ip_network,
        validate.nft_identifier,
        validate.absolute_path,
    ],
)
def test_strict_validators_refuse_every_hostile_string(validator):
    for hostile in HOSTILE:
        with pytest.raises(InvalidValue):
            validator(hostile)


def test_free_text_allows_punctuation_but_not_control_characters():
    assert validate.essid("Mesh; $(x) `y` | 'z'") == "Mesh; $(x) `y` | 'z'"
    assert validate.essid("Café mesh") == "Café mesh"
    for bad in ["", "a\nb", "a\x00b", "a\tb", "a\rb", "\u202e", "x" * 33, "é" * 17]:
        with pytest.raises(InvalidValue):
            validate.essid(bad)


# --- pinned argv -------------------------------------------------------------


def test_addr_show_argv():
    assert inspect.addr_show().argv == ("ip", "-j", "-s", "-d", "addr", "show")
    assert inspect.addr_show("mesh0").argv == (
        "ip", "-j", "-s", "-d", "addr", "show", "dev", "mesh0",
    )  # fmt: skip


def test_link_show_argv():
    assert inspect.link_show().argv == ("ip", "-j", "link", "show")
    assert inspect.link_show("eth0.10").argv == (
        "ip",
        "-j",
        "link",
        "show",
        "dev",
        "eth0.10",
    )


def test_route_show_argv():
    assert inspect.route_show().argv == ("ip", "-j", "route", "show")
    assert inspect.route_show(table="main").argv == (
        "ip",
        "-j",
        "route",
        "show",
        "table",
        "main",
    )
    assert inspect.route_show(table=42).argv == (
        "ip",
        "-j",
        "route",
        "show",
        "table",
        "42",
    )
    assert inspect.route_show(family=6).argv == ("ip", "-j", "-6", "route", "show")
    assert inspect.route_show(family=6, table="all").argv == (
        "ip", "-j", "-6", "route", "show", "table", "all",
    )  # fmt: skip


def test_route_show_refuses_unknown_family_and_table_zero():
    with pytest.raises(InvalidValue):
        inspect.route_show(family=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue):
        inspect.route_show(table=0)


def test_inspection_commands_have_a_raised_output_cap():
    assert inspect.addr_show().output_cap == inspect.INSPECT_OUTPUT_CAP
    assert inspect.addr_show().check is True


def test_tor_argv():
    command = tor.verify_config("/etc/byzantium/tor/torrc")
    assert command.argv == (
        "tor", "--verify-config", "--defaults-torrc", "/dev/null",
        "-f", "/etc/byzantium/tor/torrc",
    )  # fmt: skip
    assert command.check is False
    assert tor.verify_config("/etc/t", check=True).check is True
    assert tor.daemon_args("/etc/byzantium/tor/torrc") == (
        "--defaults-torrc", "/dev/null", "-f", "/etc/byzantium/tor/torrc",
        "--RunAsDaemon", "0",
    )  # fmt: skip


def test_nft_argv():
    assert nft.check_file("/etc/nftables.d/byz.nft").argv == (
        "nft", "-c", "-f", "/etc/nftables.d/byz.nft",
    )  # fmt: skip
    assert nft.apply_file("/var/lib/byz/captive.nft").argv == (
        "nft", "-f", "/var/lib/byz/captive.nft",
    )  # fmt: skip
    assert nft.list_table("byz_captive").argv == (
        "nft", "-j", "list", "table", "inet", "byz_captive",
    )  # fmt: skip
    assert nft.list_table("byz_nat", table_family="ip").argv == (
        "nft", "-j", "list", "table", "ip", "byz_nat",
    )  # fmt: skip
    assert nft.delete_table("byz_captive").argv == (
        "nft", "delete", "table", "inet", "byz_captive",
    )  # fmt: skip


def test_nft_delete_table_missing_ok_does_not_check():
    assert nft.delete_table("byz").check is True
    assert nft.delete_table("byz", missing_ok=True).check is False


def test_nft_list_table_allows_large_output():
    assert nft.list_table("byz").output_cap == nft.LIST_OUTPUT_CAP


def test_sysctl_argv():
    assert sysctl.read("net.ipv4.ip_forward").argv == (
        "sysctl",
        "-n",
        "net.ipv4.ip_forward",
    )
    assert sysctl.write("net.ipv4.ip_forward", 1).argv == (
        "sysctl", "-w", "net.ipv4.ip_forward=1",
    )  # fmt: skip
    assert sysctl.write("net.ipv4.conf.mesh0.forwarding", 0).argv == (
        "sysctl", "-w", "net.ipv4.conf.mesh0.forwarding=0",
    )  # fmt: skip
    assert sysctl.write("net.ipv6.conf.all.forwarding", 1).argv == (
        "sysctl", "-w", "net.ipv6.conf.all.forwarding=1",
    )  # fmt: skip


def test_sysctl_interface_key_writes_dots_in_names_as_slashes():
    assert sysctl.interface_key("ipv4", "eth0.10", "rp_filter") == (
        "net.ipv4.conf.eth0/10.rp_filter"
    )
    assert sysctl.interface_key("ipv6", "default", "accept_ra") == (
        "net.ipv6.conf.default.accept_ra"
    )


@pytest.mark.parametrize(
    "key",
    [
        "kernel.core_pattern",
        "vm.overcommit_memory",
        "net.ipv4.conf.eth0.arp_ignore",
        "net.ipv4.ip_forwarding",
        "net.ipv4.conf.eth0.forwarding.x",
        "net.ipv6.ip_forward",
        "net.ipv4.conf.-x.forwarding",
    ],
)
def test_sysctl_refuses_keys_outside_the_whitelist(key):
    with pytest.raises(InvalidValue):
        sysctl.read(key)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("net.ipv4.ip_forward", 2),
        ("net.ipv4.ip_forward", -1),
        ("net.ipv4.conf.all.rp_filter", 3),
        ("net.ipv4.ip_forward", True),
        ("net.ipv4.ip_forward", "1"),
    ],
)
def test_sysctl_refuses_values_outside_the_range(key, value):
    with pytest.raises(InvalidValue):
        sysctl.write(key, value)


def test_sysctl_parse_value():
    assert sysctl.parse_value("1\n") == 1
    with pytest.raises(Exception, match="not a number"):
        sysctl.parse_value("sysctl: cannot stat")


def test_arping_argv_targets_habets_arping():
    command = arping.duplicate_address_probe(
        "mesh0", "10.12.0.1", count=2, wait_seconds=2
    )
    assert command.argv == (
        "arping", "-0", "-C", "1", "-c", "2", "-w", "2", "-i", "mesh0", "10.12.0.1",
    )  # fmt: skip
    assert command.check is False
    assert command.timeout == 7


def test_arping_refuses_out_of_range_counts():
    with pytest.raises(InvalidValue):
        arping.duplicate_address_probe("eth0", "10.0.0.1", count=0)
    with pytest.raises(InvalidValue):
        arping.duplicate_address_probe("eth0", "10.0.0.1", wait_seconds=31)
    with pytest.raises(InvalidValue):
        arping.duplicate_address_probe("eth0", "fe80::1")


def _arping_result(returncode: int, stdout: str, stderr: str = "") -> CommandResult:
    return CommandResult(
        argv=("arping",), returncode=returncode, stdout=stdout, stderr=stderr
    )


def test_arping_reply_means_address_in_use():
    stdout = (
        "ARPING 10.98.0.2\n42 bytes from 82:13:1c:86:72:91 (10.98.0.2): index=0\n\n"
        "--- 10.98.0.2 statistics ---\n"
        "1 packets transmitted, 1 packets received,   0% unanswered (0 extra)\n"
    )
    assert arping.address_in_use(_arping_result(0, stdout)) is True


def test_arping_silence_means_address_free():
    stdout = (
        "ARPING 10.98.0.3\nTimeout\nTimeout\n\n--- 10.98.0.3 statistics ---\n"
        "2 packets transmitted, 0 packets received, 100% unanswered (0 extra)\n"
    )
    assert arping.address_in_use(_arping_result(1, stdout)) is False


def test_arping_error_with_exit_one_is_not_mistaken_for_free():
    stderr = "arping: libnet_init(LIBNET_LINK, nonexist): No such device"
    with pytest.raises(CommandFailed, match="No such device"):
        arping.address_in_use(_arping_result(1, "", stderr))


# --- builders against the real programs, inside namespaces we create ------------


@pytest.fixture(scope="module")
def linked_namespaces():
    """Two namespaces joined by a veth pair made inside the first one."""
    import os
    import subprocess

    tag = f"byzh-{os.getpid() % 100000}"
    names = (f"{tag}p", f"{tag}q")

    def run(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    try:
        for name in names:
            run("ip", "netns", "add", name)
        run(
            "ip", "-n", names[0], "link", "add", "vp", "type", "veth",
            "peer", "name", "vq", "netns", names[1],
        )  # fmt: skip
        for name, dev, address in zip(
            names, ("vp", "vq"), ("10.97.0.1/24", "10.97.0.2/24")
        ):
            run("ip", "-n", name, "link", "set", dev, "up")
            run("ip", "-n", name, "addr", "add", address, "dev", dev)
        yield names
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.mark.lab
def test_real_arping_detects_used_and_free_addresses(linked_namespaces):
    from portal.host.runner import NamespaceRunner

    runner = NamespaceRunner(linked_namespaces[0])
    used = runner.run(
        arping.duplicate_address_probe("vp", "10.97.0.2", count=2, wait_seconds=2)
    )
    assert arping.address_in_use(used) is True
    free = runner.run(
        arping.duplicate_address_probe("vp", "10.97.0.9", count=1, wait_seconds=1)
    )
    assert arping.address_in_use(free) is False
    broken = runner.run(arping.duplicate_address_probe("nosuch0", "10.97.0.2", count=1))
    with pytest.raises(CommandFailed):
        arping.address_in_use(broken)


@pytest.mark.lab
def test_real_nft_check_apply_list_delete(linked_namespaces, tmp_path):
    import json

    from portal.host.files import FileStore
    from portal.host.runner import NamespaceRunner

    runner = NamespaceRunner(linked_namespaces[0])
    files = FileStore(tmp_path)
    files.write(
        "/etc/byz.nft", "table inet byzh_test {\n  set clients { type ipv4_addr; }\n}\n"
    )
    files.write("/etc/bad.nft", "table inet byzh_test { nonsense }\n")
    good, bad = str(files.path("/etc/byz.nft")), str(files.path("/etc/bad.nft"))
    assert runner.run(nft.check_file(good)).ok
    with pytest.raises(CommandFailed):
        runner.run(nft.check_file(bad))
    with pytest.raises(CommandFailed):  # checking applied nothing
        runner.run(nft.list_table("byzh_test"))
    runner.run(nft.apply_file(good))
    listing = json.loads(runner.run(nft.list_table("byzh_test")).stdout)
    assert {"set": True} == {
        k: True for item in listing["nftables"] for k in item if k == "set"
    }
    runner.run(nft.delete_table("byzh_test"))
    assert not runner.run(nft.delete_table("byzh_test", missing_ok=True)).ok


@pytest.mark.lab
def test_real_sysctl_reads_and_sets_namespace_forwarding(linked_namespaces):
    from portal.host.runner import NamespaceRunner

    runner = NamespaceRunner(linked_namespaces[1])
    key = sysctl.interface_key("ipv4", "vq", "forwarding")
    runner.run(sysctl.write(key, 1))
    assert sysctl.parse_value(runner.run(sysctl.read(key)).stdout) == 1
    runner.run(sysctl.write(key, 0))
    assert sysctl.parse_value(runner.run(sysctl.read(key)).stdout) == 0


@pytest.mark.parametrize(
    "validator, good",
    [
        (validate.interface_name, "wlan0"),
        (validate.namespace_name, "byz-n1"),
        (validate.mac_address, "02:ca:ff:ee:ba:be"),
        (validate.nft_identifier, "byz_captive"),
        (validate.absolute_path, "/etc/byzantium/babeld.conf"),
    ],
)
@pytest.mark.parametrize("tail", ["\n", "\r\n", "\n;reboot"])
def test_validators_refuse_a_trailing_line_break(validator, good, tail):
    # Python's `$` also matches before a final newline; a value with one must
    # still be refused, or it would end a line early in a config file.
    assert validator(good)
    with pytest.raises(InvalidValue):
        validator(good + tail)
