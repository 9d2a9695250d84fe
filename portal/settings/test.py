"""Settings for pytest: a state folder of its own and fast password hashing.

The environment is set before ``base`` reads the configuration, so tests never
touch the state of a portal started by ``make run`` (``var/``), and the host
mode defaults to dry-run: a test that wants a real system builds a lab.
"""

import os

from portal.config import REPO_DIR

os.environ.setdefault("BYZANTIUM_STATE_DIR", str(REPO_DIR / "var" / "test"))
os.environ.setdefault("BYZANTIUM_HOST_MODE", "dry-run")
os.environ.setdefault("BYZANTIUM_LAB_PREFIX", "byzt")

from .base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test database is a file, not SQLite's in-memory default, so a real
# worker process started by a test (portal/tests/test_jobs_worker.py) sees
# the rows the test writes.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    (STATE_DIR / "db").mkdir(parents=True, exist_ok=True)  # noqa: F405
    DATABASES["default"].setdefault("TEST", {})  # noqa: F405
    DATABASES["default"]["TEST"].setdefault(  # noqa: F405
        # One file per pytest process: runs side by side do not collide.
        "NAME",
        str(STATE_DIR / "db" / f"test-{os.getpid()}.sqlite3"),  # noqa: F405
    )
