"""The configuration files ``manage.py runnode`` writes, checked by the
programs that read them, and its small helpers. No processes are left
running: nginx only tests its configuration (``nginx -t``)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from portal.config import PortalConfig
from portal.management.commands import runnode


@pytest.fixture
def layout(tmp_path: Path) -> runnode.Layout:
    state = tmp_path / "state"
    return runnode.Layout(
        state_dir=state,
        run_dir=state / "run",
        log_dir=state / "log",
        static_root=state / "static",
        db_dir=state / "db",
        secret_key=state / "secret_key",
        tls_cert=state / "tls" / "portal.crt",
        tls_key=state / "tls" / "portal.key",
    )


def _config(layout: runnode.Layout, **changes: object) -> PortalConfig:
    return dataclasses.replace(
        PortalConfig(state_dir=layout.state_dir, http_port=18090, https_port=18453),
        **changes,
    )


def _make_cert(layout: runnode.Layout) -> None:
    layout.tls_cert.parent.mkdir(parents=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test",
            "-keyout",
            str(layout.tls_key),
            "-out",
            str(layout.tls_cert),
        ],
        check=True,
        capture_output=True,
    )


def test_nginx_accepts_the_rendered_configuration(layout: runnode.Layout) -> None:
    _make_cert(layout)
    config = _config(layout)
    accounts = runnode.Accounts.for_config(config)
    for folder in (layout.nginx_tmp, layout.log_dir, layout.static_root):
        folder.mkdir(parents=True, exist_ok=True)
    layout.nginx_conf.write_text(runnode.render_nginx_conf(layout, config, accounts))

    result = subprocess.run(
        [
            shutil.which("nginx", path=runnode.SYSTEM_PATH) or "nginx",
            "-t",
            "-p",
            f"{layout.nginx_dir}/",
            "-e",
            "stderr",
            "-c",
            str(layout.nginx_conf),
        ],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.parametrize("lab_node", [False, True])
def test_nginx_accepts_the_configuration_with_the_captive_held_port(
    layout: runnode.Layout, lab_node: bool
) -> None:
    _make_cert(layout)
    config = _config(layout, host_mode="lab" if lab_node else "system")
    accounts = runnode.Accounts.for_config(config)
    nginx_dir = layout.lab_nginx_dir if lab_node else layout.nginx_dir
    for folder in (nginx_dir / "tmp", layout.log_dir, layout.static_root):
        folder.mkdir(parents=True, exist_ok=True)
    conf = nginx_dir / "nginx.conf"
    text = runnode.render_nginx_conf(layout, config, accounts, lab_node=lab_node)
    conf.write_text(text)
    nginx = shutil.which("nginx", path=runnode.SYSTEM_PATH) or "nginx"
    result = subprocess.run(
        [nginx, "-t", "-p", f"{nginx_dir}/", "-e", "stderr", "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    held = text.split("# The captive portal's held port", 1)[1].split("server {", 2)
    held_block = "server {" + held[1]
    assert ":8081 default_server;" in held_block
    assert "keepalive_timeout 0;" in held_block
    assert "location = /static/hotspot.txt {\n            proxy_pass" in held_block
    others = text.replace(held_block, "")
    assert ":8081" not in others
    # Room for hundreds of phones (two connections per proxied request).
    assert "worker_connections 2048;" in text
    # The plain-HTTP server too: an authorised phone's offline probe.
    plain = others.split("server {", 2)[1]
    assert "location = /static/hotspot.txt {\n            proxy_pass" in plain
    assert "keepalive_timeout 0;" not in others


def test_nginx_overwrites_the_scheme_and_address_headers(
    layout: runnode.Layout,
) -> None:
    config = _config(layout)
    text = runnode.render_nginx_conf(
        layout, config, runnode.Accounts.for_config(config)
    )

    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "$proxy_add_x_forwarded_for" not in text
    assert f"server unix:{layout.web_socket}" in text
    assert f"alias {layout.static_root}/;" in text


def test_nginx_keeps_every_path_under_the_state_folder(
    layout: runnode.Layout,
) -> None:
    config = _config(layout)
    text = runnode.render_nginx_conf(
        layout, config, runnode.Accounts.for_config(config)
    )
    directives = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    paths = re.findall(r"(?<![\w$])(/[\w./-]+)", directives)

    outside = [
        path
        for path in paths
        if not path.startswith((str(layout.state_dir), "//"))
        and path not in ("/static/", "/static/hotspot.txt")
    ]
    assert outside == []
    assert "/etc/nginx" not in directives


def test_lab_mode_listens_on_loopback_only(layout: runnode.Layout) -> None:
    config = _config(layout, host_mode="lab")
    text = runnode.render_nginx_conf(
        layout, config, runnode.Accounts.for_config(config)
    )
    listens = re.findall(r"listen (\S+):(\d+)", text)

    assert {address for address, _port in listens} <= {"127.0.0.1", "[::1]"}
    assert {port for _address, port in listens} == {"18090", "18453"}


def test_system_mode_listens_on_every_address(layout: runnode.Layout) -> None:
    config = _config(layout, host_mode="system")

    assert "0.0.0.0" in runnode.listen_addresses(config)


def test_redis_listens_on_the_private_socket_only(layout: runnode.Layout) -> None:
    text = runnode.render_redis_conf(layout)
    settings_lines = [
        line for line in text.splitlines() if line and not line.startswith("#")
    ]

    assert "port 0" in settings_lines
    assert f"unixsocket {layout.redis_socket}" in settings_lines
    assert "unixsocketperm 770" in settings_lines
    assert f"dir {layout.redis_data}" in settings_lines
    assert "maxmemory-policy noeviction" in settings_lines


def test_redis_server_accepts_the_rendered_configuration(
    layout: runnode.Layout,
) -> None:
    """Start the real redis-server on the rendered file and PING it."""
    for folder in (layout.redis_dir, layout.redis_data):
        folder.mkdir(parents=True)
    layout.redis_conf.write_text(runnode.render_redis_conf(layout))
    server = subprocess.Popen(
        [
            shutil.which("redis-server", path=runnode.SYSTEM_PATH) or "redis-server",
            str(layout.redis_conf),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _attempt in range(100):
            if runnode._redis_ping(layout.redis_socket):
                break
            assert server.poll() is None, "redis-server refused the configuration"
            import time

            time.sleep(0.05)
        else:
            pytest.fail("redis-server did not answer on its socket")
        assert oct(layout.redis_socket.stat().st_mode & 0o777) == "0o770"
    finally:
        server.terminate()
        server.wait(10)
    assert not layout.redis_socket.exists()


def test_fingerprint_matches_openssl(layout: runnode.Layout) -> None:
    _make_cert(layout)
    openssl = subprocess.run(
        [
            "openssl",
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            str(layout.tls_cert),
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    expected = openssl.stdout.strip().split("=", 1)[1]
    assert runnode.cert_file_fingerprint(layout.tls_cert) == expected


def test_reachable_refuses_a_private_folder(tmp_path: Path) -> None:
    private = tmp_path / "private"
    inner = private / "inner"
    inner.mkdir(parents=True)
    os.chmod(private, 0o700)
    nobody = runnode.Account("nobody", "nogroup")
    tmp_path.chmod(0o755)

    assert not runnode._reachable(inner, nobody)
    os.chmod(private, 0o711)
    reachable = all(
        runnode._reachable(folder, nobody) for folder in (tmp_path.parent, tmp_path)
    )
    assert runnode._reachable(inner, nobody) == reachable


def test_http_status_parses_a_status_line() -> None:
    assert runnode._http_status(b"HTTP/1.1 302 Found\r\nLocation: /\r\n") == 302
    assert runnode._http_status(b"garbage") is None


def test_example_config_loads_and_documents_every_key() -> None:
    """docs/portal.example.toml names every key of PortalConfig and loads."""
    from portal.config import REPO_DIR, load_config

    example = REPO_DIR / "docs" / "portal.example.toml"
    text = example.read_text()

    config = load_config({"BYZANTIUM_CONFIG": str(example)})

    assert config.host_mode == "system"
    for key in (field.name for field in dataclasses.fields(PortalConfig)):
        assert re.search(rf"^#? ?(\[{key}\]|{key} =)", text, re.MULTILINE), key


@pytest.mark.parametrize(
    ("given", "expected"),
    [("false", False), ("No", False), ("0", False), ("on", True), ("true", True)],
)
def test_lab_internet_reads_words_from_the_environment(given, expected) -> None:
    from portal.config import load_config

    assert load_config({"BYZANTIUM_LAB_INTERNET": given}).lab_internet is expected


def test_lab_internet_refuses_anything_but_true_or_false() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from portal.config import load_config

    with pytest.raises(ImproperlyConfigured, match="must be true or false"):
        load_config({"BYZANTIUM_LAB_INTERNET": "maybe"})


def test_the_lab_gets_an_internet_behind_the_managed_node_unless_switched_off() -> None:
    """runnode asks `lab up` for the Internet behind lab_node only when
    lab_internet is on."""
    argv = [
        runnode.lab_up_argv(PortalConfig(lab_node="n2", lab_internet=enabled))
        for enabled in (True, False)
    ]
    assert argv[0][argv[0].index("--internet") + 1] == "n2"
    assert "--internet" not in argv[1]
