"""Interface pages, form and services, from a recorded status snapshot.

The snapshot is built by the real collection code (portal.status and
meshnet.wireless) from recorded ``ip -j`` and ``iw`` output of a node with
an ath9k radio (IBSS, mesh point, AP), an Intel radio (no mesh point), an
Ethernet port, a veth link and loopback.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from meshnet import interface_selectors, interface_services, wireless
from meshnet.models import MeshInterface, PendingChange
from meshnet.tests.iw_samples import IW_DEV, IW_PHY_BOTH
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner
from portal.jobqueue import health as health_module
from portal.jobqueue.health import QueueHealth
from portal.models import Job, NodeStatus
from portal.status import collect_interfaces
from portal.tests.access_helpers import finish_setup, logged_in_client


def _link(index, name, mac, *, kind=None, link_type="ether", addresses=()):
    entry = {
        "ifindex": index,
        "ifname": name,
        "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
        "mtu": 1500,
        "operstate": "UP",
        "link_type": link_type,
        "address": mac,
        "addr_info": [
            {"family": "inet", "local": a, "prefixlen": 24, "scope": "global"}
            for a in addresses
        ],
        "stats64": {
            "rx": {"bytes": 123456, "packets": 789},
            "tx": {"bytes": 4567, "packets": 89},
        },
    }
    if kind:
        entry["linkinfo"] = {"info_kind": kind}
    return entry


IP_ADDR = json.dumps(
    [
        _link(1, "lo", "00:00:00:00:00:00", link_type="loopback"),
        _link(2, "enp0s25", "3c:97:0e:11:22:33", addresses=["192.168.1.20"]),
        _link(3, "wlan0", "00:0e:8e:12:34:56"),
        _link(4, "wlp3s0", "7c:b2:7d:aa:bb:cc"),
        _link(5, "to-n2", "6a:11:22:33:44:55", kind="veth"),
    ]
)


def build_snapshot(tmp_path) -> dict:
    runner = RecordingRunner()
    runner.answer(("iw", "dev"), stdout=IW_DEV)
    runner.answer(("iw", "phy"), stdout=IW_PHY_BOTH)
    runner.answer(("ip", "-j", "-s", "-d", "addr", "show"), stdout=IP_ADDR)
    host = Host(mode="test", runner=runner, files=FileStore(tmp_path))
    interfaces, error = collect_interfaces(host)
    assert error == ""
    sysfs = tmp_path / "sys" / "class" / "net"
    for name, driver in (("enp0s25", "e1000e"), ("wlan0", "ath9k")):
        target = tmp_path / "sys" / "bus" / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (sysfs / name / "device").mkdir(parents=True)
        (sysfs / name / "device" / "driver").symlink_to(target)
    details = wireless.collect_interface_details(host, interfaces, sys_class_net=sysfs)
    return {
        "interfaces": interfaces,
        "interfaces_error": "",
        "interface_details": details,
    }


@pytest.fixture
def snapshot(tmp_path, db):
    data = build_snapshot(tmp_path)
    NodeStatus.store(data)
    return data


@pytest.fixture
def client(db, monkeypatch):
    finish_setup(node_name="riverside")
    monkeypatch.setattr(
        health_module,
        "queue_health",
        lambda *a, **k: QueueHealth(
            redis_ok=True, worker_count=1, queued=0, message=""
        ),
    )
    return logged_in_client()


def _rows():
    return {row.name: row for row in interface_selectors.interface_overview().rows}


def test_rows_have_kind_driver_and_radio_abilities(snapshot):
    rows = _rows()
    assert rows["enp0s25"].category == "wired" and rows["enp0s25"].driver == "e1000e"
    assert rows["to-n2"].category == "virtual" and rows["to-n2"].driver == "veth"
    assert rows["lo"].category == "virtual" and not rows["lo"].configurable
    wlan0 = rows["wlan0"]
    assert (wlan0.category, wlan0.driver, wlan0.radio.phy) == (
        "wireless",
        "ath9k",
        "phy0",
    )
    assert wlan0.uses == ("mesh:ibss", "mesh:mesh-point", "clients:ap")
    assert wlan0.wireless_type == "IBSS" and wlan0.wireless_channel == 5
    # The Intel card has no mesh point mode: it is not offered.
    assert rows["wlp3s0"].uses == ("mesh:ibss", "clients:ap")
    assert rows["to-n2"].uses == ("mesh:wired", "clients:wired")
    assert rows["enp0s25"].addresses == ("192.168.1.20/24",)


def test_list_page_shows_every_interface(client, snapshot):
    response = client.get(reverse("meshnet:interfaces"))
    assert response.status_code == 200
    text = response.content.decode()
    for name in ("enp0s25", "wlan0", "wlp3s0", "to-n2", "e1000e", "ath9k"):
        assert name in text
    assert "802.11s mesh point" in text
    assert "00:0e:8e:12:34:56" in text


def test_list_page_without_snapshot_says_why(client, db):
    response = client.get(reverse("meshnet:interfaces"))
    assert response.status_code == 200
    assert "No interface list yet" in response.content.decode()


def test_interface_page_offers_defaults_and_channels(client, snapshot):
    response = client.get(reverse("meshnet:interface", args=["wlan0"]))
    text = response.content.decode()
    assert response.status_code == 200
    assert "commotionwireless.net" in text and "02:ca:ff:ee:ba:be" in text
    assert "radar detection needed" in text
    assert 'value="52"' not in text  # radar channel not offered
    assert 'value="36"' in text


def test_interface_page_of_unknown_or_hostile_name_is_404(client, snapshot):
    assert client.get("/mesh/interfaces/nothere0/").status_code == 404
    assert client.get("/mesh/interfaces/wl%3Bls/").status_code == 404


def test_pages_need_login(db, snapshot):
    from portal.tests.access_helpers import HttpsClient

    finish_setup()
    response = HttpsClient().get(reverse("meshnet:interfaces"))
    assert response.status_code == 302


def test_making_an_ibss_mesh_link_proposes_a_change(
    client, snapshot, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        response = client.post(
            reverse("meshnet:interface", args=["wlan0"]),
            {"use": "mesh:ibss", "essid": "riverside", "channel": "36"},
        )
    change = PendingChange.objects.get()
    assert response.status_code == 302 and response.url == change.get_absolute_url()
    row = MeshInterface.objects.get(name="wlan0")
    assert (row.role, row.medium, row.essid, row.channel) == (
        "mesh",
        "ibss",
        "riverside",
        36,
    )
    assert row.bssid == wireless.derive_bssid("riverside", 36)
    assert change.kind == "interfaces"
    assert Job.objects.filter(kind="meshnet.apply_change").exists()


def test_defaults_fill_empty_fields(
    client, snapshot, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        client.post(reverse("meshnet:interface", args=["wlan0"]), {"use": "mesh:ibss"})
    row = MeshInterface.objects.get(name="wlan0")
    assert (row.essid, row.channel, row.bssid) == (
        "commotionwireless.net",
        5,
        "02:ca:ff:ee:ba:be",
    )


HOSTILE = [
    {"use": "mesh:ibss", "essid": "two words"},
    {"use": "mesh:ibss", "essid": "a;reboot"},
    {"use": "mesh:ibss", "essid": "$(reboot)"},
    {"use": "mesh:ibss", "essid": "line\nbreak"},
    {"use": "mesh:ibss", "essid": "x" * 33},
    {"use": "mesh:ibss", "essid": "café"},
    {"use": "mesh:ibss", "channel": "52"},
    {"use": "mesh:ibss", "channel": "14"},
    {"use": "mesh:ibss", "channel": "6;ls"},
    {"use": "mesh:ibss", "bssid": "01:00:5e:00:00:01"},
    {"use": "mesh:ibss", "bssid": "00:00:00:00:00:00"},
    {"use": "mesh:ibss", "bssid": "02:ca:ff:ee:ba:be\nx"},
    {"use": "mesh:ibss", "passphrase": "secret words"},
    {"use": "mesh:mesh-point", "mesh_id": "$(id)"},
    {"use": "mesh:mesh-point", "passphrase": "short"},
    {"use": "mesh:mesh-point", "passphrase": "x" * 64},
    {"use": "mesh:mesh-point", "passphrase": "pässwort123"},
    {"use": "mesh:mesh-point", "passphrase": "new\nline=1"},
    {"use": "clients:ap", "essid": "a b"},
    {"use": "mesh:wired"},  # not a use of a radio
    {"use": "rm -rf"},
]


@pytest.mark.parametrize("values", HOSTILE)
def test_hostile_values_are_refused_and_nothing_changes(client, snapshot, values):
    response = client.post(reverse("meshnet:interface", args=["wlan0"]), values)
    assert response.status_code == 400
    assert 'class="field__errors"' in response.content.decode() or (
        "form-errors" in response.content.decode()
    )
    assert not MeshInterface.objects.exists()
    assert not PendingChange.objects.exists()
    assert not Job.objects.exists()


def test_intel_card_cannot_become_a_mesh_point(client, snapshot):
    response = client.post(
        reverse("meshnet:interface", args=["wlp3s0"]), {"use": "mesh:mesh-point"}
    )
    assert response.status_code == 400
    assert not MeshInterface.objects.exists()


def test_wired_mesh_link_on_a_veth(
    client, snapshot, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        response = client.post(
            reverse("meshnet:interface", args=["to-n2"]), {"use": "mesh:wired"}
        )
    assert response.status_code == 302
    row = MeshInterface.objects.get()
    assert (row.name, row.role, row.medium, row.essid) == ("to-n2", "mesh", "wired", "")


def test_only_one_client_interface(snapshot, django_capture_on_commit_callbacks):
    finish_setup()
    MeshInterface.objects.create(name="enp0s25", role="clients", medium="wired")
    with pytest.raises(interface_services.InterfaceError) as caught:
        interface_services.make_client_interface(name="wlan0", medium="ap")
    assert "enp0s25" in str(caught.value)
    assert not PendingChange.objects.exists()


def test_services_refuse_hostile_values_even_without_the_form(db):
    finish_setup()
    with pytest.raises(interface_services.InterfaceError):
        interface_services.make_mesh_interface(
            name="wlan0", medium="ibss", essid="x;reboot", channel=5
        )
    with pytest.raises(interface_services.InterfaceError):
        interface_services.make_mesh_interface(name="wlan0\n", medium="wired")
    assert not MeshInterface.objects.exists()


def test_release_proposes_the_list_without_it(
    client, snapshot, django_capture_on_commit_callbacks
):
    MeshInterface.objects.create(name="to-n2", role="mesh", medium="wired")
    MeshInterface.objects.create(
        name="wlan0",
        role="mesh",
        medium="ibss",
        essid="x",
        channel=1,
        bssid="02:00:00:00:00:01",
    )
    with django_capture_on_commit_callbacks():
        response = client.post(reverse("meshnet:interface_release", args=["to-n2"]))
    change = PendingChange.objects.get()
    assert response.url == change.get_absolute_url()
    assert list(MeshInterface.objects.values_list("name", flat=True)) == ["wlan0"]
    assert [i["name"] for i in change.previous["interfaces"]] == ["to-n2", "wlan0"]


def test_release_of_an_interface_without_role_is_404(client, snapshot):
    assert (
        client.post(reverse("meshnet:interface_release", args=["wlan0"])).status_code
        == 404
    )
    assert client.get(
        reverse("meshnet:interface_release", args=["wlan0"])
    ).status_code in (
        404,
        405,
    )
