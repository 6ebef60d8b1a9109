"""The replication commands: keys, export, import, overlay, replicas, upgrade, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import Result

from tests.integration.test_cli import PROCESSES, RPE, robo


class Region:
    def __init__(self, root: Path, name: str) -> None:
        self.home = root / name
        self.name = name

    def __call__(self, *args: str) -> Result:
        return robo(self.home, f"sqlite:///{self.home / 'robo.db'}", "--region", self.name, *args)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


def test_a_region_adopts_adapts_and_reports_through_the_cli(tmp_path: Path) -> None:
    occitanie, guyane, national = (Region(tmp_path, n) for n in ("occitanie", "guyane", "national"))
    public = occitanie.ok("keys", "generate").strip()
    occitanie.ok("deploy", str(PROCESSES / RPE))
    bundle = tmp_path / "catalogue" / f"{RPE}-1.0.0.robo.zip"
    occitanie.ok("export", RPE, "-o", str(bundle))
    guyane.ok("keys", "trust", "occitanie", public)
    national.ok("keys", "trust", "occitanie", public)

    refused = guyane("import", str(bundle.with_name("missing.zip")))
    assert refused.exit_code == 2  # click: the file does not exist
    assert guyane.json("import", str(bundle))["outcome"] == "created"

    overlays = tmp_path / "overlays"
    overlays.mkdir()
    (overlays / f"{RPE}.yaml").write_text(
        f"process: {RPE}\nparameters:\n  portal_url: http://x\n  portal: http://y\n"
    )
    bad = guyane("overlay", "apply", str(overlays))
    assert bad.exit_code == 1
    assert f"{RPE}.yaml:4: parameters.portal: {RPE} 1.0.0 declares no parameter" in bad.stderr
    (overlays / f"{RPE}.yaml").write_text(f"process: {RPE}\ncalendar: FR-973\n")
    assert guyane.json("overlay", "apply", str(overlays))[0]["outcome"] == "created"
    assert guyane.json("overlay", "show", RPE)["overlay"]["calendar"] == "FR-973"
    assert [o["process_id"] for o in guyane.json("overlay", "list")] == [RPE]

    listing = guyane.json("replicas", "--catalogue", str(bundle.parent))
    assert listing["replicas"][0]["origin_region"] == "occitanie"
    assert guyane.json("upgrade", RPE, "--catalogue", str(bundle.parent))["outcome"] == (
        "up-to-date"
    )
    keys = guyane.json("keys", "list")
    assert [k["region"] for k in keys["trusted"]] == ["occitanie"]

    metrics = tmp_path / "occitanie.json"
    assert occitanie.json("metrics", "export", "-o", str(metrics))["runs"] == 0
    first = national.json("metrics", "import", str(metrics))
    again = national.json("metrics", "import", str(metrics))
    assert [r["outcome"] for r in first + again] == ["imported", "already-imported"]
