"""The operator's configuration file, read once when settings load.

A node is configured by one TOML file (``docs/portal.example.toml`` documents
every key). Its path comes from ``BYZANTIUM_CONFIG``; without it the
embedded defaults apply, which is what ``make run`` uses on a developer
machine: everything lives under ``var/`` in the checkout and the portal
manages node 1 of the lab. Every environment variable ``BYZANTIUM_<KEY>``
overrides the key of the same name, so the run script and the tests can
point a process at another state folder without writing a file.

Values are checked here and a bad one raises ``ImproperlyConfigured`` at
start-up with the key named, instead of failing later inside a job.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

REPO_DIR = Path(__file__).resolve().parent.parent

HOST_MODES = ("lab", "system", "dry-run")
LANGUAGE_CODES = ("en", "es", "fr", "ar")


@dataclass(frozen=True)
class PortalConfig:
    """What the operator chose, with the defaults filled in."""

    host_mode: str = "lab"
    state_dir: Path = REPO_DIR / "var"
    files_root: Path | None = None
    lab_prefix: str = "byz"
    lab_node: str = "n1"
    lab_nodes: int = 3
    lab_clients: int = 1
    # make run's lab also gets an Internet namespace behind lab_node's up0.
    lab_internet: bool = True
    http_port: int = 8080
    https_port: int = 8443
    language: str = "en"
    job_retention_days: int = 30
    database: dict[str, Any] = field(default_factory=dict)
    redis_url: str = ""
    web_user: str = "byzantium-web"

    @property
    def run_dir(self) -> Path:
        """Sockets and pid files of the processes ``make run`` starts."""
        return self.state_dir / "run"

    @property
    def lab_dir(self) -> Path:
        """Per-node folders of the lab (configs, pid files, sockets)."""
        return self.state_dir / "lab" / self.lab_prefix

    @property
    def effective_files_root(self) -> Path:
        """Where the host layer writes files that live under / on a node."""
        if self.files_root is not None:
            return self.files_root
        if self.host_mode == "system":
            return Path("/")
        if self.host_mode == "lab":
            return self.lab_dir / self.lab_node / "root"
        return self.state_dir / "dry-run-root"

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"unix://{self.run_dir / 'redis' / 'redis.sock'}?db=0"


_INT_KEYS = {
    "lab_nodes",
    "lab_clients",
    "http_port",
    "https_port",
    "job_retention_days",
}
_PATH_KEYS = {"state_dir", "files_root"}
_BOOL_KEYS = {"lab_internet"}
_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"0", "false", "no", "off"}
_STR_KEYS = {
    "host_mode",
    "lab_prefix",
    "lab_node",
    "language",
    "redis_url",
    "web_user",
}


def _coerce(key: str, value: Any) -> Any:
    if key in _INT_KEYS:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ImproperlyConfigured(
                f"{key} must be a whole number, not {value!r}"
            ) from None
        if number < 0:
            raise ImproperlyConfigured(f"{key} must not be negative")
        return number
    if key in _BOOL_KEYS:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE_WORDS | _FALSE_WORDS:
            return word in _TRUE_WORDS
        raise ImproperlyConfigured(f"{key} must be true or false, not {value!r}")
    if key in _PATH_KEYS:
        path = Path(str(value))
        if not path.is_absolute():
            path = (REPO_DIR / path).resolve()
        return path
    if key in _STR_KEYS:
        if not isinstance(value, str):
            raise ImproperlyConfigured(f"{key} must be text, not {value!r}")
        return value
    if key == "database":
        if not isinstance(value, dict):
            raise ImproperlyConfigured(
                "database must be a table of Django DATABASES keys"
            )
        return value
    raise ImproperlyConfigured(f"unknown configuration key {key!r}")


def load_config(
    environ: os._Environ[str] | dict[str, str] | None = None,
) -> PortalConfig:
    """Read the TOML file and the environment, check, and return the config."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = env.get("BYZANTIUM_CONFIG")
    if path:
        try:
            with open(path, "rb") as handle:
                values.update(tomllib.load(handle))
        except FileNotFoundError:
            raise ImproperlyConfigured(
                f"configuration file {path} does not exist"
            ) from None
        except tomllib.TOMLDecodeError as error:
            raise ImproperlyConfigured(f"configuration file {path}: {error}") from error
    for key in _INT_KEYS | _PATH_KEYS | _STR_KEYS | _BOOL_KEYS:
        env_value = env.get(f"BYZANTIUM_{key.upper()}")
        if env_value is not None and env_value != "":
            values[key] = env_value
    coerced = {key: _coerce(key, value) for key, value in values.items()}
    config = PortalConfig(**coerced)
    _validate(config)
    return config


def _validate(config: PortalConfig) -> None:
    if config.host_mode not in HOST_MODES:
        choices = ", ".join(HOST_MODES)
        raise ImproperlyConfigured(
            f"host_mode must be one of {choices}, not {config.host_mode!r}"
        )
    if config.language not in LANGUAGE_CODES:
        choices = ", ".join(LANGUAGE_CODES)
        raise ImproperlyConfigured(
            f"language must be one of {choices}, not {config.language!r}"
        )
    if not config.lab_prefix.isalnum() or not 2 <= len(config.lab_prefix) <= 5:
        raise ImproperlyConfigured("lab_prefix must be 2 to 5 letters or digits")
    for port_key in ("http_port", "https_port"):
        port = getattr(config, port_key)
        if not 1 <= port <= 65535:
            raise ImproperlyConfigured(f"{port_key} must be between 1 and 65535")
    if not 1 <= config.lab_nodes <= 16:
        raise ImproperlyConfigured("lab_nodes must be between 1 and 16")


def read_or_create_secret(path: Path, *, mode: int = 0o640) -> str:
    """Return the secret stored in ``path``, generating it on first run.

    The file is created with ``O_EXCL`` so two processes starting at once
    agree on one secret.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
