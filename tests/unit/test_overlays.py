"""Regional overlays: validated like definitions, applied at run time, kept across upgrades."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from robo.app import Robo
from robo.errors import OverlayError
from robo.loader import load_process
from robo.replication.bundles import export_bundle, import_bundle
from robo.replication.catalogue import upgrade
from robo.replication.overlays import apply_overlays, show_overlay
from robo.runner.run import ProcessRun, RunRequest
from robo.storage.models import OverlayRow, VersionRow
from tests.conftest import definition

Installation = Callable[..., Robo]
SCHEDULE = {"triggers": [{"cron": "0 7 * * mon-fri"}], "timezone": "Europe/Paris"}
OVERLAY = """process: sample-process
parameters:
  portal_url: http://localhost:8080
timezone: America/Cayenne
calendar: FR-973
baseline:
  manual_minutes_per_item: 20
  residual_minutes_per_item: 4
  measured_by: Cellule RPA Guyane
  measured_on: 2026-03-02
secrets:
  portal_password: guyane_portal_password
schedule:
  triggers:
    - cron: "30 6 * * mon-fri"
"""


def spec(version: str = "1.0.0", **overrides: Any) -> dict[str, Any]:
    return definition(version=version, schedule=SCHEDULE, **overrides)


@pytest.fixture
def origin(installation: Installation, make_process: Callable[..., Path]) -> Robo:
    robo = installation("occitanie")
    robo.keys.generate()
    robo.registry.deploy(load_process(make_process(spec())))
    return robo


@pytest.fixture
def guyane(installation: Installation, origin: Robo, tmp_path: Path) -> Robo:
    robo = installation("guyane")
    robo.keys.trust("occitanie", origin.keys.listing().local_key or "")
    export_bundle(
        origin.registry,
        origin.keys,
        "sample-process",
        None,
        tmp_path / "catalogue" / "s-1.0.0.robo.zip",
        with_items=True,
    )
    import_bundle(robo.db, robo.registry, robo.keys, tmp_path / "catalogue" / "s-1.0.0.robo.zip")
    return robo


def overlay_file(tmp_path: Path, text: str = OVERLAY, name: str = "sample-process") -> Path:
    folder = tmp_path / "overlays"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def stored_overlays(robo: Robo) -> int:
    with robo.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(OverlayRow)) or 0)


def refused(robo: Robo, tmp_path: Path, text: str) -> str:
    with pytest.raises(OverlayError) as info:
        apply_overlays(robo.db, robo.registry, [overlay_file(tmp_path, text)])
    assert stored_overlays(robo) == 0
    return info.value.message


# --- applying ---------------------------------------------------------------------------


def test_the_active_version_runs_with_the_regions_values(guyane: Robo, tmp_path: Path) -> None:
    results = apply_overlays(guyane.db, guyane.registry, [overlay_file(tmp_path)])
    assert [(r.process_id, r.outcome) for r in results] == [("sample-process", "created")]

    version = guyane.registry.active("sample-process")
    d = version.definition
    assert d.parameters["portal_url"] == "http://localhost:8080"
    assert (d.baseline.manual_minutes_per_item, d.baseline.measured_by) == (
        20,
        "Cellule RPA Guyane",
    )
    assert d.schedule is not None
    assert [t.cron for t in d.schedule.triggers] == ["30 6 * * mon-fri"]
    assert d.schedule.timezone == "America/Cayenne"
    assert version.schedule is not None
    assert (version.schedule.timezone, version.schedule.calendar) == ("America/Cayenne", "FR-973")
    assert version.secret_names == {"portal_password": "guyane_portal_password"}


def test_the_origin_definition_is_left_as_imported(guyane: Robo, tmp_path: Path) -> None:
    apply_overlays(guyane.db, guyane.registry, [overlay_file(tmp_path)])

    raw = guyane.registry.active("sample-process", with_overlay=False)
    assert raw.definition.parameters["portal_url"] == "http://127.0.0.1:1"
    assert raw.definition.baseline.manual_minutes_per_item == 10
    assert "localhost" not in guyane.registry.get("sample-process", "1.0.0").definition_text


def test_applying_the_same_overlay_again_is_unchanged(guyane: Robo, tmp_path: Path) -> None:
    apply_overlays(guyane.db, guyane.registry, [overlay_file(tmp_path)])

    again = apply_overlays(guyane.db, guyane.registry, [overlay_file(tmp_path)])
    assert [r.outcome for r in again] == ["unchanged"]
    assert show_overlay(guyane.db, "sample-process").text == OVERLAY


def test_the_run_reads_the_secret_under_its_local_name(guyane: Robo, tmp_path: Path) -> None:
    apply_overlays(guyane.db, guyane.registry, [overlay_file(tmp_path)])
    guyane.secrets.set("guyane_portal_password", "mot-de-passe-local")

    run = ProcessRun(
        guyane.run_environment(), guyane.registry.active("sample-process"), RunRequest("x")
    )
    assert run._secret("portal_password") == "mot-de-passe-local"
    assert run.params["portal_url"] == "http://localhost:8080"


# --- validation -----------------------------------------------------------------------------


def test_an_undeclared_parameter_is_located_by_file_line_and_field(
    guyane: Robo, tmp_path: Path
) -> None:
    text = "process: sample-process\nparameters:\n  portal_url: http://x\n  portal_uri: http://y\n"

    message = refused(guyane, tmp_path, text)
    assert "sample-process.yaml:4: parameters.portal_uri" in message
    assert "declares no parameter 'portal_uri'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("process: sample-process\nbaseline_minutes: 3\n", ":2: baseline_minutes: unknown field"),
        ("process: sample-process\ntimezone: Mars/Olympus\n", "unknown time zone"),
        ("process: sample-process\ncalendar: FR-999\n", "unknown calendar"),
        ("process: sample-process\nsecrets:\n  api_key: local\n", "uses no secret 'api_key'"),
        (
            "process: sample-process\nbaseline:\n  manual_minutes_per_item: 5\n",
            "baseline.measured_by: required field is missing",
        ),
        ("process: sample-process\nschedule:\n  missed: sometimes\n", "schedule.missed"),
        ("process: !!python/object/apply:os.system [ls]\n", "tags"),
        ("a: &a [1, 2]\nb: *a\nprocess: sample-process\n", "anchors and aliases"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_invalid_overlays_are_refused_and_nothing_is_stored(
    guyane: Robo, tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in refused(guyane, tmp_path, text)


def test_an_overlay_for_a_process_not_here_says_to_import_it(
    installation: Installation, tmp_path: Path
) -> None:
    robo = installation("guyane")

    assert "robo import FILE" in refused(robo, tmp_path, "process: sample-process\n")


def test_the_file_name_must_match_the_process(guyane: Robo, tmp_path: Path) -> None:
    folder = overlay_file(tmp_path, name="other")

    with pytest.raises(OverlayError, match=r"name it sample-process\.yaml"):
        apply_overlays(guyane.db, guyane.registry, [folder])
    assert stored_overlays(guyane) == 0


def test_a_full_schedule_is_needed_when_the_process_has_none(
    installation: Installation, make_process: Callable[..., Path], tmp_path: Path
) -> None:
    robo = installation("guyane")
    robo.registry.deploy(load_process(make_process(definition())))

    message = refused(robo, tmp_path, "process: sample-process\nschedule:\n  grace_minutes: 5\n")
    assert "schedule.triggers" in message and "give a full block" in message


# --- upgrades -----------------------------------------------------------------------------


def release(origin: Robo, make_process: Callable[..., Path], tmp_path: Path, **spec_: Any) -> Path:
    loaded = load_process(make_process(spec("1.1.0", **spec_)))
    origin.registry.deploy(loaded)
    path = tmp_path / "catalogue" / "s-1.1.0.robo.zip"
    export_bundle(origin.registry, origin.keys, "sample-process", "1.1.0", path)
    return path.parent


def test_an_upgrade_keeps_the_overlay_and_shows_what_changed(
    origin: Robo, guyane: Robo, make_process: Callable[..., Path], tmp_path: Path
) -> None:
    apply_overlays(guyane.db, guyane.registry, [overlay_file(tmp_path)])
    catalogue = release(origin, make_process, tmp_path, description="Now with receipts.")

    result = upgrade(guyane.db, guyane.registry, guyane.keys, "sample-process", catalogue)

    assert (result.outcome, result.from_version, result.to_version) == (
        "upgraded",
        "1.0.0",
        "1.1.0",
    )
    assert result.overlay_kept
    assert "+description: Now with receipts." in result.diff
    version = guyane.registry.active("sample-process")
    assert (version.definition.version, version.origin_version) == ("1.1.0", "1.1.0")
    assert version.definition.parameters["portal_url"] == "http://localhost:8080"


def test_an_upgrade_the_overlay_no_longer_fits_is_refused_and_stores_nothing(
    origin: Robo, guyane: Robo, make_process: Callable[..., Path], tmp_path: Path
) -> None:
    apply_overlays(guyane.db, guyane.registry, [overlay_file(tmp_path)])
    catalogue = release(
        origin, make_process, tmp_path, parameters={"base_url": "http://x"},
        bot={"steps": [{"goto": "{{ params.base_url }}/"}]},
    )  # fmt: skip
    with guyane.db.session() as session:
        versions = session.scalar(select(func.count()).select_from(VersionRow))

    with pytest.raises(OverlayError) as info:
        upgrade(guyane.db, guyane.registry, guyane.keys, "sample-process", catalogue)

    message = info.value.message
    assert "overlays/sample-process.yaml" in message
    assert "parameters.portal_url" in message
    assert "sample-process 1.1.0 declares no parameter 'portal_url'" in message
    assert "nothing was stored" in message
    with guyane.db.session() as session:
        assert session.scalar(select(func.count()).select_from(VersionRow)) == versions
    assert guyane.registry.active("sample-process").definition.version == "1.0.0"


def test_an_upgrade_can_bring_the_overlay_rewritten_for_the_new_version(
    origin: Robo, guyane: Robo, make_process: Callable[..., Path], tmp_path: Path
) -> None:
    apply_overlays(guyane.db, guyane.registry, [overlay_file(tmp_path)])
    catalogue = release(
        origin, make_process, tmp_path, parameters={"base_url": "http://x"},
        bot={"steps": [{"goto": "{{ params.base_url }}/"}]},
    )  # fmt: skip
    fixed = tmp_path / "fixed" / "sample-process.yaml"
    fixed.parent.mkdir()
    fixed.write_text(OVERLAY.replace("portal_url:", "base_url:"), encoding="utf-8")

    result = upgrade(
        guyane.db, guyane.registry, guyane.keys, "sample-process", catalogue, overlay=fixed
    )

    assert (result.to_version, result.overlay_kept) == ("1.1.0", True)
    version = guyane.registry.active("sample-process")
    assert version.definition.parameters["base_url"] == "http://localhost:8080"
    assert show_overlay(guyane.db, "sample-process").source == str(fixed)
