"""The trace policy (evidence.trace, ROBO_TRACE), in real Chromium against the sample portal.

One input of two permits: the first meets two 503 pages (the portal's ``fail_next``)
and succeeds on its third attempt; the second succeeds at once.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from robo.app import Robo
from robo.loader import load_process
from robo.runner.browser import chromium_descendants
from robo.runner.run import RunRequest, run_process
from tests.conftest import PORTAL_PASSWORD

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
FAILING, PASSING = "2026-41-00001", "2026-41-00002"
ROWS = (
    "file_number,last_name,first_name,birth_date,nationality,permit_type\n"
    f"{FAILING},MARTIN,Louise,01/02/1990,DZ,salarie\n"
    f"{PASSING},NDIAYE,Fatou,03/04/1985,SN,etudiant\n"
)


def permit_process(tmp_path: Path, evidence: dict[str, Any] | None) -> Path:
    folder = tmp_path / "process"
    shutil.copytree(REPO / "processes" / "residence-permit-entry", folder)
    spec = yaml.safe_load((folder / "process.yaml").read_text(encoding="utf-8"))
    spec["retry"] = {"max_attempts": 3, "backoff_seconds": 0}
    if evidence is not None:
        spec["evidence"] = evidence
    (folder / "process.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return folder


def evidence_of(
    robo: Robo, portal: Any, folder: Path, tmp_path: Path, trace: str | None = None
) -> dict[str, list[str]]:
    """{reference: names of its evidence files} after one run with two 503s to meet."""
    items = tmp_path / "permits.csv"
    items.write_text(ROWS, encoding="utf-8")
    request = urllib.request.Request(
        f"{portal.url}/api/faults", data=json.dumps({"fail_next": 2}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=10).close()
    loaded = load_process(folder)
    robo.registry.deploy(loaded)
    env = robo.run_environment()
    if trace is not None:
        env = dataclasses.replace(env, trace=trace)  # type: ignore[arg-type]
    result = run_process(
        env,
        robo.registry.active(loaded.definition.id),
        RunRequest(loaded.definition.id, input_path=items, params={"portal_url": portal.url}),
    )
    assert result.status == "completed", result.error
    assert chromium_descendants() == []
    found = {item.reference: item for item in robo.ledger.run_detail(result.run_id).items}
    assert (found[FAILING].status, found[FAILING].attempts) == ("success", 3)
    assert (found[PASSING].status, found[PASSING].attempts) == ("success", 1)
    for item in found.values():
        for path in item.evidence:
            assert Path(path).is_file()
            if path.endswith(".trace.zip"):  # scrubbed as ever: the password is nowhere
                with zipfile.ZipFile(path) as archive:
                    assert any(name.endswith(".trace") for name in archive.namelist())
                    for name in archive.namelist():
                        assert PORTAL_PASSWORD.encode() not in archive.read(name)
    return {ref: sorted(Path(p).name for p in item.evidence) for ref, item in found.items()}


def test_by_default_a_failure_keeps_a_screenshot_and_its_first_retry_a_trace(
    robo: Robo, fresh_portal: Any, tmp_path: Path
) -> None:
    kept = evidence_of(robo, fresh_portal, permit_process(tmp_path, None), tmp_path)

    assert kept[FAILING] == [
        f"{FAILING}-attempt1.png",
        f"{FAILING}-attempt2.png",
        f"{FAILING}-attempt2.trace.zip",
    ]
    assert kept[PASSING] == []


def test_always_keeps_a_trace_of_every_attempt(
    robo: Robo, fresh_portal: Any, tmp_path: Path
) -> None:
    folder = permit_process(tmp_path, {"trace": "always"})

    kept = evidence_of(robo, fresh_portal, folder, tmp_path)

    assert kept[FAILING] == [
        f"{FAILING}-attempt1.png",
        f"{FAILING}-attempt1.trace.zip",
        f"{FAILING}-attempt2.png",
        f"{FAILING}-attempt2.trace.zip",
        f"{FAILING}-attempt3.trace.zip",
    ]
    assert kept[PASSING] == [f"{PASSING}-attempt1.trace.zip"]


def test_retain_on_failure_keeps_a_trace_of_every_failed_attempt(
    robo: Robo, fresh_portal: Any, tmp_path: Path
) -> None:
    folder = permit_process(tmp_path, {"trace": "retain-on-failure"})

    kept = evidence_of(robo, fresh_portal, folder, tmp_path)

    assert kept[FAILING] == [
        f"{FAILING}-attempt1.png",
        f"{FAILING}-attempt1.trace.zip",
        f"{FAILING}-attempt2.png",
        f"{FAILING}-attempt2.trace.zip",
    ]
    assert kept[PASSING] == []


@pytest.mark.parametrize("evidence", [{"trace": "off"}, {"trace_on_failure": False}])
def test_off_keeps_screenshots_only(
    robo: Robo, fresh_portal: Any, tmp_path: Path, evidence: dict[str, Any]
) -> None:
    kept = evidence_of(robo, fresh_portal, permit_process(tmp_path, evidence), tmp_path)

    assert kept[FAILING] == [f"{FAILING}-attempt1.png", f"{FAILING}-attempt2.png"]
    assert kept[PASSING] == []


def test_the_installation_setting_applies_where_the_definition_names_no_policy(
    robo: Robo, fresh_portal: Any, tmp_path: Path
) -> None:
    kept = evidence_of(robo, fresh_portal, permit_process(tmp_path, None), tmp_path, "off")

    assert kept[FAILING] == [f"{FAILING}-attempt1.png", f"{FAILING}-attempt2.png"]


def test_the_definition_policy_wins_over_the_installation_setting(
    robo: Robo, fresh_portal: Any, tmp_path: Path
) -> None:
    folder = permit_process(tmp_path, {"trace": "on-first-retry"})

    kept = evidence_of(robo, fresh_portal, folder, tmp_path, "always")

    assert kept[PASSING] == []
    assert f"{FAILING}-attempt2.trace.zip" in kept[FAILING]
