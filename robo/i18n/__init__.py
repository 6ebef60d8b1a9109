"""Translations of what managers read: reports (terminal, CSV, HTML, PDF) and the demo's summary.

Texts are written in English in the code and looked up in gettext catalogues,
``robo/i18n/locale/<language>/LC_MESSAGES/robo.po``, kept up to date with Babel
(``python scripts/update_translations.py``). A catalogue is compiled in memory
the first time it is used, so the ``.po`` in git is the only copy.

The locale belongs to the work being done, not to the process: the CLI sets it
once per command with :func:`use_locale` (a context variable, so threads and
tests do not leak it into each other). Operators' texts (``--help``, errors,
logs) stay in English.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

LOCALES = {"fr": "français", "en": "English"}
"""The languages with a complete catalogue (English is the source language)."""
SOURCE = "en"
DOMAIN = "robo"
CATALOGUES = Path(__file__).parent / "locale"

_current: ContextVar[str] = ContextVar("robo_locale", default=SOURCE)


def parse_locale(value: str) -> str:
    """``fr``, ``fr_FR``, ``fr-FR``, ``FR``, ``fr_FR.UTF-8`` → ``fr``; refuse what robo cannot speak."""
    language = value.strip().replace("-", "_").split(".")[0].split("_")[0].lower()
    if language not in LOCALES:
        known = ", ".join(f"{code} ({name})" for code, name in LOCALES.items())
        raise ValueError(f"no translation for locale {value!r}; available: {known}")
    return language


def current_locale() -> str:
    return _current.get()


@contextmanager
def use_locale(value: str) -> Iterator[str]:
    """Speak ``value`` until the block ends (nested blocks restore the outer locale)."""
    token = _current.set(parse_locale(value))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


@cache
def translations(language: str) -> _gettext.NullTranslations:
    if language == SOURCE:
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = CATALOGUES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalogue = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue, use_fuzzy=False)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def _(message: str) -> str:
    """``message`` in the current locale (itself when untranslated)."""
    return translations(current_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` as translated for ``context`` (a short terminal column, say)."""
    return translations(current_locale()).pgettext(context, message)


def N_(message: str) -> str:
    """Mark a text for extraction where it is defined; translate it with ``_`` where shown."""
    return message
