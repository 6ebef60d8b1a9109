"""Keeping the catalogues in step with the code: extract the texts, merge them into each
language's ``.po``, and list what is still untranslated (the test suite fails on any).

``python scripts/update_translations.py`` runs :func:`update` for every language.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from robo.i18n import CATALOGUES, DOMAIN, LOCALES, SOURCE

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

PACKAGE = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
METHODS = [
    ("reports/templates/**.html", "jinja2"),
    ("demo/**", "ignore"),  # the sample portal stands for an agency's application: not robo's voice
    ("**.py", "python"),
]
JINJA = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def extract() -> Catalog:
    """Every translatable text in robo's code and report templates, as a Babel catalogue."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalogue = Catalog(project="robo", domain=DOMAIN, charset="utf-8")
    found = extract_from_dir(str(PACKAGE), METHODS, {"reports/templates/**.html": JINJA}, KEYWORDS)
    for filename, line, message, comments, context in found:
        catalogue.add(message, None, [(f"robo/{filename}", line)],
                      auto_comments=comments, context=context)  # fmt: skip
    return catalogue


def _path(language: str) -> Path:
    return CATALOGUES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def update(language: str) -> Path:
    """Merge the texts found in the code into ``language``'s catalogue, keeping its
    translations; texts gone from the code are dropped (obsolete)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    path = _path(language)
    if path.exists():
        with path.open("rb") as po:
            catalogue = read_po(po, locale=language, domain=DOMAIN)
    else:
        catalogue = Catalog(locale=language, domain=DOMAIN, project="robo")
    catalogue.update(extract(), no_fuzzy_matching=True)
    catalogue.obsolete.clear()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as po:
        write_po(po, catalogue, width=100, omit_header=False, sort_output=False)
    return path


def problems(language: str) -> list[str]:
    """What a reader of ``language`` would see in English or garbled: texts with no
    translation, fuzzy ones, and placeholders that differ from the English."""
    from babel.messages.pofile import read_po

    with _path(language).open("rb") as po:
        catalogue = read_po(po, locale=language, domain=DOMAIN)
    found: list[str] = []
    for message in extract():
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        translated = catalogue.get(message.id, context=message.context)
        where = ", ".join(f"{f}:{n}" for f, n in message.locations)
        strings = () if translated is None else (
            translated.string if isinstance(translated.string, tuple | list) else (translated.string,)
        )  # fmt: skip
        if translated is None or not all(strings):
            found.append(f"untranslated ({where}): {key!r}")
        elif translated.fuzzy:
            found.append(f"fuzzy ({where}): {key!r}")
    for message, errors in catalogue.check():
        for error in errors:
            found.append(f"{error} ({message.id!r})")
    return found


def languages() -> list[str]:
    return [code for code in LOCALES if code != SOURCE]
