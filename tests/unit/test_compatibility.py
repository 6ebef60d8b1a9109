"""Files made by robo before the architecture change still read byte for byte.

``tests/fixtures/before_issue10`` holds a database, signed bundles and a signed
metrics file written by the old code, and what it resolved from them. Hashes
and signatures are computed over canonical JSON; if those bytes ever change,
these tests fail before any region's bundles stop verifying.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from robo.app import Robo
from robo.loader import content_hash
from robo.overlay import Overlay
from robo.replication.bundles import import_bundle, read_bundle
from robo.replication.metrics import import_metrics
from robo.settings import Settings
from robo.storage.models import OverlayRow, VersionRow

FIXTURES = Path(__file__).parent.parent / "fixtures" / "before_issue10"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
BUNDLES = ("residence-permit-entry", "invoice-commitment-check")


def old_fields(new: Any, old: Any) -> Any:
    """``new`` cut down to the fields the old code had: fields added since are left out."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {key: old_fields(new[key], old[key]) for key in old if key in new}
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [old_fields(n, o) for n, o in zip(new, old, strict=True)]
    return new


@pytest.fixture
def old_installation(tmp_path: Path) -> Any:
    """The old database, copied so the fixture itself is never written."""
    home = tmp_path / "old"
    home.mkdir()
    shutil.copy(FIXTURES / "robo.db", home / "robo.db")
    robo = Robo(Settings(home=home, region="occitanie"), env={})
    yield robo
    robo.close()


def test_stored_version_hashes_are_recomputed_identically(old_installation: Robo) -> None:
    from robo.definition import ProcessDefinition

    with old_installation.db.session() as session:
        rows = session.query(VersionRow).all()
        recomputed = {
            row.process_id: content_hash(
                ProcessDefinition.model_validate(row.definition),
                {f.path: f.content for f in row.files},
            )
            for row in rows
        }
        stored = {row.process_id: row.content_hash for row in rows}
    assert recomputed == stored == EXPECTED["versions"]


def test_the_stored_overlay_hash_is_recomputed_identically(old_installation: Robo) -> None:
    with old_installation.db.session() as session:
        (row,) = session.query(OverlayRow).all()
        assert Overlay.model_validate(row.data).content_hash == row.content_hash
    assert row.content_hash == EXPECTED["active"][row.process_id]["overlay_hash"]


def test_every_version_resolves_as_the_old_code_resolved_it(old_installation: Robo) -> None:
    for pid, expected in EXPECTED["active"].items():
        version = old_installation.registry.active(pid)
        assert version.content_hash == EXPECTED["versions"][pid]
        assert (
            old_fields(version.definition.model_dump(mode="json"), expected["definition"])
            == (expected["definition"])
        )
        assert version.secret_names == expected["secret_names"]


def test_the_overlaid_schedule_resolves_to_the_same_zone_calendar_and_block(
    old_installation: Robo,
) -> None:
    old = EXPECTED["effective_schedule"]
    for schedule in (
        old_installation.registry.firing_schedule("residence-permit-entry"),
        next(
            s.schedule
            for s in old_installation.registry.schedules()
            if s.process_id == "residence-permit-entry"
        ),
    ):
        assert schedule is not None
        assert (schedule.timezone, schedule.calendar) == (old["timezone"], old["calendar"])
        assert (
            old_fields(schedule.schedule.model_dump(mode="json"), old["schedule"])
            == (old["schedule"])
        )


@pytest.mark.parametrize("pid", BUNDLES)
def test_an_old_bundle_verifies_and_imports_with_the_same_content_hash(
    installation: Callable[..., Robo], pid: str
) -> None:
    guyane = installation("guyane")
    guyane.keys.trust("occitanie", EXPECTED["public_key"])
    path = FIXTURES / f"{pid}.robo.zip"

    assert read_bundle(guyane.keys, path).manifest.definition_hash == EXPECTED["versions"][pid]
    result = import_bundle(guyane.db, guyane.registry, guyane.keys, path)

    assert (result.process_id, result.outcome) == (pid, "created")
    assert guyane.registry.active(pid).content_hash == EXPECTED["versions"][pid]


def test_an_old_metrics_file_verifies_and_imports_once(installation: Callable[..., Robo]) -> None:
    national = installation("national")
    national.keys.trust("occitanie", EXPECTED["public_key"])
    path = FIXTURES / "occitanie-metrics.json"

    (first,) = import_metrics(national.ledger, national.keys, [path])
    (again,) = import_metrics(national.ledger, national.keys, [path])

    assert (first.outcome, first.runs_added, first.items_added) == ("imported", 5, 59)
    assert (again.outcome, again.runs_added, again.items_added) == ("already-imported", 0, 0)
