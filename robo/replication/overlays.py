"""`robo overlay`: storing, showing and removing a region's overlays.

What an overlay is and how it is checked lives in ``robo.overlay``; the
registry applies the stored one. Every import or upgrade checks the stored
overlay against the new version (``stored`` + ``robo.overlay.fit_problems``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from robo.clock import utcnow
from robo.errors import OverlayError, Problem, ProcessNotFound
from robo.overlay import LoadedOverlay, fit_problems, load_overlay, parse_overlay
from robo.storage.models import OverlayRow

if TYPE_CHECKING:
    from robo.registry import Registry
    from robo.storage.database import Database


@dataclass(frozen=True)
class OverlayResult:
    process_id: str
    source: str
    outcome: str  # created, updated, unchanged


@dataclass(frozen=True)
class OverlayView:
    process_id: str
    source: str
    updated_at: str
    content_hash: str
    overlay: dict[str, Any]
    text: str


def stored(db: Database, process_id: str) -> LoadedOverlay | None:
    """The overlay stored for a process, re-parsed so problems point into its file."""
    with db.session() as session:
        row = session.get(OverlayRow, process_id)
        if row is None:
            return None
        text, source = row.text, row.source_path or f"overlay of {process_id}"
    return parse_overlay(text, source)


# --- service functions (called by the CLI) -------------------------------------------------


def overlay_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            found.append(path)
    return found


def apply_overlays(db: Database, registry: Registry, paths: list[Path]) -> list[OverlayResult]:
    """Validate every overlay file against its process; store them all, or none."""
    files = overlay_files(paths)
    if not files:
        raise OverlayError([], f"no overlay files (*.yaml) in {', '.join(map(str, paths))}")
    loaded: list[LoadedOverlay] = []
    problems: list[Problem] = []
    for path in files:
        try:
            item = load_overlay(path)
        except OverlayError as exc:
            problems += exc.problems
            continue
        if path.stem != item.overlay.process:
            problems.append(
                Problem(
                    item.source,
                    item.positions.line_of(("process",)),
                    "process",
                    f"the file is named {path.name} but adapts '{item.overlay.process}'",
                    f"name it {item.overlay.process}.yaml",
                )
            )
        if any(other.overlay.process == item.overlay.process for other in loaded):
            problems.append(Problem(item.source, 1, "process", "a second overlay for this process"))
        try:
            definition = registry.active(item.overlay.process, with_overlay=False).definition
        except ProcessNotFound as exc:  # adopt the process before adapting it
            problems.append(
                Problem(
                    item.source,
                    item.positions.line_of(("process",)),
                    "process",
                    str(exc).split(";")[0],
                    "import its bundle first: robo import FILE",
                )
            )
            continue
        problems += fit_problems(item, definition)
        loaded.append(item)
    if problems:
        raise OverlayError(problems)
    with db.session() as session:
        return [OverlayResult(i.overlay.process, i.source, _store(session, i)) for i in loaded]


def store(db: Database, item: LoadedOverlay) -> OverlayResult:
    """Store one overlay already checked against its process."""
    with db.session() as session:
        return OverlayResult(item.overlay.process, item.source, _store(session, item))


def _store(session: Any, item: LoadedOverlay) -> str:
    pid, digest = item.overlay.process, item.overlay.content_hash
    row = session.get(OverlayRow, pid)
    if row is not None and row.content_hash == digest and row.source_path == item.source:
        return "unchanged"
    outcome = "created" if row is None else "updated"
    if row is None:
        row = OverlayRow(process_id=pid)
        session.add(row)
    row.data = item.overlay.model_dump(mode="json")
    row.text, row.content_hash = item.text, digest
    row.source_path, row.updated_at = item.source, utcnow()
    return outcome


def show_overlay(db: Database, process_id: str) -> OverlayView:
    with db.session() as session:
        row = session.get(OverlayRow, process_id)
        if row is None:
            raise OverlayError(
                [], f"no overlay for '{process_id}'; `robo overlay apply overlays/` stores them"
            )
        return OverlayView(
            process_id, row.source_path, row.updated_at.isoformat(timespec="seconds"),
            row.content_hash, row.data, row.text,
        )  # fmt: skip


def list_overlays(db: Database) -> list[OverlayView]:
    with db.session() as session:
        ids = list(session.scalars(select(OverlayRow.process_id).order_by(OverlayRow.process_id)))
    return [show_overlay(db, pid) for pid in ids]


def remove_overlay(db: Database, process_id: str) -> bool:
    with db.session() as session:
        row = session.get(OverlayRow, process_id)
        if row is not None:
            session.delete(row)
        return row is not None
