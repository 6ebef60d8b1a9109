"""Metrics files: signed ledger figures, no personal data, merged idempotently."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from robo.app import Robo
from robo.canonical import signed_bytes
from robo.errors import MetricsError, RoboError, SignatureError
from robo.ledger import ItemOutcome
from robo.loader import load_process
from robo.replication import signing
from robo.replication.metrics import export_metrics, import_metrics, item_key
from robo.storage.models import ItemRow, MetricImportRow, RunRow
from tests.conftest import definition

Installation = Callable[..., Robo]
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def record_run(
    robo: Robo, ok: int, business: int, *, finish: bool = True, per_run: float = 0
) -> int:
    version = robo.registry.active("sample-process")
    baseline = version.definition.baseline.model_copy(update={"manual_minutes_per_run": per_run})
    run_id = robo.ledger.start_run(
        process_id="sample-process",
        version_id=version.version_id,
        version="1.0.0",
        baseline=baseline,
        region=robo.settings.region,
        parameters={"portal_url": "http://intranet.local"},
    )
    statuses = ["success"] * ok + ["business_exception"] * business
    for position, status in enumerate(statuses, start=1):
        robo.ledger.record_item(
            run_id,
            ItemOutcome(
                position=position,
                reference=f"2024-75-{position:05d}",
                status=status,  # type: ignore[arg-type]
                attempts=1,
                started_at=T0,
                finished_at=T0 + dt.timedelta(seconds=3),
                error="Dossier déjà enregistré pour DUPONT Jeanne" if status != "success" else None,
                data={"last_name": "DUPONT", "first_name": "Jeanne"},
                output={"receipt": "RCP-123"},
            ),
        )
    if finish:
        robo.ledger.finish_run(run_id, "completed")
    return run_id


@pytest.fixture
def region(installation: Installation, make_process: Callable[..., Path]) -> Robo:
    robo = installation("guyane")
    robo.keys.generate()
    robo.registry.deploy(load_process(make_process(definition())))
    return robo


@pytest.fixture
def national(installation: Installation, region: Robo) -> Robo:
    robo = installation("national")
    robo.keys.trust("guyane", region.keys.listing().local_key or "")
    return robo


def counts(robo: Robo) -> tuple[int, int, int]:
    with robo.db.session() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in (RunRow, ItemRow, MetricImportRow)
        )


def minutes(robo: Robo) -> float:
    with robo.db.session() as session:
        items = session.scalar(select(func.coalesce(func.sum(ItemRow.minutes_saved), 0.0)))
        runs = session.scalar(select(func.coalesce(func.sum(RunRow.run_minutes_saved), 0.0)))
    return float(items or 0) + float(runs or 0)


def edit(path: Path, change: Callable[[dict[str, Any]], None], key: Any = None) -> Path:
    document = json.loads(path.read_text())
    change(document["manifest"])
    if key is not None:
        document["signature"] = signing.sign(key, signed_bytes(document["manifest"]))
    path.write_text(json.dumps(document))
    return path


def refused(national: Robo, paths: list[Path], error: type[RoboError] = RoboError) -> str:
    before = counts(national)
    with pytest.raises(error) as info:
        import_metrics(national.ledger, national.keys, paths)
    assert counts(national) == before
    return info.value.message


# --- export --------------------------------------------------------------------------------


def test_export_holds_finished_runs_with_stable_ids_and_no_personal_data(
    region: Robo, tmp_path: Path
) -> None:
    run_id = record_run(region, ok=3, business=1)
    record_run(region, ok=1, business=0, finish=False)  # still running: not exported

    result = export_metrics(region.ledger, region.keys, tmp_path / "guyane.json")

    assert (result.runs, result.items) == (1, 4)
    text = (tmp_path / "guyane.json").read_text()
    for private in ("DUPONT", "Jeanne", "RCP-123", "2024-75-", "déjà enregistré", "intranet"):
        assert private not in text
    document = json.loads(text)
    manifest = document["manifest"]
    assert (manifest["format"], manifest["format_version"], manifest["region"]) == (
        "robo-metrics",
        1,
        "guyane",
    )
    run = manifest["runs"][0]
    uid = region.ledger.summary(run_id).uid
    assert run["uid"] == uid
    assert run["items"][0]["key"] == item_key(region.keys.item_secret(), uid, "2024-75-00001")


# --- import --------------------------------------------------------------------------------


def test_import_adds_runs_and_items_with_their_region_and_minutes(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=3, business=1, per_run=5)
    record_run(region, ok=2, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")

    results = import_metrics(national.ledger, national.keys, [tmp_path / "g.json"])

    assert [(r.outcome, r.runs_added, r.items_added) for r in results] == [("imported", 2, 6)]
    assert minutes(national) == minutes(region) == 5 * 8 + 5
    with national.db.session() as session:
        rows = session.scalars(select(RunRow)).all()
        assert {(r.region, r.imported_from, r.version_id) for r in rows} == {
            ("guyane", "guyane", None)
        }
        assert all(
            item.data == {} and item.error is None for item in session.scalars(select(ItemRow))
        )


def test_importing_the_same_file_twice_changes_nothing(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=3, business=1)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    import_metrics(national.ledger, national.keys, [tmp_path / "g.json"])
    before = counts(national)

    again = import_metrics(
        national.ledger, national.keys, [tmp_path / "g.json", tmp_path / "g.json"]
    )

    assert [r.outcome for r in again] == ["already-imported", "already-imported"]
    assert counts(national) == before


def test_overlapping_periods_count_each_run_once(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=3, business=1)
    export_metrics(region.ledger, region.keys, tmp_path / "all.json")
    record_run(region, ok=2, business=0)
    export_metrics(
        region.ledger,
        region.keys,
        tmp_path / "later.json",
        since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    )

    import_metrics(national.ledger, national.keys, [tmp_path / "all.json"])
    results = import_metrics(national.ledger, national.keys, [tmp_path / "later.json"])

    assert [(r.runs_added, r.items_added) for r in results] == [(1, 2)]
    assert counts(national)[:2] == (2, 6)
    assert minutes(national) == minutes(region)


def test_imported_runs_are_never_exported_again(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    import_metrics(national.ledger, national.keys, [tmp_path / "g.json"])
    national.keys.generate()

    assert export_metrics(national.ledger, national.keys, tmp_path / "n.json").runs == 0


def test_a_changed_figure_breaks_the_signature(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=3, business=1)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")

    def inflate(manifest: dict[str, Any]) -> None:
        manifest["runs"][0]["items"][0]["minutes_saved"] = 800

    refused(national, [edit(tmp_path / "g.json", inflate)], SignatureError)


def test_figures_that_do_not_follow_from_the_baseline_are_refused_even_signed(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=3, business=1)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    key = signing.load_private(region.settings.home, "guyane")

    def inflate(manifest: dict[str, Any]) -> None:
        manifest["runs"][0]["items"][0]["minutes_saved"] = 800

    message = refused(national, [edit(tmp_path / "g.json", inflate, key)], MetricsError)
    assert "claims 800" in message


def test_a_region_reports_only_its_own_runs(region: Robo, national: Robo, tmp_path: Path) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    key = signing.load_private(region.settings.home, "guyane")

    def relabel(manifest: dict[str, Any]) -> None:
        manifest["runs"][0]["region"] = "occitanie"

    assert "not in guyane" in refused(
        national, [edit(tmp_path / "g.json", relabel, key)], MetricsError
    )


def test_an_unknown_signing_key_is_refused(region: Robo, national: Robo, tmp_path: Path) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")

    def rename(manifest: dict[str, Any]) -> None:
        manifest["region"] = "bretagne"
        manifest["runs"][0]["region"] = "bretagne"

    path = edit(tmp_path / "g.json", rename, Ed25519PrivateKey.generate())
    assert "robo keys trust bretagne" in refused(national, [path], SignatureError)


def test_a_newer_format_version_is_refused(region: Robo, national: Robo, tmp_path: Path) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    key = signing.load_private(region.settings.home, "guyane")

    def bump(manifest: dict[str, Any]) -> None:
        manifest["format_version"] = 2

    message = refused(national, [edit(tmp_path / "g.json", bump, key)], MetricsError)
    assert "upgrade robo" in message


def test_one_bad_file_among_several_stores_nothing(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "good.json")
    (tmp_path / "bad.json").write_text("{not json")

    assert "not JSON" in refused(national, [tmp_path / "good.json", tmp_path / "bad.json"])


# --- hostile files and edge cases (issue 12) -----------------------------------------------


def resign(path: Path, region: Robo, change: Callable[[dict[str, Any]], None]) -> Path:
    return edit(path, change, signing.load_private(region.settings.home, "guyane"))


def test_item_keys_are_keyed_hashes_that_knowing_the_run_uid_does_not_reverse(
    region: Robo, tmp_path: Path
) -> None:
    import hashlib

    run_id = record_run(region, ok=2, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    uid = region.ledger.summary(run_id).uid
    keys = {
        i["key"]
        for i in json.loads((tmp_path / "g.json").read_text())["manifest"]["runs"][0]["items"]
    }

    # The attack of issue 12: try every reference of the known pattern against the uid.
    guesses = {
        hashlib.sha256(f"{uid}\0{'2024-75-'}{n:05d}".encode()).hexdigest()[:32]
        for n in range(1, 100)
    }
    assert not keys & guesses
    secret_file = signing.item_secret_file(region.settings.home, "guyane")
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert len(secret_file.read_bytes()) == 32


def test_the_item_key_is_made_once_and_kept(region: Robo, tmp_path: Path) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "a.json")
    export_metrics(region.ledger, region.keys, tmp_path / "b.json")

    def item_keys(path: Path) -> list[str]:
        runs = json.loads(path.read_text())["manifest"]["runs"]
        return [i["key"] for r in runs for i in r["items"]]

    assert item_keys(tmp_path / "a.json") == item_keys(tmp_path / "b.json")


def test_metrics_files_are_written_for_a_shared_folder(region: Robo, tmp_path: Path) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    assert (tmp_path / "g.json").stat().st_mode & 0o777 == 0o644


def test_metrics_export_to_a_path_that_cannot_be_written_says_so(
    region: Robo, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(RoboError, match="cannot write"):
        export_metrics(region.ledger, region.keys, tmp_path / "a-file" / "g.json")


def test_a_deeply_nested_metrics_file_is_refused_before_it_is_parsed(
    national: Robo, tmp_path: Path
) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"manifest": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested" in refused(national, [path], MetricsError)


@pytest.mark.parametrize("value", ["Infinity", "NaN", "-Infinity", "1e999"])
def test_non_finite_minutes_are_refused_even_signed_by_a_trusted_key(
    region: Robo, national: Robo, tmp_path: Path, value: str
) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    key = signing.load_private(region.settings.home, "guyane")
    document = json.loads((tmp_path / "g.json").read_text())
    for where in (
        document["manifest"]["runs"][0]["items"][0],
        document["manifest"]["runs"][0]["baseline"],
    ):
        where["minutes_saved" if "key" in where else "manual_minutes_per_item"] = float("inf")
    document["signature"] = signing.sign(key, signed_bytes(document["manifest"]))
    text = json.dumps(document).replace("Infinity", value)
    (tmp_path / "g.json").write_text(text)

    message = refused(national, [tmp_path / "g.json"], MetricsError)
    assert "finite" in message or "range" in message


def test_absurd_minutes_are_refused_even_signed_by_a_trusted_key(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")

    def absurd(manifest: dict[str, Any]) -> None:
        run = manifest["runs"][0]
        run["baseline"]["manual_minutes_per_item"] = 1e308
        run["items"][0]["minutes_saved"] = 1e308 - run["baseline"]["residual_minutes_per_item"]

    message = refused(national, [resign(tmp_path / "g.json", region, absurd)], MetricsError)
    assert "manual_minutes_per_item" in message and "less than or equal" in message


def test_a_run_still_running_is_refused_even_signed(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=1, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")

    def running(manifest: dict[str, Any]) -> None:
        manifest["runs"][0]["status"] = "running"
        manifest["runs"][0]["finished_at"] = None

    message = refused(national, [resign(tmp_path / "g.json", region, running)], MetricsError)
    assert "status" in message


def test_an_item_added_to_an_already_imported_run_is_ignored_with_a_reason(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=10, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "ten.json")
    import_metrics(national.ledger, national.keys, [tmp_path / "ten.json"])
    before = minutes(national)

    def eleventh(manifest: dict[str, Any]) -> None:
        items = manifest["runs"][0]["items"]
        items.append({**items[-1], "key": "f" * 32, "position": 11})

    eleven = resign(tmp_path / "ten.json", region, eleventh)
    (result,) = import_metrics(national.ledger, national.keys, [eleven])

    assert (result.outcome, result.runs_added, result.items_added) == ("imported", 0, 0)
    assert len(result.ignored) == 1 and "items are final" in result.ignored[0]
    assert counts(national)[:2] == (1, 10)
    assert minutes(national) == before


def test_an_item_added_to_a_run_imported_in_the_same_batch_is_ignored(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    record_run(region, ok=2, business=0)
    export_metrics(region.ledger, region.keys, tmp_path / "two.json")
    three = tmp_path / "three.json"
    three.write_text((tmp_path / "two.json").read_text())

    def third(manifest: dict[str, Any]) -> None:
        items = manifest["runs"][0]["items"]
        items.append({**items[-1], "key": "e" * 32, "position": 3})

    resign(three, region, third)
    results = import_metrics(national.ledger, national.keys, [tmp_path / "two.json", three])

    assert [(r.runs_added, r.items_added) for r in results] == [(1, 2), (0, 0)]
    assert results[1].ignored and counts(national)[:2] == (1, 2)


def test_files_made_with_plain_sha256_item_keys_still_import(
    region: Robo, national: Robo, tmp_path: Path
) -> None:
    """Files exported before keyed hashes: an importer only compares keys."""
    import hashlib

    run_id = record_run(region, ok=2, business=1)
    export_metrics(region.ledger, region.keys, tmp_path / "g.json")
    uid = region.ledger.summary(run_id).uid

    def old_keys(manifest: dict[str, Any]) -> None:
        for position, item in enumerate(manifest["runs"][0]["items"], start=1):
            reference = f"2024-75-{position:05d}"
            item["key"] = hashlib.sha256(f"{uid}\0{reference}".encode()).hexdigest()[:32]

    (result,) = import_metrics(
        national.ledger, national.keys, [resign(tmp_path / "g.json", region, old_keys)]
    )
    assert (result.runs_added, result.items_added) == (1, 3)
