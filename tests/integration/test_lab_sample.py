"""The sample process processes/lab-case-review, run by the runner in Chromium against
the sample portal's lab page; what it did is read from the portal's own record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from robo.app import Robo
from robo.loader import load_process
from robo.runner.run import RunRequest, run_process
from tests.integration.test_steps_language import lab

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]


def test_the_sample_lab_process_runs_with_its_expected_outcomes(
    robo: Robo, fresh_portal: Any
) -> None:
    loaded = load_process(REPO / "processes" / "lab-case-review")
    robo.registry.deploy(loaded)
    result = run_process(
        robo.run_environment(),
        robo.registry.active("lab-case-review"),
        RunRequest("lab-case-review", params={"portal_url": fresh_portal.url}),
    )

    assert result.status == "completed", result.error
    assert (result.succeeded, result.business_exceptions, result.skipped) == (2, 1, 1)
    assert result.application_exceptions == 0
    items = {i.reference: i for i in robo.ledger.run_detail(result.run_id).items}
    assert items["LAB-001"].output["record_number"] == "ENR-12345"
    assert items["LAB-002"].output["help_code"] == "AIDE-LAB-002"
    assert "Montant invalide" in (items["LAB-003"].error or "")
    assert items["LAB-900"].status == "skipped"
    cases = {c["reference"]: c["amount"] for c in lab(fresh_portal, "case")}
    assert cases == {"LAB-001": 120.5, "LAB-002": 89.0}
    assert len(lab(fresh_portal, "comment")) == 3  # LAB-900 was skipped before its comment
