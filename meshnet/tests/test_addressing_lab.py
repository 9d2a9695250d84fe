"""Two real lab nodes forced to the same candidate: the second finds the clash.

Both nodes derive their candidates from the same seed, so they ask for the
same first addresses. Node 1 takes them first; node 2 must see the clash
through the real babeld (node 1 announces the subnet) or through a real
arping probe on the veth link between them (node 1 holds the address on
the link, unannounced), and take its second candidate.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from meshnet import address_services, addressing
from meshnet.addressing import CHECK_ARPING, CHECK_MESH_ROUTES, candidate_for
from meshnet.apply import LAB_TUNING, apply_mesh
from meshnet.models import AddressOrigin, MeshSettings
from portal.host import babel
from portal.host.builders import link
from portal.host.runner import NamespaceRunner
from portal.lab.lab import Lab

pytestmark = [pytest.mark.lab]

# Quick probes: one ARP probe, one second, per address and link.
PROBES = {"probe_count": 1, "probe_wait": 1}


@pytest.fixture(scope="module")
def lab(make_module_lab) -> Lab:
    return make_module_lab(nodes=2, clients=0)


def babel_socket(lab: Lab, node: str) -> Path:
    return lab.node_path(node, "/run/byzantium/babeld.sock")


def take_addresses(lab: Lab, node: str, candidate: addressing.AddressCandidate) -> None:
    """Give ``node`` the candidate with the portal's own apply (as a node does
    once it has chosen): mesh address on lo, gateway on br-lan, babeld
    restarted to announce both."""
    state = replace(
        lab.node_state(node),
        mesh_address=str(candidate.mesh_address),
        client_subnet=str(candidate.client_subnet),
    )
    apply_mesh(lab.node_host(node), state, tuning=LAB_TUNING)


def wait_for_route(socket_path: Path, prefix: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            dump = babel.read_dump(socket_path)
        except babel.BabelNotRunning:
            dump = None
        if dump and any(route.prefix == prefix for route in dump.routes):
            return
        time.sleep(0.2)
    raise AssertionError(f"{prefix} never reached {socket_path}")


@pytest.mark.django_db
def test_second_node_sees_the_subnet_in_babels_table_and_takes_another(lab):
    seed = "mac:02:ad:d1:00:00:01"
    first, second = candidate_for(seed, 0), candidate_for(seed, 1)

    chosen_by_n1 = addressing.choose_addresses(
        lab.node_host("n1"),
        candidates=addressing.seeded_candidates(seed),
        babel_socket=babel_socket(lab, "n1"),
        **PROBES,
    )
    assert chosen_by_n1.chosen == first
    assert chosen_by_n1.checks[0].probed_links == ("to-n2",)
    take_addresses(lab, "n1", first)
    wait_for_route(babel_socket(lab, "n2"), str(first.client_subnet))

    choice, stored = address_services.choose_and_store_addresses(
        host=lab.node_host("n2"),
        babel_socket=babel_socket(lab, "n2"),
        node_name="n2",
        candidates=addressing.seeded_candidates(seed),
        **PROBES,
    )
    assert [check.candidate for check in choice.checks] == [first, second]
    refused = choice.checks[0]
    assert refused.failed_check == CHECK_MESH_ROUTES
    assert str(first.client_subnet) in {clash.ours for clash in refused.clashes}
    assert "to-n1" in refused.explain()
    assert choice.chosen == second
    assert choice.checks[1].probed_links == ("to-n1",)
    row = MeshSettings.load()
    assert (row.mesh_address, row.client_subnet) == (
        str(second.mesh_address),
        str(second.client_subnet),
    )
    assert row.address_origin == AddressOrigin.AUTOMATIC
    assert stored is not None and stored.change is None  # a first choice


def test_second_node_hears_an_arp_answer_on_the_link_and_takes_another(lab):
    seed = "mac:02:ad:d1:00:00:02"
    first, second = candidate_for(seed, 0), candidate_for(seed, 1)

    chosen_by_n1 = addressing.choose_addresses(
        lab.node_host("n1"),
        candidates=addressing.seeded_candidates(seed),
        babel_socket=None,
        configured_links=["to-n2"],
        **PROBES,
    )
    assert chosen_by_n1.chosen == first
    # Node 1 holds the address on the shared link, and babeld does not
    # announce it: only the probe can tell.
    NamespaceRunner(lab.namespace("n1")).run(
        link.address_add("to-n2", f"{first.mesh_address}/32")
    )

    choice = addressing.choose_addresses(
        lab.node_host("n2"),
        candidates=addressing.seeded_candidates(seed),
        babel_socket=babel_socket(lab, "n2"),
        **PROBES,
    )
    refused = choice.checks[0]
    assert refused.failed_check == CHECK_ARPING
    (clash,) = refused.clashes
    assert clash.ours == str(first.mesh_address)
    assert clash.detail.startswith("to-n1, from ")
    assert choice.chosen == second
