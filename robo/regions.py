"""French regions and their defaults: time zone and public-holiday calendar.

A calendar is ``FR`` (national holidays) or ``FR-<subdivision>`` as the
``holidays`` package names them: ``FR-973`` (Guyane, adds 10 June),
``FR-57`` / ``FR-6AE`` (Moselle / Alsace: Good Friday and 26 December), ...
An installation may override either with ROBO_TIMEZONE / ROBO_CALENDAR.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Region:
    slug: str
    name: str
    timezone: str
    calendar: str = "FR"
    locale: str = "fr"  # reports and the demo's summary; every region robo knows is French


REGIONS: dict[str, Region] = {
    r.slug: r
    for r in [
        Region("auvergne-rhone-alpes", "Auvergne-Rhône-Alpes", "Europe/Paris"),
        Region("bourgogne-franche-comte", "Bourgogne-Franche-Comté", "Europe/Paris"),
        Region("bretagne", "Bretagne", "Europe/Paris"),
        Region("centre-val-de-loire", "Centre-Val de Loire", "Europe/Paris"),
        Region("corse", "Corse", "Europe/Paris"),
        Region("grand-est", "Grand Est", "Europe/Paris"),
        Region("hauts-de-france", "Hauts-de-France", "Europe/Paris"),
        Region("ile-de-france", "Île-de-France", "Europe/Paris"),
        Region("normandie", "Normandie", "Europe/Paris"),
        Region("nouvelle-aquitaine", "Nouvelle-Aquitaine", "Europe/Paris"),
        Region("occitanie", "Occitanie", "Europe/Paris"),
        Region("pays-de-la-loire", "Pays de la Loire", "Europe/Paris"),
        Region("provence-alpes-cote-d-azur", "Provence-Alpes-Côte d'Azur", "Europe/Paris"),
        Region("guadeloupe", "Guadeloupe", "America/Guadeloupe", "FR-971"),
        Region("martinique", "Martinique", "America/Martinique", "FR-972"),
        Region("guyane", "Guyane", "America/Cayenne", "FR-973"),
        Region("la-reunion", "La Réunion", "Indian/Reunion", "FR-974"),
        Region("mayotte", "Mayotte", "Indian/Mayotte", "FR-976"),
        # Not a region, but a calendar: Moselle, Bas-Rhin and Haut-Rhin keep two extra days.
        Region("alsace-moselle", "Alsace-Moselle (Grand Est)", "Europe/Paris", "FR-57"),
        Region("national", "National level", "Europe/Paris"),
    ]
}


def region(slug: str) -> Region:
    """The region's defaults; an unknown slug gets mainland defaults (a custom installation)."""
    return REGIONS.get(slug, Region(slug, slug, "Europe/Paris"))


def check_calendar(calendar: str) -> str:
    from holidays.countries.france import France

    country, _, subdivision = calendar.partition("-")
    if country != "FR":
        raise ValueError(f"calendar '{calendar}' is not French; use FR or FR-<subdivision>")
    if subdivision and subdivision not in France.subdivisions:
        known = ", ".join(f"FR-{s}" for s in France.subdivisions if s[:1].isdigit())
        raise ValueError(f"unknown calendar '{calendar}'; known: FR, {known}")
    return calendar


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except Exception:
        raise ValueError(
            f"unknown time zone '{name}', e.g. 'Europe/Paris' or 'America/Cayenne'"
        ) from None
    return name


@lru_cache(maxsize=64)
def _holidays(calendar: str, year: int) -> dict[dt.date, str]:
    from holidays.countries.france import France

    _, _, subdivision = calendar.partition("-")
    days = France(years=year, subdiv=subdivision or None, language="fr")  # type: ignore[no-untyped-call]
    return dict(days.items())


def holiday_name(calendar: str, day: dt.date) -> str | None:
    """The public holiday on ``day`` in this calendar, or None."""
    return _holidays(calendar, day.year).get(day)
