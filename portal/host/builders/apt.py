"""Installing Debian packages the service catalogue names (``apt-get``).

Only ``install`` exists here, with package names checked against Debian's
rules for names; callers pass names read from the catalogue, never from a
request. No options from outside reach the argv.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from ..commands import Command
from ..errors import InvalidValue

# Debian policy 5.6.1: lower case letters, digits, + - . ; two characters
# at least, starting with a letter or digit.
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]{1,80}\Z")
INSTALL_TIMEOUT = 1800.0


def package_name(value: str) -> str:
    """A Debian package name."""
    if not isinstance(value, str) or not PACKAGE_RE.fullmatch(value):
        raise InvalidValue(
            _("%(value)s is not a Debian package name.") % {"value": repr(value)[:40]}
        )
    return value


def install(names: list[str] | tuple[str, ...]) -> Command:
    """``apt-get install`` of the named packages, without questions."""
    if not names or len(names) > 50:
        raise InvalidValue(_("Name between one and fifty packages."))
    return Command(
        (
            "apt-get",
            "install",
            "--yes",
            "--no-install-recommends",
            *(package_name(name) for name in names),
        ),
        env=(("DEBIAN_FRONTEND", "noninteractive"),),
        timeout=INSTALL_TIMEOUT,
        check=False,
        output_cap=1024 * 1024,
    )
