"""A real node: nginx terminates TLS and forwards to gunicorn on a socket.

``manage.py check --deploy`` is clean with these settings.
"""

from typing import Any

from .base import *  # noqa: F403


def apply_https_settings(namespace: dict[str, Any]) -> None:
    """Mark cookies secure and trust nginx's scheme header.

    nginx overwrites ``X-Forwarded-Proto`` on every request, and gunicorn
    listens only on a Unix socket nginx can reach, so a client cannot forge
    the header. HSTS is deliberately short and without subdomains: the node is
    reached by bare IP and mesh names, and a long pin would lock clients out
    if the operator later turns HTTPS off on a replaced node.
    """
    namespace.update(
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        SESSION_COOKIE_SECURE=True,
        CSRF_COOKIE_SECURE=True,
        SECURE_HSTS_SECONDS=3600,
        SECURE_HSTS_INCLUDE_SUBDOMAINS=False,
        SECURE_HSTS_PRELOAD=False,
        # The HTTP side must keep answering (captive portal, node API), so
        # the redirect to HTTPS is done per path by PublicSideMiddleware.
        SECURE_SSL_REDIRECT=False,
    )


apply_https_settings(globals())

SILENCED_SYSTEM_CHECKS = [
    # SECURE_SSL_REDIRECT is off on purpose: see apply_https_settings.
    "security.W008",
    # HSTS without subdomains and without preload is a choice, see above.
    "security.W005",
    "security.W021",
]
