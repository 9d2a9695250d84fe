"""``manage.py lab``: up, status, exec and down, end to end as root."""

import dataclasses
import io
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from portal.config import REPO_DIR
from portal.lab import list_namespaces
from portal.lab.lab import pid_alive
from portal.lab.pytest_plugin import new_test_prefix, require_root

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_settings():
    """Settings naming a fresh test lab; the lab is removed at the end."""
    require_root()
    portal = dataclasses.replace(settings.PORTAL, lab_prefix=new_test_prefix())
    with override_settings(PORTAL=portal):
        try:
            yield portal
        finally:
            call_command("lab", "down", stdout=io.StringIO())


@pytest.fixture(scope="module")
def lab_up(lab_settings):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "lab", "up", "--nodes", "3", "--clients", "1", "--json",
        "--neighbour-documents", "n1", stdout=out, stderr=err,
    )  # fmt: skip
    return json.loads(out.getvalue()), err.getvalue()


def _manage(portal, *args):
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
    env["BYZANTIUM_LAB_PREFIX"] = portal.lab_prefix
    env["BYZANTIUM_STATE_DIR"] = str(portal.state_dir)
    return subprocess.run(
        [sys.executable, "manage.py", "lab", *args],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_up_json_reports_convergence_and_the_lab(lab_up, lab_settings):
    data, progress = lab_up
    prefix = lab_settings.lab_prefix
    assert 0 < data["converged_seconds"] < 60
    assert "Converged" in progress
    assert [node["name"] for node in data["nodes"]] == ["n1", "n2", "n3"]
    assert data["clients"][0]["name"] == "c1"
    assert data["clients"][0]["address"].startswith("10.213.1.")
    assert data["links"] == [["n1", "n2"], ["n1", "c1"], ["n2", "n3"]]
    assert data["base_dir"] == str(lab_settings.lab_dir)
    assert sorted(data["namespaces"]) == sorted(
        f"{prefix}-{name}" for name in ("n1", "n2", "n3", "c1")
    )
    print(f"\nmanage.py lab up (3 nodes): converged in {data['converged_seconds']} s")


def test_status_json_and_text_show_daemons_and_pids(lab_up):
    out = io.StringIO()
    call_command("lab", "status", "--json", stdout=out)
    data = json.loads(out.getvalue())
    daemons = [
        d for member in data["nodes"] + data["clients"] for d in member["daemons"]
    ]
    assert {d["program"] for d in daemons} == {
        "babeld",
        "dnsmasq",
        "dhclient",
        "document",
    }
    assert all(d["alive"] and d["pid"] for d in daemons)
    text = io.StringIO()
    call_command("lab", "status", stdout=text)
    assert "babeld" in text.getvalue() and "10.213.0.3/32" in text.getvalue()


def test_exec_runs_inside_and_passes_the_exit_code(lab_up, lab_settings):
    inside = _manage(
        lab_settings, "exec", "node-3", "--", "ip", "-o", "address", "show", "lo"
    )
    assert inside.returncode == 0, inside.stderr
    assert "10.213.0.3/32" in inside.stdout
    failing = _manage(lab_settings, "exec", "c1", "--", "sh", "-c", "exit 5")
    assert failing.returncode == 5
    with pytest.raises(SystemExit) as exited:
        call_command("lab", "exec", "c1", "--", "false")
    assert exited.value.code == 1


def test_exec_refuses_a_name_outside_the_lab(lab_up, lab_settings):
    with pytest.raises(CommandError):
        call_command("lab", "exec", "n7", "--", "true")
    with pytest.raises(CommandError):
        call_command("lab", "exec", "byz-n1", "--", "true")
    refused = _manage(lab_settings, "exec", "laptop", "--", "true")
    assert refused.returncode != 0 and "lab member" in refused.stderr
    no_internet = _manage(lab_settings, "exec", "inet", "--", "true")
    assert no_internet.returncode != 0 and "no Internet" in no_internet.stderr


def test_the_other_nodes_serve_their_documents_to_the_managed_node(
    lab_up, lab_settings
):
    from meshnet.node_document import parse_document
    from portal.lab import Lab

    data, progress = lab_up
    assert "Node documents served by n2, n3." in progress
    lab = Lab(prefix=lab_settings.lab_prefix, base_dir=lab_settings.lab_dir)
    for node, address in (("n2", "10.213.0.2"), ("n3", "10.213.0.3")):
        reply = lab.exec(
            "n1",
            ["curl", "-s", "--max-time", "5", f"http://{address}/api/v1/node"],
            capture=True,
        )
        document = parse_document(reply.stdout.encode())
        assert (document.name, document.mesh_address) == (node, address)
        assert document.client_subnet == f"10.213.{node[1:]}.0/24"
        assert document.services == ()
        daemons = {d.program: d for d in lab.status().member(node).daemons}
        assert daemons["document"].alive
    # The managed node serves none of its own: the portal does that.
    assert "document" not in {d.program for d in lab.status().member("n1").daemons}


def test_down_removes_everything(lab_up, lab_settings):
    prefix = lab_settings.lab_prefix
    out = io.StringIO()
    call_command("lab", "down", stdout=out)
    assert not [n for n in list_namespaces() if n.startswith(f"{prefix}-")]
    assert not lab_settings.lab_dir.exists()
    status = io.StringIO()
    call_command("lab", "status", "--json", stdout=status)
    assert json.loads(status.getvalue())["namespaces"] == []


@pytest.mark.parametrize(
    ("option", "node"), [("--neighbour-documents", "n9"), ("--internet", "n4")]
)
def test_a_node_that_is_not_there_builds_nothing(lab_settings, option, node):
    portal = dataclasses.replace(lab_settings, lab_prefix=new_test_prefix())
    with override_settings(PORTAL=portal):
        with pytest.raises(CommandError, match=f"{node} is not a node of this lab"):
            call_command(
                "lab", "up", "--nodes", "3", option, node,
                stdout=io.StringIO(), stderr=io.StringIO(),
            )  # fmt: skip
    assert not [n for n in list_namespaces() if n.startswith(portal.lab_prefix)]


def test_stand_in_public_addresses_are_the_gateways_defaults():
    """The lab's Internet answers every address the gateway app tries by
    default, so `make run`'s gateway works without changing a setting."""
    from gateway.dns import PUBLIC_RESOLVERS
    from gateway.models import DEFAULT_CHECK_TARGETS
    from portal.lab import internet

    assert set(DEFAULT_CHECK_TARGETS) | set(PUBLIC_RESOLVERS) <= set(
        internet.PUBLIC_STAND_INS
    )


def _in(namespace, *argv):
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *argv],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_internet_outlives_lab_up_answers_like_the_real_one_and_goes_with_down(
    lab_settings,
):
    from captive.probes import APPLE_SUCCESS
    from portal.lab import internet

    portal = dataclasses.replace(lab_settings, lab_prefix=new_test_prefix())
    prefix = portal.lab_prefix
    up = _manage(portal, "up", "--nodes", "2", "--clients", "0", "--json",
                 "--internet", "n1")  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        assert "The lab's Internet is behind n1" in up.stderr
        data = json.loads(up.stdout)
        inet = data["internet"]
        assert inet["namespace"] == f"{prefix}-inet" in data["namespaces"]
        assert ["n1", "inet"] in data["links"]
        # `lab up` has exited; the Internet's daemons are still there.
        assert {d["program"] for d in inet["daemons"]} == {"web", "dnsmasq", "dhcp"}
        assert all(d["alive"] for d in inet["daemons"]), inet["daemons"]
        text = _manage(portal, "status")
        assert "the lab's Internet" in text.stdout and "gw-n1" in text.stdout
        inside = _manage(
            portal, "exec", "inet", "--", "ip", "-o", "address", "show", "lo"
        )
        assert inside.returncode == 0 and "9.9.9.9/32" in inside.stdout

        # n1's uplink, set by hand here (the gateway app does it on a node).
        node = f"{prefix}-n1"
        for argv in (
            ["ip", "link", "set", "up0", "up"],
            ["ip", "address", "add", internet.uplink_address(1), "dev", "up0"],
            ["ip", "route", "add", "default", "via", internet.uplink_router(1)],
        ):
            assert _in(node, *argv).returncode == 0
        assert _in(node, "ping", "-c1", "-W3", "9.9.9.9").returncode == 0
        for server in ("9.9.9.9", internet.DNS_ADDRESS):
            assert internet.resolve_in(node, "anything.example.org", server) == (
                internet.WEB_ADDRESS
            )
        assert internet.resolve_in(node, "dns.msftncsi.com", "1.1.1.1") == (
            "131.107.255.255"
        )

        def get(path):
            answer = _in(node, "curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
                         "-H", "Host: connectivitycheck.gstatic.com",
                         f"http://{internet.WEB_ADDRESS}{path}")  # fmt: skip
            body, _, code = answer.stdout.rpartition("\n")
            return int(code), body

        assert get("/generate_204") == (204, "")
        assert get("/hotspot-detect.html") == (200, APPLE_SUCCESS.decode())
        peer = internet.uplink_address(1).split("/")[0]
        assert get("/") == (200, f"internet peer={peer}\n")
        web_pid = next(d["pid"] for d in inet["daemons"] if d["program"] == "web")
    finally:
        down = _manage(portal, "down")
    assert down.returncode == 0, down.stderr
    assert not [n for n in list_namespaces() if n.startswith(f"{prefix}-")]
    assert not pid_alive(web_pid)  # gone, or a zombie its new parent has to reap
