"""The catalogue: replicated processes, newer versions on offer, upgrades, semantic versions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from robo.app import Robo
from robo.cli.main import cli
from robo.errors import ReplicationError
from robo.loader import load_process
from robo.replication.bundles import export_bundle, import_bundle
from robo.replication.catalogue import replicas, upgrade
from robo.replication.semver import SemVer, newest
from tests.conftest import definition

Installation = Callable[..., Robo]


@pytest.fixture
def origin(installation: Installation, make_process: Callable[..., Path], tmp_path: Path) -> Robo:
    robo = installation("occitanie")
    robo.keys.generate()
    for version in ("1.0.0", "1.2.0", "1.10.0"):
        robo.registry.deploy(load_process(make_process(definition(version=version))))
        export_bundle(
            robo.registry,
            robo.keys,
            "sample-process",
            version,
            tmp_path / "cat" / f"s-{version}.zip",
        )
    return robo


@pytest.fixture
def idf(installation: Installation, origin: Robo, tmp_path: Path) -> Robo:
    robo = installation("ile-de-france")
    robo.keys.trust("occitanie", origin.keys.listing().local_key or "")
    import_bundle(robo.db, robo.registry, robo.keys, tmp_path / "cat" / "s-1.0.0.zip")
    return robo


def test_replicas_show_origin_version_in_use_and_the_newest_on_offer(
    idf: Robo, tmp_path: Path
) -> None:
    rows, catalogue = replicas(idf.db, idf.registry, idf.keys, tmp_path / "cat")

    assert [(r.process_id, r.origin_region, r.version_in_use, r.available) for r in rows] == [
        ("sample-process", "occitanie", "1.0.0", "1.10.0")
    ]
    assert catalogue is not None and catalogue.rejected == []


def test_locally_built_processes_are_not_replicas(origin: Robo, tmp_path: Path) -> None:
    rows, _ = replicas(origin.db, origin.registry, origin.keys, tmp_path / "cat")

    assert rows == []


def test_untrusted_bundles_in_the_catalogue_are_ignored_with_the_reason(
    idf: Robo, installation: Installation, make_process: Callable[..., Path], tmp_path: Path
) -> None:
    rogue = installation("bretagne")
    rogue.keys.generate()
    rogue.registry.deploy(load_process(make_process(definition(id="other", version="9.0.0"))))
    export_bundle(rogue.registry, rogue.keys, "other", None, tmp_path / "cat" / "other.zip")

    rows, catalogue = replicas(idf.db, idf.registry, idf.keys, tmp_path / "cat")

    assert rows[0].available == "1.10.0"
    assert catalogue is not None
    assert any("other.zip" in r and "does not trust" in r for r in catalogue.rejected)


def test_upgrade_takes_the_highest_semantic_version(idf: Robo, tmp_path: Path) -> None:
    result = upgrade(idf.db, idf.registry, idf.keys, "sample-process", tmp_path / "cat")

    assert (result.from_version, result.to_version) == ("1.0.0", "1.10.0")
    assert (
        upgrade(idf.db, idf.registry, idf.keys, "sample-process", tmp_path / "cat").outcome
        == "up-to-date"
    )
    assert replicas(idf.db, idf.registry, idf.keys, tmp_path / "cat")[0][0].available is None


def test_upgrade_without_a_catalogue_says_how_to_give_one(idf: Robo) -> None:
    with pytest.raises(ReplicationError, match="--catalogue DIR or set ROBO_CATALOGUE"):
        upgrade(idf.db, idf.registry, idf.keys, "sample-process", None)


def test_the_catalogue_setting_is_used_when_no_folder_is_given(
    installation: Installation, origin: Robo, tmp_path: Path
) -> None:
    robo = installation("guyane", catalogue=tmp_path / "cat")
    robo.keys.trust("occitanie", origin.keys.listing().local_key or "")
    import_bundle(robo.db, robo.registry, robo.keys, tmp_path / "cat" / "s-1.2.0.zip")

    result = CliRunner().invoke(
        cli, ["--home", str(robo.settings.home), "--region", "guyane", "replicas", "--json"],
        env={"ROBO_CATALOGUE": str(tmp_path / "cat")},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["replicas"][0]["available"] == "1.10.0"


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("1.9.0", "1.10.0"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.2", "1.0.0-alpha.10"),
        ("1.0.0-2", "1.0.0-beta"),
        ("0.9.9", "1.0.0"),
    ],
)
def test_semantic_versions_are_ordered_as_semver_says(low: str, high: str) -> None:
    assert SemVer(low) < SemVer(high)
    assert newest([high, low]) == high
