"""iw, hostapd and batctl builders: pinned argvs, refused values, real checks.

The hostapd config is checked by the real hostapd 2.10 (Debian 12): it
parses the file, then fails at the missing interface; the test tells a
clean file from a broken one by hostapd's own words. The batman-adv module
check runs for real on this machine (where the module is absent).
"""

from __future__ import annotations

import pytest

from portal.host.builders import batctl, hostapd, iw
from portal.host.errors import CommandFailed, InvalidValue
from portal.host.runner import RecordingRunner, SystemRunner

HOSTILE = ["wlan0;reboot", "wl an0", "$(id)", "wlan0\n", "ä" * 3, "x" * 16, ""]


def test_iw_argvs_are_pinned():
    assert iw.dev_list().argv == ("iw", "dev")
    assert iw.phy_list().argv == ("iw", "phy")
    assert iw.phy_info("phy0").argv == ("iw", "phy", "phy0", "info")
    assert iw.set_type("wlan0", "ibss").argv == (
        "iw",
        "dev",
        "wlan0",
        "set",
        "type",
        "ibss",
    )
    assert iw.set_type("wlan0", "__ap").argv[-1] == "__ap"
    assert iw.ibss_join(
        "wlan0", "commotionwireless.net", 2432, bssid="02:CA:FF:EE:BA:BE"
    ).argv == (
        "iw",
        "dev",
        "wlan0",
        "ibss",
        "join",
        "commotionwireless.net",
        "2432",
        "fixed-freq",
        "02:ca:ff:ee:ba:be",
    )
    assert iw.ibss_join("wlan0", "x", 2412, fixed_frequency=False).argv == (
        "iw",
        "dev",
        "wlan0",
        "ibss",
        "join",
        "x",
        "2412",
    )
    assert iw.ibss_leave("wlan0").argv == ("iw", "dev", "wlan0", "ibss", "leave")
    assert iw.mesh_join("mesh0", "byzantium-mesh", 2432).argv == (
        "iw",
        "dev",
        "mesh0",
        "mesh",
        "join",
        "byzantium-mesh",
        "freq",
        "2432",
        "HT20",
    )
    assert iw.mesh_leave("mesh0").argv == ("iw", "dev", "mesh0", "mesh", "leave")
    assert iw.regulatory_domain_set("DE").argv == ("iw", "reg", "set", "DE")
    assert iw.interface_up("wlan0").argv == ("ip", "link", "set", "dev", "wlan0", "up")
    assert iw.interface_down("wlan0").argv == (
        "ip",
        "link",
        "set",
        "dev",
        "wlan0",
        "down",
    )


def test_leaving_a_cell_one_is_not_in_is_no_error():
    assert iw.ibss_leave("wlan0").check is False
    assert iw.mesh_leave("wlan0").check is False


@pytest.mark.parametrize("name", HOSTILE)
def test_iw_refuses_hostile_interface_names(name):
    with pytest.raises(InvalidValue):
        iw.set_type(name, "ibss")


@pytest.mark.parametrize(
    "call",
    [
        lambda: iw.set_type("wlan0", "monitor"),
        lambda: iw.set_type("wlan0", "ibss; reboot"),
        lambda: iw.ibss_join("wlan0", "a\nb", 2412),
        lambda: iw.ibss_join("wlan0", "x" * 33, 2412),
        lambda: iw.ibss_join("wlan0", "ok", 99999),
        lambda: iw.ibss_join("wlan0", "ok", 2412, bssid="01:00:5e:00:00:01"),
        lambda: iw.ibss_join("wlan0", "ok", 2412, bssid="00:00:00:00:00:00"),
        lambda: iw.ibss_join("wlan0", "ok", 2412, bssid="zz:00:00:00:00:00"),
        lambda: iw.mesh_join("wlan0", "ok", 2412, width="HT40;"),
        lambda: iw.phy_info("phy0;ls"),
        lambda: iw.regulatory_domain_set("de"),
        lambda: iw.regulatory_domain_set("DEU"),
    ],
)
def test_iw_refuses_bad_values(call):
    with pytest.raises(InvalidValue):
        call()


def test_batctl_argvs_are_pinned():
    assert batctl.create_mesh_interface().argv == (
        "ip",
        "link",
        "add",
        "name",
        "bat0",
        "type",
        "batadv",
    )
    assert batctl.interface_add("wlan0").argv == (
        "batctl",
        "meshif",
        "bat0",
        "interface",
        "add",
        "wlan0",
    )
    assert batctl.interface_del("wlan0").argv == (
        "batctl",
        "meshif",
        "bat0",
        "interface",
        "del",
        "wlan0",
    )
    assert batctl.interface_list().argv == ("batctl", "meshif", "bat0", "interface")
    assert batctl.neighbors().argv == ("batctl", "meshif", "bat0", "neighbors")
    assert batctl.originators().argv == ("batctl", "meshif", "bat0", "originators")
    assert batctl.modprobe().argv == ("modprobe", "batman-adv")
    assert batctl.modprobe(dry_run=True).argv == ("modprobe", "-n", "batman-adv")


def test_batctl_interface_listing_is_parsed():
    text = "wlan0: active\nto-n2: inactive\n"
    assert batctl.parse_interface_list(text) == {"wlan0": "active", "to-n2": "inactive"}


def test_batman_missing_module_gives_the_clear_error_on_this_machine():
    """The real check: /sys/module, then `modprobe -n batman-adv` for real."""
    if batctl.module_loaded():
        batctl.ensure_module(SystemRunner(), load=False)  # present: no error
        return
    with pytest.raises(batctl.BatmanModuleMissing) as caught:
        batctl.ensure_module(SystemRunner(), load=False)
    assert "batman-adv kernel module is missing" in str(caught.value)


def test_batman_module_that_modprobe_cannot_load_is_reported(tmp_path):
    runner = RecordingRunner(strict=True)
    runner.answer(("modprobe",), returncode=1, stderr="FATAL: Module not found")
    with pytest.raises(batctl.BatmanModuleMissing):
        batctl.ensure_module(runner, tmp_path)
    assert runner.argvs == [("modprobe", "batman-adv")]


def test_batman_module_already_loaded_runs_nothing(tmp_path):
    (tmp_path / "batman_adv").mkdir()
    runner = RecordingRunner(strict=True)
    batctl.ensure_module(runner, tmp_path)
    assert runner.argvs == []


# -- hostapd ------------------------------------------------------------------


def _check(tmp_path, text: str) -> list[str]:
    path = tmp_path / "hostapd-check.conf"
    path.write_text(text)
    result = SystemRunner().run(hostapd.check_command(str(path)))
    return hostapd.check_errors(result)


def test_rendered_access_point_config_is_pinned():
    config = hostapd.HostapdConfig(
        interface="wlan1", ssid="Byzantium", channel=11, passphrase="mesh is life"
    )
    assert hostapd.render_config(config) == (
        "# hostapd configuration of wlan1, rendered by the portal; do not edit.\n"
        "interface=wlan1\n"
        "driver=nl80211\n"
        "ssid2=42797a616e7469756d\n"
        "utf8_ssid=1\n"
        "hw_mode=g\n"
        "channel=11\n"
        "ieee80211n=1\n"
        "wmm_enabled=1\n"
        "auth_algs=1\n"
        "ignore_broadcast_ssid=0\n"
        "wpa=2\n"
        "wpa_key_mgmt=WPA-PSK\n"
        "rsn_pairwise=CCMP\n"
        "wpa_passphrase=mesh is life\n"
    )


@pytest.mark.parametrize(
    "config",
    [
        hostapd.HostapdConfig(interface="wlan1", ssid="Byzantium", channel=6),
        hostapd.HostapdConfig(
            interface="wlan1",
            ssid="Café; $(reboot)",
            channel=36,
            hw_mode="a",
            passphrase='p"a$s w;o\\rd',
            country="DE",
        ),
    ],
)
def test_rendered_config_is_accepted_by_hostapd(tmp_path, config):
    text = hostapd.render_config(config, interface=hostapd.CHECK_INTERFACE)
    assert _check(tmp_path, text) == []


def test_hostapd_check_reports_a_broken_config(tmp_path):
    broken = (
        f"interface={hostapd.CHECK_INTERFACE}\ndriver=nl80211\nssid=x\n"
        "hw_mode=q\nchannel=6\nwpa=2\nwpa_passphrase=short\n"
    )
    errors = _check(tmp_path, broken)
    assert any("hw_mode" in line for line in errors)
    assert any("passphrase" in line for line in errors)


def test_hostapd_check_without_a_verdict_is_not_taken_for_clean():
    from portal.host.commands import CommandResult

    with pytest.raises(CommandFailed):
        hostapd.check_errors(CommandResult(argv=("hostapd",), returncode=0))


def test_hostapd_start_argv_is_pinned():
    assert hostapd.start(
        "/etc/byzantium/hostapd-wlan1.conf", "/run/byzantium/hostapd-wlan1.pid"
    ).argv == (
        "hostapd",
        "-B",
        "-P",
        "/run/byzantium/hostapd-wlan1.pid",
        "/etc/byzantium/hostapd-wlan1.conf",
    )


@pytest.mark.parametrize(
    "values",
    [
        {"ssid": "a\nwpa=0"},
        {"ssid": "x" * 33},
        {"channel": 0},
        {"channel": 15},
        {"hw_mode": "b"},
        {"passphrase": "short"},
        {"passphrase": "x" * 64},
        {"passphrase": "new\nline=1"},
        {"passphrase": "pässphrase"},
        {"country": "de"},
        {"interface": "wlan0;x"},
    ],
)
def test_hostapd_config_refuses_bad_values(values):
    base = {"interface": "wlan1", "ssid": "Byzantium", "channel": 6}
    with pytest.raises(InvalidValue):
        hostapd.HostapdConfig(**(base | values))
