"""Managers read robo in their language: complete catalogues, the locale's number and
date formats, French by default for French regions, and --locale / ROBO_LOCALE."""

from __future__ import annotations

import datetime as dt

import pytest

from robo.i18n import _, current_locale, ngettext, parse_locale, use_locale
from robo.i18n import formats as f
from robo.i18n.catalogue import languages, problems
from robo.settings import Settings


@pytest.mark.parametrize("language", languages())
def test_every_text_managers_read_is_translated_with_the_same_placeholders(
    language: str,
) -> None:
    assert problems(language) == []


def test_french_writes_numbers_months_and_money_the_french_way() -> None:
    with use_locale("fr"):
        assert f.number(1029.2, 1) == "1\u202f029,2"
        assert f.hours(7.5) == "7,5" and f.hours(1029.2) == "1\u202f029"
        assert f.percent(0.953) == "95,3\u00a0%"
        assert f.euros(12345.6) == "12\u202f346\u00a0€"
        assert f.period_key("month", "2026-12") == "décembre 2026"
        assert f.period_key("quarter", "2026-Q3") == "T3 2026"
        assert f.period_key("week", "2026-W07") == "semaine 7 de 2026"
        assert f.date(dt.date(2026, 12, 3)) == "3 décembre 2026"
        assert f.key_text("region", "ile-de-france") == "Île-de-France"


def test_english_stays_available_with_english_separators() -> None:
    with use_locale("en"):
        assert f.number(1029.2, 1) == "1,029.2"
        assert f.percent(0.953) == "95.3%"
        assert f.euros(12345.6) == "€12,346"
        assert f.period_key("month", "2026-12") == "December 2026"
        assert _("hours saved") == "hours saved"


def test_the_headline_agrees_in_number_in_french() -> None:
    with use_locale("fr"):
        assert ngettext("%(n)s region", "%(n)s regions", 1) % {"n": 1} == "1 région"
        assert ngettext("%(n)s region", "%(n)s regions", 3) % {"n": 3} == "3 régions"
        assert _("hours saved") == "heures économisées"


def test_a_locale_block_restores_the_one_around_it() -> None:
    before = current_locale()
    with use_locale("fr_FR.UTF-8"):
        assert current_locale() == "fr"
        with use_locale("en-GB"):
            assert current_locale() == "en"
        assert current_locale() == "fr"
    assert current_locale() == before


def test_a_language_robo_cannot_speak_is_refused_with_those_it_can() -> None:
    with pytest.raises(ValueError, match=r"no translation for locale 'de'.*fr \(français\), en"):
        parse_locale("de")


def test_french_regions_default_to_french_and_robo_locale_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROBO_LOCALE", raising=False)
    assert Settings(region="guyane").report_locale == "fr"
    assert Settings(region="occitanie", locale="en").report_locale == "en"
    monkeypatch.setenv("ROBO_LOCALE", "EN_us")
    assert Settings().report_locale == "en"
    with pytest.raises(ValueError, match="no translation for locale 'xx'"):
        Settings(locale="xx")
