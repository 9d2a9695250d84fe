"""Adding books to a kiwix library file (``kiwix-manage``, kiwix-tools).

kiwix-serve serves the books listed in a library XML file; the offline
library service (``services/catalogue/library``) rebuilds that file from
the operator's .zim folder before each start. Only ``add`` exists here: one
library file, one .zim file, both absolute paths (they start with ``/``, so
neither can pass for an option), no other option from outside.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from django.utils.translation import gettext as _

from .. import validate
from ..commands import Command
from ..errors import InvalidValue

# A .zim file name from an operator's disk: printable, no control
# characters or backslashes; spaces are fine (argv, never a shell).
_ZIM_PATH = re.compile(r"^/[^\x00-\x1f\x7f\\]{1,1000}\.zim\Z")
ADD_TIMEOUT = 120.0


def zim_path(value: str) -> str:
    """An absolute path of a ``.zim`` file, without ``.`` or ``..`` parts."""
    if (
        not isinstance(value, str)
        or not _ZIM_PATH.fullmatch(value)
        or "//" in value
        or any(part in (".", "..") for part in PurePosixPath(value).parts)
    ):
        raise InvalidValue(
            _("%(value)s is not the path of a .zim file.") % {"value": repr(value)[:60]}
        )
    return value


def add_book(*, library: str, zim: str) -> Command:
    """``kiwix-manage LIBRARY add ZIM``: list one book in the library file."""
    library = validate.absolute_path(library)
    if not library.endswith(".xml"):
        raise InvalidValue(_("A kiwix library file ends in .xml."))
    return Command(
        ("kiwix-manage", library, "add", zim_path(zim)),
        timeout=ADD_TIMEOUT,
        check=False,
    )
