"""The catalogues in locale/ are complete, not fuzzy, and compile.

The test extracts every translatable string from a copy of the source tree
(so the checkout is never modified), merges it with the committed catalogue
exactly as ``makemessages`` would, and asks ``msgfmt`` for statistics: any
message that is new (untranslated) or changed (fuzzy) fails the test, and so
does a catalogue whose placeholders do not match (``msgfmt --check``).
"""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(settings.BASE_DIR)
LANGUAGES = [code for code, _name in settings.LANGUAGES if code != "en"]
SOURCE_DIRS = ["portal", "meshnet", "services", "gateway", "captive"]
# How many plural forms each language has (CLDR / GNU gettext manual). A
# language added to settings.LANGUAGES needs its line here.
PLURAL_FORMS = {"es": 2, "fr": 2, "ar": 6}
STATISTICS = re.compile(
    r"(?:(?P<translated>\d+) translated messages?)?"
    r"(?:, )?(?:(?P<fuzzy>\d+) fuzzy translations?)?"
    r"(?:, )?(?:(?P<untranslated>\d+) untranslated messages?)?"
)


@pytest.fixture(scope="module")
def regenerated_locale(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copy the sources and committed catalogues, then run makemessages there."""
    work = tmp_path_factory.mktemp("i18n")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo", "migrations")
    for name in SOURCE_DIRS:
        shutil.copytree(REPO / name, work / name, ignore=ignore)
    shutil.copytree(REPO / "locale", work / "locale", ignore=ignore)
    shutil.copy(REPO / "manage.py", work / "manage.py")
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.test",
        BYZANTIUM_STATE_DIR=str(work / "state"),
        PYTHONPATH=str(work),
    )
    for domain in ("django", "djangojs"):
        args = [sys.executable, "manage.py", "makemessages", "--no-location"]
        args += ["--domain", domain]
        args += [f"--locale={code}" for code in LANGUAGES]
        subprocess.run(args, cwd=work, env=env, check=True, capture_output=True)
    return work / "locale"


def _statistics(po_file: Path) -> dict[str, int]:
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", os.devnull, str(po_file)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{po_file} does not compile: {result.stderr}"
    match = STATISTICS.match(result.stderr.strip())
    assert match, result.stderr
    return {key: int(value or 0) for key, value in match.groupdict().items()}


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_catalogue_has_every_message_translated(
    regenerated_locale: Path, language: str
) -> None:
    folder = regenerated_locale / language / "LC_MESSAGES"
    assert (folder / "django.po").exists(), f"no catalogue for {language}"
    # djangojs.po exists only once a script carries a translatable string.
    for po_file in sorted(folder.glob("*.po")):
        stats = _statistics(po_file)
        assert stats["translated"] > 0, po_file.name
        assert stats["untranslated"] == 0, f"{language} {po_file.name}: {stats}"
        assert stats["fuzzy"] == 0, f"{language} {po_file.name}: {stats}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_catalogue_compiles(language: str) -> None:
    po_files = list((REPO / "locale" / language / "LC_MESSAGES").glob("*.po"))
    assert po_files, f"no catalogue for {language}"
    for po_file in po_files:
        _statistics(po_file)


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_header_names_language_and_every_plural_form(
    language: str, tmp_path: Path
) -> None:
    """A wrong Plural-Forms header silently shows the wrong word for a count."""
    assert language in PLURAL_FORMS, f"add {language}'s plural count to PLURAL_FORMS"
    compiled = tmp_path / "django.mo"
    po_file = REPO / "locale" / language / "LC_MESSAGES" / "django.po"
    subprocess.run(["msgfmt", "--check", "-o", str(compiled), str(po_file)], check=True)
    with compiled.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    info = catalogue.info()
    assert info["language"] == language
    assert "charset=UTF-8" in info["content-type"]
    nplurals = int(re.search(r"nplurals=(\d+)", info["plural-forms"]).group(1))
    assert nplurals == PLURAL_FORMS[language]
    # Every form the header declares is chosen for some count, so none of the
    # filled-in forms is dead text and no count falls outside them.
    chosen = {catalogue.plural(n) for n in range(1000)}  # type: ignore[attr-defined]
    assert chosen == set(range(nplurals))
