"""A tiny catalogue of fake services backed by a real daemon we control.

``python3 -m http.server`` is a real HTTP server from Debian's python3; two
entries (``web-base`` and ``web-top`` that depends on it) exercise the whole
framework without the real community services.
"""

from __future__ import annotations

from pathlib import Path

BASE = """
id = "web-base"
name = "Base web"
purpose = "A base page."
packages = ["python3"]
user = "nobody"
group = "nogroup"
create_user = false
seed = true
ready_timeout = 10

[[daemons]]
name = "http"
executable = "/usr/bin/python3"
args = [
  "-m", "http.server", "--bind", "{client_address}",
  "--directory", "{data_dir}", "{setting_port}",
]

[[config_files]]
template = "page.conf"
path = "{config_dir}/page.conf"
format = "ini"

[[ports]]
name = "http"
proto = "tcp"
port = 18080

[health]
kind = "http"
port = "http"
path = "/index.html"

[client]
kind = "url"
url = "http://{host}:{port_http}/"
mdns_type = "_http._tcp"

[[settings]]
key = "port"
kind = "integer"
label = "Port"
default = 18080
min = 18080
max = 18080

[[settings]]
key = "title"
kind = "text"
label = "Title"
default = "Mesh"

[[secrets]]
key = "admin"
label = "Admin password"
show = true
"""

TOP = """
id = "web-top"
name = "Top web"
purpose = "Needs the base."
packages = ["python3"]
depends = ["web-base"]
user = "nobody"
group = "nogroup"
create_user = false
ready_timeout = 10

[[daemons]]
name = "http"
executable = "/usr/bin/python3"
args = [
  "-m", "http.server", "--bind", "{client_address}",
  "--directory", "{config_dir}", "{port_http}",
]

[[ports]]
name = "http"
proto = "tcp"
port = 18081

[health]
kind = "tcp"
port = "http"

[client]
kind = "app"
app = "A browser"
port = "http"
"""

MISSING = """
id = "web-missing"
name = "Missing"
purpose = "Needs a package that is not installed."
packages = ["byzantium-no-such-package"]
user = "nobody"
group = "nogroup"
create_user = false

[[daemons]]
name = "x"
executable = "/usr/bin/python3"

[health]
kind = "process"

[client]
kind = "app"
app = "A browser"
port = "p"

[[ports]]
name = "p"
proto = "tcp"
port = 18082
"""


def write_fake_catalogue(folder: Path, extra: dict[str, str] | None = None) -> Path:
    """Write the fake entries (and ``extra`` id -> toml) under ``folder``."""
    entries = {"web-base": BASE, "web-top": TOP, "web-missing": MISSING}
    entries.update(extra or {})
    for service_id, text in entries.items():
        entry_dir = folder / service_id
        entry_dir.mkdir(parents=True, exist_ok=True)
        (entry_dir / "service.toml").write_text(text)
    (folder / "web-base" / "page.conf").write_text(
        "title = {{ settings.title }}\nlisten = {{ listen.all|join:',' }}\n"
    )
    seed = folder / "web-base" / "seed"
    seed.mkdir(exist_ok=True)
    (seed / "index.html").write_text("<p>seeded</p>\n")
    return folder
