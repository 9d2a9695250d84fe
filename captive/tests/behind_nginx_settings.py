"""The test settings behind nginx: what the lab's gunicorn runs with.

The dev and production settings trust nginx's headers (X-Forwarded-Proto,
X-Real-IP); the plain test settings do not, since Django's test client has
no proxy in front. The portal's lab tests put the real nginx in front of
gunicorn, so they need the same trust, and nothing else changed.
"""

from portal.settings.test import *  # noqa: F403

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
