"""Numbers, money, percentages and dates in the current locale (Babel's CLDR data).

French writes "1 029,2 h" (a narrow no-break space groups thousands, a comma
marks decimals) and "décembre 2026"; English "1,029.2 h" and "December 2026".
Report keys stay machine-readable everywhere else (JSON, CSV, ``data-value``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from robo.i18n import _, current_locale


def _babel_locale() -> str:
    return {"fr": "fr_FR", "en": "en_GB"}.get(current_locale(), "en_GB")


def number(value: float, digits: int = 0) -> str:
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=_babel_locale())


def hours(value: float) -> str:
    """A programme's hours: whole hours from 100 up, one decimal below (a demo's 7.5 h
    reads the same in the headline, the table and above its bar)."""
    return number(value, 1 if abs(value) < 100 else 0)


def percent(rate: float | None, digits: int = 1) -> str:
    """0.953 → "95,3 %" / "95.3%"; None (nothing to divide by) → "–"."""
    if rate is None:
        return "–"
    from babel.numbers import format_percent

    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    pattern += "\u00a0%" if current_locale() == "fr" else "%"
    return format_percent(rate, format=pattern, locale=_babel_locale())


def euros(value: float) -> str:
    """Whole euros: "12 346 €" / "€12,346"."""
    from babel.numbers import format_currency

    return format_currency(
        round(value), "EUR", format="#,##0\u00a0¤" if current_locale() == "fr" else "¤#,##0",
        locale=_babel_locale(), currency_digits=False,
    )  # fmt: skip


def date(value: dt.date | dt.datetime | str | None) -> str:
    """A day in words: "3 décembre 2026" / "3 December 2026"; "–" for none."""
    if value is None or value == "":
        return "–"
    from babel.dates import format_date

    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        value = value.date()
    return format_date(value, "d MMMM y", locale=_babel_locale())


def moment(value: dt.datetime | str) -> str:
    """A date and time to the minute: "3 décembre 2026 à 07:00" / "3 December 2026, 07:00"."""
    from babel.dates import format_datetime

    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return format_datetime(value, "d MMMM y HH:mm", locale=_babel_locale())


def period_key(key: str, value: str | None) -> str:
    """A time group's key in words: 2026-12 → "décembre 2026", 2026-Q3 → "T3 2026",
    2026-W42 → "semaine 42 de 2026"; other keys unchanged."""
    if value is None:
        return _("(none)")
    from babel.dates import format_date

    if key == "month" and re.fullmatch(r"\d{4}-\d{2}", value):
        first = dt.date(int(value[:4]), int(value[5:]), 1)
        return format_date(first, "LLLL y", locale=_babel_locale())
    if key == "quarter" and (m := re.fullmatch(r"(\d{4})-Q([1-4])", value)):
        return _("Q%(quarter)s %(year)s") % {"quarter": m[2], "year": m[1]}
    if key == "week" and (m := re.fullmatch(r"(\d{4})-W(\d{2})", value)):
        return _("week %(week)s of %(year)s") % {"week": int(m[2]), "year": m[1]}
    return value


def month_short(key: str) -> str:
    """A chart axis's month: 2026-12 → "déc. 2026" / "Dec 2026"."""
    from babel.dates import format_date

    if not re.fullmatch(r"\d{4}-\d{2}", key):
        return key
    return format_date(dt.date(int(key[:4]), int(key[5:]), 1), "LLL y", locale=_babel_locale())


def period_label(label: str) -> str:
    """A period as typed (``--period``): 2026-10 → "octobre 2026", 2026-Q3 → "T3 2026",
    2026-W42 → "semaine 42 de 2026", 2026-10-05 → "5 octobre 2026", 2026 → "2026"."""
    text = label.strip()
    if re.fullmatch(r"\d{4}-\d{2}", text):
        return period_key("month", text)
    if re.fullmatch(r"\d{4}-Q[1-4]", text):
        return period_key("quarter", text)
    if re.fullmatch(r"\d{4}-W\d{2}", text):
        return period_key("week", text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date(text)
    return text


def key_text(key: str, value: object, name: Callable[[str], str] = str) -> str:
    """A report's grouping key as a reader wants it: a process by ``name``, a region by
    its name ("Île-de-France"), a month in words; other keys as they are."""
    if value is None or value == "":
        return _("(none)")
    if key in ("process_id",):
        return name(str(value))
    if key in ("region", "origin_region"):
        from robo.regions import REGIONS

        known = REGIONS.get(str(value))
        return known.name if known else str(value)
    return period_key(key, str(value))
