"""meshnet.wireless: iw parsers, channels, BSSID, pinned plans, apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshnet import wireless
from meshnet.state import InterfaceState, MeshState
from meshnet.tests.iw_samples import IW_DEV, IW_PHY_ATH9K, IW_PHY_BOTH, IW_PHY_INTEL
from portal.host.builders import batctl
from portal.host.errors import InvalidValue
from portal.host.files import FileStore
from portal.host.node import Host
from portal.host.runner import RecordingRunner, SystemRunner


def test_ath9k_radio_supports_ibss_mesh_point_and_ap_on_two_bands():
    (radio,) = wireless.parse_iw_phy(IW_PHY_ATH9K)
    assert (radio.phy, radio.index) == ("phy0", 0)
    assert radio.supports_ibss and radio.supports_mesh_point and radio.supports_ap
    assert radio.bands == ("2.4", "5")
    assert radio.channel(14).disabled
    assert radio.channel(52).radar and radio.channel(52).no_ir
    assert radio.channel(149).disabled
    assert radio.channel(6) == wireless.Channel(6, 2437, "2.4", 20.0)
    assert [c.number for c in radio.usable_channels()] == [
        *range(1, 14),
        36,
        40,
        44,
        48,
    ]


def test_intel_radio_in_old_iw_format_has_no_mesh_point_and_passive_channels():
    (radio,) = wireless.parse_iw_phy(IW_PHY_INTEL)
    assert (radio.phy, radio.index) == ("phy1", 1)
    assert radio.supports_ibss and radio.supports_ap
    assert not radio.supports_mesh_point
    assert radio.channel(12).no_ir and not radio.channel(12).disabled
    assert radio.channel(165).no_ir
    assert radio.channel(1).frequency == 2412  # not the 6 GHz channel 1
    assert radio.bands == ("2.4", "5", "6")
    # software interface modes and combinations are not interface modes
    assert "AP/VLAN" in radio.modes and radio.modes.count("monitor") == 1


def test_two_radios_in_one_output():
    assert [r.phy for r in wireless.parse_iw_phy(IW_PHY_BOTH)] == ["phy0", "phy1"]
    assert wireless.parse_iw_phy("nl80211 not found.\n") == []


def test_iw_dev_maps_interfaces_to_radios():
    found = {w.name: w for w in wireless.parse_iw_dev(IW_DEV)}
    assert set(found) == {"wlan0", "wlp3s0"}
    assert found["wlan0"].phy == "phy0"
    assert (found["wlan0"].type, found["wlan0"].channel) == ("IBSS", 5)
    assert found["wlan0"].frequency == 2432
    assert found["wlan0"].ssid == "commotionwireless.net"
    assert (found["wlp3s0"].phy, found["wlp3s0"].type) == ("phy1", "managed")


@pytest.mark.parametrize(
    ("channel", "frequency"),
    [
        (1, 2412),
        (5, 2432),
        (13, 2472),
        (14, 2484),
        (36, 5180),
        (149, 5745),
        (165, 5825),
    ],
)
def test_channel_frequency_round_trip(channel, frequency):
    assert wireless.frequency_of(channel) == frequency
    assert wireless.channel_of(frequency) == channel


def test_six_ghz_frequencies_map_to_their_channels():
    assert wireless.channel_of(5955) == 1
    assert wireless.band_of(5955) == "6"


@pytest.mark.parametrize("channel", [0, 15, 35, 200, True])
def test_unknown_channels_are_refused(channel):
    with pytest.raises(InvalidValue):
        wireless.frequency_of(channel)


def test_derived_bssid_is_stable_unicast_locally_administered():
    bssid = wireless.derive_bssid("riverside", 6)
    assert bssid == wireless.derive_bssid("riverside", 6)
    assert bssid != wireless.derive_bssid("riverside", 11)
    assert bssid != wireless.derive_bssid("riverside2", 6)
    first = int(bssid[:2], 16)
    assert first & 0x01 == 0 and first & 0x02 == 0x02
    assert bssid != "00:00:00:00:00:00"


def test_community_defaults_keep_their_published_cell_id():
    assert wireless.default_bssid("commotionwireless.net", 5) == "02:ca:ff:ee:ba:be"
    assert wireless.default_bssid("commotionwireless.net", 6) != "02:ca:ff:ee:ba:be"


@pytest.mark.parametrize(
    "value", ["", "two words", "a;b", "$(id)", "x\n", "né", "x" * 33, "-x"]
)
def test_network_names_refuse_hostile_values(value):
    with pytest.raises(InvalidValue):
        wireless.network_name(value)


def test_channel_check_against_the_radio():
    (radio,) = wireless.parse_iw_phy(IW_PHY_ATH9K)
    assert wireless.check_channel(radio, 36).frequency == 5180
    for bad in (14, 52, 149, 165):
        with pytest.raises(InvalidValue):
            wireless.check_channel(radio, bad)
    assert wireless.check_channel(None, 11) is None


def test_ibss_plan_is_pinned():
    plan = wireless.plan_interface(
        InterfaceState(name="wlan0", role="mesh", medium="ibss")
    )
    assert plan.argvs == [
        ("ip", "link", "set", "dev", "wlan0", "down"),
        ("iw", "dev", "wlan0", "set", "type", "ibss"),
        ("ip", "link", "set", "dev", "wlan0", "up"),
        (
            "iw",
            "dev",
            "wlan0",
            "ibss",
            "join",
            "commotionwireless.net",
            "2432",
            "fixed-freq",
            "02:ca:ff:ee:ba:be",
        ),
    ]
    assert plan.files == ()


def test_ibss_plan_derives_the_bssid_for_another_network():
    plan = wireless.plan_interface(
        InterfaceState(
            name="wlan0", role="mesh", medium="ibss", essid="riverside", channel=36
        ),
        country="DE",
    )
    assert plan.argvs[0] == ("iw", "reg", "set", "DE")
    assert plan.argvs[-1][-3:] == (
        "5180",
        "fixed-freq",
        wireless.derive_bssid("riverside", 36),
    )


def test_open_mesh_point_plan_is_pinned():
    plan = wireless.plan_interface(
        InterfaceState(name="mesh0", role="mesh", medium="mesh-point", channel=11)
    )
    assert plan.argvs == [
        ("ip", "link", "set", "dev", "mesh0", "down"),
        ("iw", "dev", "mesh0", "set", "type", "mesh"),
        ("ip", "link", "set", "dev", "mesh0", "up"),
        (
            "iw",
            "dev",
            "mesh0",
            "mesh",
            "join",
            "byzantium-mesh",
            "freq",
            "2462",
            "HT20",
        ),
    ]
    assert plan.stop_pid_files == ("/run/byzantium/wpa_supplicant-mesh0.pid",)


def test_sae_mesh_point_plan_runs_wpa_supplicant(tmp_path):
    plan = wireless.plan_interface(
        InterfaceState(
            name="mesh0",
            role="mesh",
            medium="mesh-point",
            mesh_id="riverside",
            channel=6,
            passphrase="open sesame",
        ),
        files_root=tmp_path,
    )
    (config,) = plan.files
    assert config.path == "/etc/byzantium/wpa_supplicant-mesh0.conf"
    assert config.mode == 0o600
    assert "key_mgmt=SAE" in config.content and "mode=5" in config.content
    assert "frequency=2437" in config.content
    assert plan.argvs[-1] == (
        "wpa_supplicant",
        "-B",
        "-D",
        "nl80211",
        "-i",
        "mesh0",
        "-c",
        f"{tmp_path}/etc/byzantium/wpa_supplicant-mesh0.conf",
        "-P",
        f"{tmp_path}/run/byzantium/wpa_supplicant-mesh0.pid",
    )


@pytest.mark.parametrize("passphrase", ["open sesame", 'q"uo;te $(x) \\'])
def test_sae_mesh_config_is_accepted_by_wpa_supplicant(tmp_path, passphrase):
    path = tmp_path / "mesh.conf"
    path.write_text(wireless.render_supplicant_mesh("riverside", 6, passphrase))
    result = SystemRunner().run(wireless.supplicant_check_command(str(path)))
    assert wireless.supplicant_check_errors(result) == []


def test_wpa_supplicant_check_reports_a_broken_config(tmp_path):
    path = tmp_path / "mesh.conf"
    path.write_text("network={\n\tmode=5\n\tfrequency=abc\n}\n")
    result = SystemRunner().run(wireless.supplicant_check_command(str(path)))
    assert any("frequency" in e for e in wireless.supplicant_check_errors(result))


def test_access_point_plan_writes_hostapd_config_and_starts_it(tmp_path):
    plan = wireless.plan_interface(
        InterfaceState(
            name="wlan1",
            role="clients",
            medium="ap",
            essid="Byzantium",
            channel=11,
            passphrase="mesh is life",
        ),
        files_root=tmp_path,
    )
    (config,) = plan.files
    assert config.path == "/etc/byzantium/hostapd-wlan1.conf"
    assert config.mode == 0o600
    assert "channel=11\n" in config.content and "hw_mode=g\n" in config.content
    assert plan.argvs == [
        ("ip", "link", "set", "dev", "wlan1", "down"),
        (
            "hostapd",
            "-B",
            "-P",
            f"{tmp_path}/run/byzantium/hostapd-wlan1.pid",
            f"{tmp_path}/etc/byzantium/hostapd-wlan1.conf",
        ),
    ]


def test_access_point_config_is_verified_by_hostapd(tmp_path):
    host = Host(mode="test", runner=SystemRunner(), files=FileStore(tmp_path))
    iface = InterfaceState(name="wlan1", role="clients", medium="ap", channel=44)
    assert wireless.verify_hostapd_config(host, wireless.hostapd_config(iface)) == []
    assert not host.files.exists("/run/byzantium/hostapd-check.conf")


def test_wired_plan_only_brings_the_link_up():
    plan = wireless.plan_interface(InterfaceState("to-n2", "mesh", "wired"))
    assert plan.argvs == [("ip", "link", "set", "dev", "to-n2", "up")]


def test_batman_plan_adds_only_what_is_missing():
    assert [
        c.argv
        for c in wireless.plan_batman(["wlan0", "to-n2"], enslaved=["to-n2", "old0"])
    ] == [
        ("ip", "link", "add", "name", "bat0", "type", "batadv"),
        ("batctl", "meshif", "bat0", "interface", "del", "old0"),
        ("batctl", "meshif", "bat0", "interface", "add", "wlan0"),
        ("ip", "link", "set", "dev", "bat0", "up"),
    ]


def _host(tmp_path: Path) -> tuple[Host, RecordingRunner]:
    runner = RecordingRunner()
    return Host(mode="test", runner=runner, files=FileStore(tmp_path)), runner


def test_apply_configures_then_tears_down_a_released_interface(tmp_path):
    host, runner = _host(tmp_path)
    ap = InterfaceState("wlan1", "clients", "ap", essid="Byzantium", channel=1)
    state = MeshState(
        node_name="n1",
        interfaces=(InterfaceState("wlan0", "mesh", "ibss"), ap),
    )
    report = wireless.apply_interfaces(host, state)
    assert report.configured == ["wlan0", "wlan1"]
    assert host.files.exists("/etc/byzantium/hostapd-wlan1.conf")
    record = json.loads(host.files.read_text(wireless.RECORD_PATH))
    assert record["interfaces"] == {"wlan0": "ibss", "wlan1": "ap"}

    host.files.write("/run/byzantium/hostapd-wlan1.pid", "4242\n")
    runner.commands.clear()
    report = wireless.apply_interfaces(host, MeshState(node_name="n1"))
    assert report.released == ["wlan0", "wlan1"]
    assert ("kill", "-s", "TERM", "4242") in runner.argvs
    assert ("iw", "dev", "wlan0", "ibss", "leave") in runner.argvs
    assert ("iw", "dev", "wlan1", "set", "type", "managed") in runner.argvs
    assert not host.files.exists("/etc/byzantium/hostapd-wlan1.conf")


def test_apply_never_touches_interfaces_it_did_not_configure(tmp_path):
    host, runner = _host(tmp_path)
    wireless.apply_interfaces(host, MeshState(node_name="n1"))
    assert runner.argvs == []


def test_apply_with_batman_and_no_module_changes_nothing(tmp_path):
    host, runner = _host(tmp_path)
    runner.answer(("modprobe",), returncode=1)
    state = MeshState(
        node_name="n1",
        protocol="batman-adv",
        interfaces=(InterfaceState("to-n2", "mesh", "wired"),),
    )
    with pytest.raises(batctl.BatmanModuleMissing):
        wireless.apply_interfaces(host, state, sys_module=tmp_path / "sys")
    assert runner.argvs == [("modprobe", "batman-adv")]
    assert not host.files.exists(wireless.RECORD_PATH)


def test_apply_with_batman_enslaves_mesh_interfaces(tmp_path):
    host, runner = _host(tmp_path)
    (tmp_path / "sys" / "batman_adv").mkdir(parents=True)
    runner.answer(("batctl", "meshif", "bat0", "interface"), stdout="")
    state = MeshState(
        node_name="n1",
        protocol="batman-adv",
        interfaces=(InterfaceState("to-n2", "mesh", "wired"),),
    )
    report = wireless.apply_interfaces(host, state, sys_module=tmp_path / "sys")
    assert report.batman == ["to-n2"]
    assert runner.argvs[-2:] == [
        ("batctl", "meshif", "bat0", "interface", "add", "to-n2"),
        ("ip", "link", "set", "dev", "bat0", "up"),
    ]


def test_interface_details_for_the_status_snapshot(tmp_path):
    host, runner = _host(tmp_path)
    runner.answer(("iw", "dev"), stdout=IW_DEV)
    runner.answer(("iw", "phy"), stdout=IW_PHY_BOTH)
    details = wireless.collect_interface_details(
        host,
        [{"name": "wlan0", "kind": "wireless"}, {"name": "to-n2", "kind": "veth"}],
        sys_class_net=tmp_path / "nothing",
    )
    assert details["error"] == ""
    assert details["drivers"]["to-n2"] == "veth"
    assert details["wireless"]["wlan0"]["phy"] == "phy0"
    radio = wireless.radio_from_dict(details["radios"]["phy0"])
    assert radio.supports_mesh_point and radio.channel(52).radar


def test_interface_driver_is_read_from_sysfs(tmp_path):
    driver = tmp_path / "bus" / "pci" / "drivers" / "e1000e"
    driver.mkdir(parents=True)
    device = tmp_path / "net" / "enp0s25" / "device"
    device.mkdir(parents=True)
    (device / "driver").symlink_to(driver)
    assert wireless.interface_driver("enp0s25", sys_class_net=tmp_path / "net") == (
        "e1000e"
    )


def test_no_radios_without_nl80211(tmp_path):
    host, runner = _host(tmp_path)
    runner.answer(("iw",), returncode=1, stderr="nl80211 not found.")
    details = wireless.collect_interface_details(host, [])
    assert details["radios"] == {} and details["wireless"] == {}
