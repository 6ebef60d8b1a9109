"""Process names for readers: a manager knows "Saisie des titres de séjour", not
``residence-permit-entry``. The name is the active version's (else the newest)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from robo.storage.database import Database
from robo.storage.models import ProcessRow, VersionRow


def process_names(db: Database, ids: Iterable[str] | None = None) -> dict[str, str]:
    """``{process id: name}`` for the processes (all, or ``ids``) the registry knows and
    whose definition names them; one it has never seen (a replicated metric) keeps its id."""
    query = (
        select(VersionRow.process_id, VersionRow.definition, ProcessRow.active_version_id,
               VersionRow.id)
        .outerjoin(ProcessRow, ProcessRow.id == VersionRow.process_id)
        .order_by(VersionRow.process_id, VersionRow.id)
    )  # fmt: skip
    if ids is not None:
        query = query.where(VersionRow.process_id.in_(sorted(set(ids))))
    names: dict[str, str] = {}
    active: set[str] = set()
    with db.session() as session:
        for process_id, definition, active_id, version_id in session.execute(query):
            name = str((definition or {}).get("name") or "").strip()
            if not name or process_id in active:
                continue
            names[process_id] = name  # newest so far; the active version wins outright
            if version_id == active_id:
                active.add(process_id)
    return names
