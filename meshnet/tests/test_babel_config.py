"""babeld.conf from a MeshState: what it announces, its key, its checks.

Every rendered configuration is also handed to babeld itself
(``check_with_babeld``: babeld started on it in a scratch namespace), since
babeld has no test flag of its own.
"""

from pathlib import Path

import pytest

from meshnet import babel_config
from meshnet.state import InterfaceState, MeshState
from portal.host.errors import HostError, InvalidValue
from portal.host.files import FileStore

ROOT = FileStore(Path("/var/lib/byz/lab/byz/n1/root"))


def _state(**changes):
    values = {
        "node_name": "alpha",
        "mesh_address": "10.42.0.7",
        "client_subnet": "10.42.7.0/24",
        "interfaces": (
            InterfaceState(name="wlan0", role="mesh", medium="ibss"),
            InterfaceState(name="eth1", role="mesh", medium="wired"),
            InterfaceState(name="br-lan", role="clients", medium="wired"),
        ),
    }
    values.update(changes)
    return MeshState(**values)


def _directives(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_config_announces_only_the_nodes_own_prefixes():
    text = babel_config.render(_state(), ROOT)
    assert _directives(text) == [
        "local-path /var/lib/byz/lab/byz/n1/root/run/byzantium/babeld.sock",
        "pid-file /var/lib/byz/lab/byz/n1/root/run/byzantium/babeld.pid",
        "state-file /var/lib/byz/lab/byz/n1/root/var/lib/byzantium/babeld.state",
        "log-file /var/lib/byz/lab/byz/n1/root/var/log/byzantium/babeld.log",
        "default split-horizon false",
        "interface wlan0 type wireless",
        "interface eth1 type wired",
        "redistribute local ip 10.42.0.7/32 allow",
        "redistribute ip 10.42.7.0/24 eq 24 allow",
        "redistribute local deny",
        "redistribute deny",
    ]
    assert "readwrite" not in text
    assert "0.0.0.0/0" not in text


def test_default_route_is_announced_only_by_a_gateway():
    text = babel_config.render(_state(announce_default_route=True), ROOT)
    directives = _directives(text)
    assert "redistribute ip 0.0.0.0/0 le 0 allow" in directives
    assert "redistribute ip 0.0.0.0/0 le 0 proto 3 allow" in directives
    # ... and then does not install the other gateways' default routes
    assert "in ip 0.0.0.0/0 le 0 deny" in directives
    assert "in ip 0.0.0.0/0 le 0 deny" not in _directives(
        babel_config.render(_state(), ROOT)
    )
    assert directives[-2:] == ["redistribute local deny", "redistribute deny"]


def test_disabled_and_client_interfaces_are_not_mesh_links():
    state = _state(
        interfaces=(
            InterfaceState(name="wlan0", role="mesh", medium="ibss", enabled=False),
            InterfaceState(name="eth1", role="mesh", medium="wired"),
            InterfaceState(name="wlan1", role="clients", medium="ap"),
        )
    )
    text = babel_config.render(state, ROOT)
    assert [line for line in text.splitlines() if line.startswith("interface")] == [
        "interface eth1 type wired"
    ]


def test_hmac_key_from_a_passphrase_is_hashed_and_used_on_every_link():
    text = babel_config.render(_state(babel_hmac_key="our mesh, our rules"), ROOT)
    key = babel_config.hmac_key_hex("our mesh, our rules")
    assert len(key) == 64
    assert f"key id mesh type hmac-sha256 value {key}" in text
    assert "our mesh" not in text
    assert "interface wlan0 type wireless key mesh" in text
    assert "interface eth1 type wired key mesh" in text


def test_hmac_key_given_in_hex_is_used_as_it_is():
    hex_key = "AB" * 32
    assert babel_config.hmac_key_hex(hex_key) == "ab" * 32


@pytest.mark.parametrize("key", ["short", "a" * 129, "line\nbreak here", "tab\there!!"])
def test_unusable_hmac_key_is_refused(key):
    with pytest.raises(InvalidValue):
        babel_config.render(_state(babel_hmac_key=key), ROOT)


def test_batman_adv_routes_over_bat0():
    text = babel_config.render(_state(protocol="batman-adv"), ROOT)
    assert [line for line in text.splitlines() if line.startswith("interface")] == [
        "interface bat0 type wired"
    ]


def test_lab_tuning_sets_a_short_hello_interval():
    text = babel_config.render(
        _state(), ROOT, babel_config.BabelTuning(hello_interval=0.5)
    )
    assert "default hello-interval 0.5" in text


@pytest.mark.parametrize(
    "changes",
    [
        {"mesh_address": "10.42.0.7; rm -rf /"},
        {"mesh_address": "10.42.0.0/24"},
        {"mesh_address": "fe80::1"},
        {"client_subnet": "10.42.7.1/24"},
        {"client_subnet": "10.42.7.0/24\nredistribute allow"},
        {"client_subnet": "2001:db8::/64"},
        {"interfaces": (InterfaceState(name="wlan0 x", role="mesh", medium="ibss"),)},
        {"interfaces": (InterfaceState(name="$(reboot)", role="mesh", medium="ibss"),)},
        {"interfaces": (InterfaceState(name="w\nlan", role="mesh", medium="ibss"),)},
        {"interfaces": (InterfaceState(name="wlän0", role="mesh", medium="ibss"),)},
        {"interfaces": (InterfaceState(name="a" * 16, role="mesh", medium="ibss"),)},
        {"interfaces": (InterfaceState(name="wlan0", role="mesh", medium="ap"),)},
        {"protocol": "ospf"},
    ],
)
def test_hostile_values_never_reach_the_file(changes):
    with pytest.raises(InvalidValue):
        babel_config.render(_state(**changes), ROOT)


def test_babeld_is_wanted_only_with_an_address_and_a_mesh_link():
    assert babel_config.babeld_wanted(_state())
    assert not babel_config.babeld_wanted(_state(mesh_address=None))
    assert not babel_config.babeld_wanted(
        _state(
            interfaces=(InterfaceState(name="br-lan", role="clients", medium="wired"),)
        )
    )


def test_static_check_refuses_unknown_directive_and_open_redistribution():
    text = babel_config.render(_state(), ROOT)
    with pytest.raises(InvalidValue):
        babel_config.check_config(text + "local-path-readwrite /tmp/x\n")
    with pytest.raises(InvalidValue):
        babel_config.check_config(text.replace("redistribute deny\n", ""))


# -- babeld's own parser (needs root: scratch network namespaces) ----------


@pytest.mark.lab
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"announce_default_route": True},
        {"babel_hmac_key": "our mesh, our rules"},
        {"babel_hmac_key": "0f" * 64, "protocol": "batman-adv"},
        {"client_subnet": ""},
    ],
    ids=["plain", "gateway", "hmac", "batman-hex-key", "no-client-subnet"],
)
def test_babeld_accepts_every_rendered_config(changes, tmp_path):
    files = FileStore(tmp_path / "root")
    text = babel_config.render(
        _state(**changes), files, babel_config.BabelTuning(hello_interval=0.5)
    )
    babel_config.check_with_babeld(text, scratch=tmp_path)


@pytest.mark.lab
def test_babeld_check_reports_what_babeld_refuses(tmp_path):
    text = babel_config.render(_state(), FileStore(tmp_path / "root"))
    broken = text.replace("type wired", "type copper")
    with pytest.raises(HostError, match="refused the configuration"):
        babel_config.check_with_babeld(broken, scratch=tmp_path)
