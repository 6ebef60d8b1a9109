"""Replication end to end: three regions, one shared process, one national view.

Occitanie builds and exports a process; Île-de-France and Guyane import it
with their own overlays (URL, calendar, time zone, baseline, secret name) and
run it in real Chromium against the sample portal; Occitanie releases 1.1;
both upgrade with their overlays intact and run again; every region exports
its metrics; a national installation imports them twice and the totals per
region and per originating region are exact.
"""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from robo.app import Robo
from robo.loader import load_process
from robo.replication.bundles import bundle_name, export_bundle, import_bundle
from robo.replication.catalogue import replicas, upgrade
from robo.replication.metrics import export_metrics, import_metrics
from robo.replication.overlays import apply_overlays
from robo.reports.report import build_report
from robo.runner.run import RunRequest, RunResult, run_process
from robo.storage.database import Database
from robo.storage.models import ItemRow, RunRow
from tests.conftest import PORTAL_PASSWORD, definition

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
PID = "residence-permit-entry"
OK_PER_RUN = 7  # the sample input gives 7 successes and 3 business exceptions


def overlay(port: str, host: str, **fields: Any) -> dict[str, Any]:
    return {"process": PID, "parameters": {"portal_url": f"http://{host}:{port}"}, **fields}


IDF_BASELINE = {
    "manual_minutes_per_item": 40,
    "residual_minutes_per_item": 5,
    "manual_minutes_per_run": 10,
    "measured_by": "Bureau du séjour, préfecture de police",
    "measured_on": "2026-02-10",
}
GUYANE_BASELINE = {
    "manual_minutes_per_item": 20,
    "residual_minutes_per_item": 4,
    "measured_by": "Cellule RPA, préfecture de Guyane",
    "measured_on": "2026-02-17",
}


def reset(portal: Any) -> None:
    request = urllib.request.Request(f"{portal.url}/api/reset", method="POST")
    urllib.request.urlopen(request).close()


def run(
    robo: Robo, portal: Any, process_id: str = PID, input_path: Path | None = None, **params: str
) -> RunResult:
    reset(portal)
    version = robo.registry.active(process_id)  # what the CLI and the scheduler use
    request = RunRequest(process_id, input_path=input_path, params=params)
    result = run_process(robo.run_environment(), version, request)
    assert result.status == "completed", result.error
    return result


def write_process(folder: Path, version: str, description: str) -> Path:
    spec = yaml.safe_load((folder / "process.yaml").read_text(encoding="utf-8"))
    spec.update(version=version, description=description)
    spec["owner"]["region"] = "occitanie"
    (folder / "process.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    return folder


def write_overlay(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{data['process']}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return folder


def totals(db: Database, group: str) -> dict[str, float]:
    """Minutes saved per region, or per originating region: item rows plus per-run savings."""
    key = RunRow.region if group == "region" else func.coalesce(RunRow.origin_region, RunRow.region)
    with db.session() as session:
        items = dict(
            session.execute(
                select(key, func.sum(ItemRow.minutes_saved))
                .join(ItemRow, ItemRow.run_id == RunRow.id)
                .group_by(key)
            ).all()
        )
        runs = dict(
            session.execute(select(key, func.sum(RunRow.run_minutes_saved)).group_by(key)).all()
        )
    return {k: float(items.get(k, 0) or 0) + float(v or 0) for k, v in runs.items()}


def test_a_process_shared_by_three_regions_adds_up_exactly_at_national_level(
    installation: Callable[..., Robo],
    fresh_portal: Any,
    make_process: Callable[..., Path],
    tmp_path: Path,
) -> None:
    portal = fresh_portal
    port = portal.url.rsplit(":", 1)[1]
    catalogue = tmp_path / "catalogue"
    occitanie, idf, guyane = (installation(r) for r in ("occitanie", "ile-de-france", "guyane"))
    national = installation("national")
    for region in (occitanie, idf, guyane):
        public = region.keys.generate().public_key
        for other in (occitanie, idf, guyane, national):
            if other is not region:
                other.keys.trust(region.settings.region, public)

    # Occitanie builds the process, runs it, and publishes 1.0.0.
    source = write_process(
        Path(shutil.copytree(REPO / "processes" / PID, tmp_path / "occitanie-git" / PID)),
        "1.0.0",
        "Re-keys validated residence-permit files.",
    )
    occitanie.registry.deploy(load_process(source))
    occitanie_run = run(occitanie, portal, portal_url=portal.url)
    export_bundle(
        occitanie.registry, occitanie.keys, PID, None, catalogue / bundle_name(PID, "1.0.0")
    )

    # Île-de-France and Guyane adopt it and adapt it with their overlays.
    idf_overlay = overlay(
        port, "localhost", baseline=IDF_BASELINE, calendar="FR", timezone="Europe/Paris",
        schedule={"triggers": [{"cron": "0 8 * * mon-fri"}]},
    )  # fmt: skip
    guyane_overlay = overlay(
        port, "127.0.0.1", baseline=GUYANE_BASELINE, calendar="FR-973",
        timezone="America/Cayenne", secrets={"portal_password": "guyane_portail"},
    )  # fmt: skip
    guyane.secrets.set("guyane_portail", PORTAL_PASSWORD)
    for region, data in ((idf, idf_overlay), (guyane, guyane_overlay)):
        assert (
            import_bundle(
                region.db, region.registry, region.keys, catalogue / bundle_name(PID, "1.0.0")
            ).outcome
            == "created"
        )
        apply_overlays(
            region.db,
            region.registry,
            [write_overlay(tmp_path / "overlays" / region.settings.region, data)],
        )

    # Île-de-France also runs a process of its own (its origin is itself).
    local = make_process(
        definition(id="idf-local-check", bot={"steps": [{"goto": "{{ params.portal_url }}/"}]})
    )
    idf.registry.deploy(load_process(local))

    # A bundle carries no item data: an adopting region gives its own files.
    permits = REPO / "processes" / PID / "input" / "permits.csv"
    first = [
        run(idf, portal, input_path=permits),
        run(guyane, portal, input_path=permits),
        run(idf, portal, "idf-local-check", portal_url=portal.url),
    ]

    # Occitanie releases 1.1.0; both regions see it and upgrade, overlays intact.
    write_process(source, "1.1.0", "Re-keys validated residence-permit files; checks the receipt.")
    occitanie.registry.deploy(load_process(source))
    export_bundle(
        occitanie.registry, occitanie.keys, PID, "1.1.0", catalogue / bundle_name(PID, "1.1.0")
    )
    for region in (idf, guyane):
        listed, _ = replicas(region.db, region.registry, region.keys, catalogue)
        assert [(r.origin_region, r.version_in_use, r.available, r.overlay) for r in listed] == [
            ("occitanie", "1.0.0", "1.1.0", True)
        ]
        result = upgrade(region.db, region.registry, region.keys, PID, catalogue)
        assert (result.to_version, result.overlay_kept) == ("1.1.0", True)
        assert "checks the receipt" in result.diff
    assert (
        guyane.registry.active(PID).definition.parameters["portal_url"]
        == f"http://127.0.0.1:{port}"
    )
    idf_schedule = idf.registry.active(PID).schedule
    assert idf_schedule is not None and idf_schedule.calendar == "FR"

    # The next day's files: new references, and one already handled (queued before: refused).
    sample = permits.read_text(encoding="utf-8")
    next_day = tmp_path / "permits-next-day.csv"
    next_day.write_text(
        sample.replace("2024-75-", "2025-75-").replace("2025-75-00117", "2024-75-00117"),
        encoding="utf-8",
    )
    second = [run(idf, portal, input_path=next_day), run(guyane, portal, input_path=next_day)]
    for result in second:
        assert [r.reference for r in result.refused] == ["2024-75-00117"]
    for result in [occitanie_run, *first[:2], *second]:
        assert result.succeeded == OK_PER_RUN

    # Each run used the region's URL and the baseline measured there.
    guyane_runs = guyane.ledger.runs()
    assert {r.region for r in guyane_runs} == {"guyane"}
    assert [r.version for r in guyane_runs] == ["1.1.0", "1.0.0"]
    detail = guyane.ledger.run_detail(guyane_runs[0].id)
    assert detail.parameters["portal_url"] == f"http://127.0.0.1:{port}"
    assert detail.baseline["measured_by"] == "Cellule RPA, préfecture de Guyane"
    assert (
        idf.ledger.run_detail(second[0].run_id).parameters["portal_url"]
        == f"http://localhost:{port}"
    )

    # The national view: every region's metrics, imported twice.
    files = []
    for region in (occitanie, idf, guyane):
        path = tmp_path / "metrics" / f"{region.settings.region}.json"
        export_metrics(region.ledger, region.keys, path)
        files.append(path)
    assert {r.outcome for r in import_metrics(national.ledger, national.keys, files)} == {
        "imported"
    }
    assert {r.outcome for r in import_metrics(national.ledger, national.keys, files)} == {
        "already-imported"
    }

    occitanie_minutes = OK_PER_RUN * (30 - 5) + 5  # the origin's own baseline
    idf_minutes = 2 * (OK_PER_RUN * (40 - 5) + 10) + 2 * (10 - 2)  # + its local process
    guyane_minutes = 2 * OK_PER_RUN * (20 - 4)
    assert totals(national.db, "region") == {
        "occitanie": occitanie_minutes,
        "ile-de-france": idf_minutes,
        "guyane": guyane_minutes,
    }
    assert totals(national.db, "origin") == {
        "occitanie": occitanie_minutes + idf_minutes - 2 * (10 - 2) + guyane_minutes,
        "ile-de-france": 2 * (10 - 2),
    }
    # `robo report --by region --by origin` at national level says the same.
    report = build_report(national.db, by=["region", "origin"])
    by_pair = {
        (r.keys["region"], r.keys["origin_region"]): r.figures.minutes_saved for r in report.rows
    }
    assert by_pair == pytest.approx(
        {
            ("occitanie", "occitanie"): occitanie_minutes,
            ("ile-de-france", "occitanie"): idf_minutes - 2 * (10 - 2),
            ("ile-de-france", "ile-de-france"): 2 * (10 - 2),
            ("guyane", "occitanie"): guyane_minutes,
        }
    )
    for region in (occitanie, idf, guyane):  # the national figures are the regions' figures
        name = region.settings.region
        assert totals(region.db, "region") == {name: totals(national.db, "region")[name]}
