"""``manage.py check --deploy`` is clean with the production settings.

Run in a subprocess: the production settings module must load on its own
(its own state folder, its own secret key), exactly as on a real node.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portal.config import REPO_DIR


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BYZANTIUM_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.production",
        BYZANTIUM_STATE_DIR=str(tmp_path / "state"),
        BYZANTIUM_HOST_MODE="system",
    )

    result = subprocess.run(
        [
            sys.executable,
            str(REPO_DIR / "manage.py"),
            "check",
            "--deploy",
            "--fail-level",
            "WARNING",
        ],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
