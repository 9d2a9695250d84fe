"""What ``make run`` uses: the embedded defaults (SQLite, private Redis, lab).

It is served by gunicorn behind nginx exactly like production, so the HTTPS
rules hold here too; only DEBUG-free error pages and paths differ.
"""

from .base import *  # noqa: F403
from .production import apply_https_settings

apply_https_settings(globals())
