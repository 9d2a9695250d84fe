"""dnsmasq.conf from a MeshState: DHCP range, mesh names, option 114, upstreams.

Every rendered file is also checked by ``dnsmasq --test``.
"""

import subprocess
from pathlib import Path

import pytest

from meshnet import dnsmasq_config
from meshnet.state import InterfaceState, MeshState
from portal.host.errors import InvalidValue
from portal.host.files import FileStore

ROOT = FileStore(Path("/var/lib/byz/lab/byz/n2/root"))


def _state(**changes):
    values = {
        "node_name": "beta",
        "mesh_address": "10.42.0.8",
        "client_subnet": "10.42.8.0/24",
        "interfaces": (
            InterfaceState(name="wlan0", role="mesh", medium="ibss"),
            InterfaceState(name="br-lan", role="clients", medium="wired"),
        ),
    }
    values.update(changes)
    return MeshState(**values)


def _lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_dhcp_serves_the_rest_of_the_client_subnet_with_the_node_as_router():
    lines = _lines(dnsmasq_config.render(_state(), ROOT))
    assert "interface=br-lan" in lines
    assert "interface=wlan0" not in lines
    assert "dhcp-range=10.42.8.2,10.42.8.254,255.255.255.0,3600" in lines
    assert "dhcp-option=option:router,10.42.8.1" in lines
    assert "dhcp-option=option:dns-server,10.42.8.1" in lines
    assert (
        "dhcp-leasefile=/var/lib/byz/lab/byz/n2/root/var/lib/byzantium/dnsmasq.leases"
        in lines
    )
    assert "pid-file=/var/lib/byz/lab/byz/n2/root/run/byzantium/dnsmasq.pid" in lines


def test_mesh_names_come_from_the_hosts_file_and_are_never_forwarded():
    lines = _lines(dnsmasq_config.render(_state(mesh_domain="city.mesh"), ROOT))
    assert "addn-hosts=/var/lib/byz/lab/byz/n2/root/etc/byzantium/mesh-hosts" in lines
    assert "domain=city.mesh" in lines
    assert "local=/city.mesh/" in lines
    assert "no-resolv" in lines
    assert not [line for line in lines if line.startswith("server=")]


def test_upstream_servers_are_the_gateways_hook():
    text = dnsmasq_config.render(
        _state(), ROOT, upstream_servers=["192.0.2.53", "2001:db8::53"]
    )
    assert "server=192.0.2.53\nserver=2001:db8::53\n" in text
    assert "no-resolv" in text  # never the machine's own resolv.conf


def test_option_114_only_when_the_captive_portal_is_on():
    assert "114" not in dnsmasq_config.render(_state(), ROOT)
    text = dnsmasq_config.render(
        _state(captive_portal_api="https://10.42.8.1/captive/api"), ROOT
    )
    assert 'dhcp-option=114,"https://10.42.8.1/captive/api"' in _lines(text)


def test_lease_time_and_a_small_subnet():
    text = dnsmasq_config.render(
        _state(client_subnet="10.9.9.0/28", dhcp_lease_seconds=600), ROOT
    )
    assert "dhcp-range=10.9.9.2,10.9.9.14,255.255.255.240,600" in text


@pytest.mark.parametrize(
    "changes",
    [
        {"client_subnet": "10.42.8.0/24\ndhcp-range=1.2.3.4"},
        {"client_subnet": "10.42.8.5/24"},
        {"client_subnet": "10.42.8.0/31"},
        {"mesh_domain": "mesh; rm"},
        {"mesh_domain": "Mesh"},
        {"mesh_domain": "mesh\nserver=8.8.8.8"},
        {"mesh_domain": "mésh"},
        {"mesh_domain": "m" * 64},
        {"dhcp_lease_seconds": 30},
        {"dhcp_lease_seconds": 10**9},
        {"captive_portal_api": 'https://x/"\ndhcp-option=3,1.2.3.4'},
        {"captive_portal_api": "https://x/a,b"},
        {"captive_portal_api": "https://x/$(reboot)"},
        {"captive_portal_api": "ftp://x/"},
        {"captive_portal_api": "https://x/" + "a" * 300},
        {
            "interfaces": (
                InterfaceState(name="br lan", role="clients", medium="wired"),
            )
        },
    ],
)
def test_hostile_values_never_reach_the_file(changes):
    with pytest.raises(InvalidValue):
        dnsmasq_config.render(_state(**changes), ROOT)


@pytest.mark.parametrize("server", ["8.8.8.8; rm", "dns.example", "1.2.3.4%eth0"])
def test_hostile_upstream_is_refused(server):
    with pytest.raises(InvalidValue):
        dnsmasq_config.render(_state(), ROOT, upstream_servers=[server])


def test_dnsmasq_is_wanted_only_with_a_subnet_and_a_client_interface():
    assert dnsmasq_config.dnsmasq_wanted(_state())
    assert not dnsmasq_config.dnsmasq_wanted(_state(client_subnet=""))
    assert not dnsmasq_config.dnsmasq_wanted(
        _state(interfaces=(InterfaceState(name="wlan0", role="mesh", medium="ibss"),))
    )


@pytest.mark.parametrize(
    "changes, kwargs",
    [
        ({}, {}),
        ({"captive_portal_api": "https://10.42.8.1/captive/api?x=1&y=(2)"}, {}),
        ({"mesh_domain": "city.mesh", "dhcp_lease_seconds": 120}, {}),
        ({}, {"upstream_servers": ["192.0.2.53", "2001:db8::53"]}),
        (
            {"client_subnet": "10.200.0.0/16"},
            {"tuning": dnsmasq_config.DhcpTuning(True)},
        ),
        ({"offline_dns_answer": "198.18.0.1"}, {}),
    ],
    ids=["plain", "captive", "domain", "upstreams", "big-subnet-lab", "offline"],
)
def test_dnsmasq_accepts_every_rendered_config(changes, kwargs, tmp_path):
    tuning = kwargs.pop("tuning", None)
    files = FileStore(tmp_path)
    text = dnsmasq_config.render(_state(**changes), files, tuning, **kwargs)
    path = files.path(dnsmasq_config.CONFIG)
    files.write(dnsmasq_config.CONFIG, text)
    result = subprocess.run(
        ["dnsmasq", "--test", f"--conf-file={path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax check OK" in result.stderr + result.stdout


def test_the_captive_probe_hosts_file_is_read_only_while_the_portal_is_on():
    hosts = "addn-hosts=/var/lib/byz/lab/byz/n2/root/etc/byzantium/captive-probe-hosts"
    assert hosts not in _lines(dnsmasq_config.render(_state(), ROOT))
    text = dnsmasq_config.render(
        _state(captive_portal_api="http://10.42.8.1:8081/captive/api"), ROOT
    )
    assert hosts in _lines(text)
    assert dnsmasq_config.CAPTIVE_PROBE_HOSTS == "/etc/byzantium/captive-probe-hosts"


def test_offline_every_outside_name_answers_the_node_and_mesh_names_stay():
    lines = _lines(dnsmasq_config.render(_state(offline_dns_answer="198.18.0.1"), ROOT))
    assert "address=/#/198.18.0.1" in lines
    # The mesh domain is more specific, so NAME.mesh keeps its own answers.
    assert lines.index("local=/mesh/") < lines.index("address=/#/198.18.0.1")
    assert "address=/#/198.18.0.1" not in _lines(dnsmasq_config.render(_state(), ROOT))


def test_an_upstream_wins_over_the_offline_answer():
    text = dnsmasq_config.render(
        _state(offline_dns_answer="198.18.0.1"), ROOT, upstream_servers=["192.0.2.53"]
    )
    assert "server=192.0.2.53" in _lines(text)
    assert not [line for line in _lines(text) if line.startswith("address=")]


@pytest.mark.parametrize("answer", ["198.18.0.1\naddress=/x/1.2.3.4", "node", "::1"])
def test_a_hostile_offline_answer_is_refused(answer):
    with pytest.raises(InvalidValue):
        dnsmasq_config.render(_state(offline_dns_answer=answer), ROOT)
