"""Operator settings and generated secrets: validated, then quoted per format.

Two steps, both pure functions so forms, jobs and tests agree:

1. :func:`clean_setting` checks a submitted value against its catalogue
   :class:`~services.catalogue.Setting` (kind, bounds, choices) and returns
   the canonical value or raises :class:`SettingRefused` with a message for
   the operator.
2. :func:`quote` turns a checked value into text for one config format
   (``lua``, ``xml``, ``php`` ...), or refuses a value that format cannot
   carry safely. A config is rendered only if every value quoted, so a
   hostile value changes nothing.
"""

from __future__ import annotations

import json
import re
import secrets as secrets_module
import string
from pathlib import PurePosixPath
from typing import Any

from django.utils.translation import gettext as _

from .catalogue import CatalogueEntry, Setting


class SettingRefused(ValueError):
    """A value that may not reach a config; the message is for the operator."""

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.key = key


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}\Z")
# RFC 2812 allows more; we keep channel names that every client and every
# config format handles: '#' then letters, digits, '-', '_', '.'.
_CHANNEL = re.compile(r"^#[A-Za-z0-9][A-Za-z0-9_.-]{0,48}\Z")
_FOLDER_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+@-]{0,127}\Z")
_WORDS = re.compile(r"^[A-Za-z0-9._\-/:@#+,=]{1,256}\Z")
SECRET_ALPHABET = string.ascii_letters + string.digits


def _refuse(setting: Setting, message: str) -> SettingRefused:
    return SettingRefused(message, key=setting.key)


def clean_setting(setting: Setting, value: Any) -> Any:
    """The canonical value of ``setting``, or :class:`SettingRefused`."""
    label = str(setting.label_title)
    if value is None or value == "":
        if setting.required:
            raise _refuse(setting, _("%(label)s is required.") % {"label": label})
        return None
    kind = setting.kind
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("on", "true", "1", 1):
            return True
        if value in ("off", "false", "0", 0):
            return False
        raise _refuse(setting, _("%(label)s must be yes or no.") % {"label": label})
    if kind == "integer":
        try:
            number = int(str(value).strip(), 10)
        except ValueError:
            raise _refuse(
                setting, _("%(label)s must be a whole number.") % {"label": label}
            ) from None
        low = setting.min if setting.min is not None else -(2**31)
        high = setting.max if setting.max is not None else 2**31
        if not low <= number <= high:
            raise _refuse(
                setting,
                _("%(label)s must be between %(low)d and %(high)d.")
                % {"label": label, "low": low, "high": high},
            )
        return number
    if not isinstance(value, str):
        raise _refuse(setting, _("%(label)s must be text.") % {"label": label})
    if _CONTROL.search(value):
        raise _refuse(
            setting,
            _("%(label)s may not contain line breaks or control characters.")
            % {"label": label},
        )
    if kind == "text":
        text = value.strip()
        if len(text.encode()) > 200:
            raise _refuse(
                setting,
                _("%(label)s is too long (200 bytes at most).") % {"label": label},
            )
        return text
    if kind == "name":
        if not _NAME.fullmatch(value):
            raise _refuse(
                setting,
                _(
                    "%(label)s may hold only letters, digits, spaces, '.', '_' "
                    "and '-' (63 at most), starting with a letter or digit."
                )
                % {"label": label},
            )
        return value
    if kind == "channel":
        if not _CHANNEL.fullmatch(value):
            raise _refuse(
                setting,
                _(
                    "%(label)s must be '#' followed by letters, digits, '.', '_' "
                    "or '-' (for example #mesh)."
                )
                % {"label": label},
            )
        return value
    if kind == "folder":
        path = PurePosixPath(value)
        parts = path.parts[1:]
        if (
            not path.is_absolute()
            or not parts
            or len(value) > 400
            or not all(_FOLDER_PART.fullmatch(part) for part in parts)
        ):
            raise _refuse(
                setting,
                _(
                    "%(label)s must be a full folder path such as /srv/zim, "
                    "made of letters, digits, spaces and '._+@-' (no '..')."
                )
                % {"label": label},
            )
        return str(path)
    if kind == "password":
        if not 8 <= len(value) <= 128 or not value.isprintable():
            raise _refuse(
                setting,
                _("%(label)s must be 8 to 128 printable characters.")
                % {"label": label},
            )
        return value
    if kind == "choice":
        if value not in setting.choices:
            raise _refuse(
                setting,
                _("%(label)s must be one of: %(choices)s.")
                % {"label": label, "choices": ", ".join(setting.choices)},
            )
        return value
    raise _refuse(setting, _("%(label)s has an unknown kind.") % {"label": label})


def clean_settings(entry: CatalogueEntry, submitted: dict[str, Any]) -> dict[str, Any]:
    """Every setting of ``entry`` checked; unknown keys are refused."""
    known = {setting.key for setting in entry.settings}
    unknown = sorted(set(submitted) - known)
    if unknown:
        raise SettingRefused(
            _("Unknown setting(s): %(keys)s.") % {"keys": ", ".join(unknown)[:100]}
        )
    return {
        setting.key: clean_setting(setting, submitted.get(setting.key))
        for setting in entry.settings
    }


def effective_settings(entry: CatalogueEntry, stored: dict[str, Any]) -> dict[str, Any]:
    """Stored values over catalogue defaults (stored ones re-checked)."""
    values: dict[str, Any] = {}
    for setting in entry.settings:
        value = stored.get(setting.key)
        if value is None or value == "":
            value = setting.default
        values[setting.key] = None if value is None else clean_setting(setting, value)
    return values


def generate_secret(length: int = 24) -> str:
    """A random password of letters and digits (safe in every format)."""
    return "".join(secrets_module.choice(SECRET_ALPHABET) for _ in range(length))


def ensure_secrets(entry: CatalogueEntry, stored: dict[str, str]) -> tuple[dict, bool]:
    """Stored secrets plus any the entry lists that were never generated.

    Returns the new mapping and whether one was generated (the operator is
    then shown the ones marked ``show`` once).
    """
    result = dict(stored)
    generated = False
    for secret in entry.secrets:
        if not result.get(secret.key):
            result[secret.key] = generate_secret(secret.length)
            generated = True
    return result, generated


# -- quoting -------------------------------------------------------------------


def _lua(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _xml(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def _php(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _ini(text: str) -> str:
    """A generic ini value: bare, so nothing that any ini reader treats
    specially (comments, quotes, escapes, sections, key separators)."""
    if text != text.strip() or any(char in text for char in ";#\"'\\=[]"):
        raise SettingRefused(
            _(
                "This value cannot be written to the service's config: it may "
                "not hold ; # quotes, backslashes, = or brackets, nor start or "
                "end with a space."
            )
        )
    return text


def _ngircd(text: str) -> str:
    """ngircd.conf: the value is the rest of the line after the first ``=``.

    ngircd treats ``#`` and ``;`` as comments only at the start of a line
    and strips blanks around the value, so anything printable fits except
    leading or trailing blanks (a channel ``#mesh``, a topic with ``;``).
    """
    if text != text.strip():
        raise SettingRefused(
            _(
                "This value cannot be written to the service's config: it may "
                "not start or end with a space."
            )
        )
    return text


def _qtini(text: str) -> str:
    """A Qt ``QSettings`` ini value (murmurd), complete with its quotes.

    Inside double quotes ``;``, ``#``, ``,`` and ``=`` are plain text; ``"``
    would end the value and ``\\`` starts an escape, so both are refused. A
    value starting with ``@`` is a typed value to Qt (``@ByteArray(...)``):
    Qt's own writer doubles the ``@``, and so do we.
    """
    if '"' in text or "\\" in text:
        raise SettingRefused(
            _(
                "This value cannot be written to the service's config: it may "
                "not hold double quotes or backslashes."
            )
        )
    if text.startswith("@"):
        text = "@" + text
    return f'"{text}"'


def _words(text: str) -> str:
    if not _WORDS.fullmatch(text):
        raise SettingRefused(
            _(
                "This value cannot be written to the service's config: only "
                "letters, digits and ._-/:@#+,= are allowed, no spaces."
            )
        )
    return text


class RenderedBool(str):
    """A boolean setting as its format's text that is still true or false.

    ``{{ settings.registration }}`` renders ``true``/``false`` (Lua, JSON
    ...) while ``{% if settings.registration %}`` tests the boolean itself,
    not the non-empty text "false" (which would always be true).
    """

    value: bool

    def __new__(cls, value: bool, text: str) -> RenderedBool:
        made = super().__new__(cls, text)
        made.value = bool(value)
        return made

    def __bool__(self) -> bool:
        return self.value


_BOOLEAN_TEXT = {
    "lua": ("true", "false"),
    "json": ("true", "false"),
    "yaml": ("true", "false"),
    "toml": ("true", "false"),
    "php": ("true", "false"),
    "xml": ("1", "0"),
    "ini": ("true", "false"),
    "qtini": ("true", "false"),
    "ngircd": ("yes", "no"),
    "words": ("on", "off"),
}


def quote(value: Any, format_name: str) -> str:
    """``value`` as text for one config format, or :class:`SettingRefused`.

    A boolean becomes a :class:`RenderedBool`: the format's own words for
    true and false, with the boolean's truth in templates.
    """
    if value is None:
        value = ""
    if isinstance(value, bool):
        if format_name not in _BOOLEAN_TEXT:
            raise SettingRefused(f"unknown format {format_name}")
        yes, no = _BOOLEAN_TEXT[format_name]
        return RenderedBool(value, yes if value else no)
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _CONTROL.search(text):
        raise SettingRefused(_("A value holds a line break or control character."))
    if format_name == "lua":
        return _lua(text)
    if format_name == "xml":
        return _xml(text)
    if format_name in ("json", "yaml", "toml"):
        return json.dumps(text, ensure_ascii=False)
    if format_name == "php":
        return _php(text)
    if format_name == "ini":
        return _ini(text) if text else ""
    if format_name == "ngircd":
        return _ngircd(text)
    if format_name == "qtini":
        return _qtini(text)
    if format_name == "words":
        return _words(text) if text else ""
    raise SettingRefused(f"unknown format {format_name}")
