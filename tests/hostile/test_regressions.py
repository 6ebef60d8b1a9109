"""Issue 12, case by case: settings, CLI arguments, deploy and lineage, bundles in catalogues.

Each test is named after the case it reproduces. Settings cases run robo as a
subprocess (the environment and the working directory are the input); the rest run
in-process. Definitions, bundles and metrics files have their own named cases in
tests/unit/test_validation.py, test_bundles.py and test_metrics.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from tests.hostile.support import (
    BASE_ENV,
    PROCESSES,
    World,
    assert_clean,
    copy_home,
    dump,
    run_cli,
    scratch,
)


def robo(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_")}
    return subprocess.run(
        [sys.executable, "-m", "robo", *args],
        env={**clean, "ROBO_LOCALE": "en", **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_error_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


# --- settings (subprocess) ------------------------------------------------------------------


def test_invalid_toml_in_robo_config_gives_its_file_line_and_a_hint(tmp_path: Path) -> None:
    config = tmp_path / "robo.toml"
    config.write_text('home = "/tmp/x"\nregion = guyane\n', encoding="utf-8")
    env = {"ROBO_CONFIG": str(config), "ROBO_HOME": str(tmp_path / "home")}
    one_error_line(robo("runs", env=env), f"{config}:2: invalid TOML", 'region = "guyane"')


def test_invalid_toml_in_the_working_directory_robo_toml_is_reported_the_same(
    tmp_path: Path,
) -> None:
    (tmp_path / "robo.toml").write_text("region = guyane\n", encoding="utf-8")
    result = robo("runs", env={"ROBO_HOME": str(tmp_path / "home")}, cwd=tmp_path)
    one_error_line(result, "robo.toml:1: invalid TOML")


def test_a_robo_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    env = {"ROBO_CONFIG": str(tmp_path / "nope.toml"), "ROBO_HOME": str(tmp_path / "home")}
    one_error_line(robo("runs", env=env), "ROBO_CONFIG names", "does not exist")


def test_robo_home_set_to_a_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    env = {"ROBO_CONFIG": os.devnull, "ROBO_HOME": str(tmp_path / "a-file")}
    one_error_line(robo("runs", env=env), str(tmp_path / "a-file"), "is a file")


def test_robo_home_set_to_dev_null_is_an_error_naming_it() -> None:
    env = {"ROBO_CONFIG": os.devnull, "ROBO_HOME": os.devnull}
    one_error_line(robo("runs", env=env), "/dev/null", "not a folder")


def test_robo_home_that_cannot_be_created_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    home = tmp_path / "a-file" / "home"
    env = {"ROBO_CONFIG": os.devnull, "ROBO_HOME": str(home)}
    one_error_line(robo("runs", env=env), f"cannot write the data folder {home}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any folder")
def test_robo_home_in_an_unwritable_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    env = {"ROBO_CONFIG": os.devnull, "ROBO_HOME": str(locked)}
    one_error_line(robo("runs", env=env), f"cannot write the data folder {locked}")


def test_an_unknown_log_level_is_an_error_listing_the_levels(tmp_path: Path) -> None:
    env = {"ROBO_CONFIG": os.devnull, "ROBO_HOME": str(tmp_path), "ROBO_LOG_LEVEL": "loud"}
    one_error_line(robo("runs", env=env), "ROBO_LOG_LEVEL", "'debug', 'info', 'warning'")


def test_an_unknown_region_is_an_error_offering_the_closest_names(tmp_path: Path) -> None:
    env = {"ROBO_CONFIG": os.devnull, "ROBO_HOME": str(tmp_path), "ROBO_REGION": "guyanne"}
    line = one_error_line(robo("runs", env=env), "ROBO_REGION", "unknown region 'guyanne'")
    assert "did you mean guyane" in line


def test_a_database_url_without_a_database_name_is_refused_before_connecting(
    tmp_path: Path,
) -> None:
    env = {"ROBO_CONFIG": os.devnull, "ROBO_HOME": str(tmp_path)}
    result = robo("--database-url", "postgresql://", "runs", env=env)
    one_error_line(result, "--database-url", "names no database")


def test_a_database_url_pointing_at_a_file_that_is_not_a_database_is_a_clear_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "notes.db").write_bytes(b"not a database at all, only some text\n" * 50)
    env = {"ROBO_CONFIG": os.devnull, "ROBO_HOME": str(tmp_path / "home")}
    for command in (["runs"], ["db", "current"], ["db", "upgrade"]):
        result = robo("--database-url", f"sqlite:///{tmp_path / 'notes.db'}", *command, env=env)
        one_error_line(result, "is not a robo database")


# --- CLI arguments --------------------------------------------------------------------------


def test_run_show_with_a_26_digit_id_is_a_usage_error_not_an_overflow(world: World) -> None:
    with scratch() as tmp:
        result = run_cli(copy_home(world.occitanie, tmp), ["run-show", "9" * 26])
    assert_clean(result)
    assert result.exit_code == 2 and "not in the range" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["schema", "-o", "{blocked}/schema.json"],
        ["export", "guyane-process", "-o", "{blocked}/b.robo.zip"],
        ["metrics", "export", "-o", "{blocked}/m.json"],
        ["report", "--format", "csv", "-o", "{blocked}/hours.csv"],
        ["report", "--format", "html", "-o", "{blocked}/report.html"],
        ["report", "--items", "--format", "json", "-o", "{blocked}/items.json"],
    ],
)
def test_an_output_path_that_cannot_be_written_is_a_clear_error(
    world: World, command: list[str]
) -> None:
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        (tmp / "a-file").write_text("x")
        args = [a.format(blocked=tmp / "a-file") for a in command]
        before = dump(home)
        result = run_cli(home, args)
        assert_clean(result, before, dump(home))
    assert result.exit_code == 1 and "cannot write" in result.output, result.output


def test_keys_trust_with_a_bad_region_exits_non_zero(world: World) -> None:
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        before = dump(home)
        result = run_cli(home, ["keys", "trust", "BAD REGION", world.guyane_public])
        assert_clean(result, before, dump(home))
    assert result.exit_code == 1 and "unknown region 'BAD REGION'" in result.output


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["schedule", "guyane-procss"], "no process 'guyane-procss' in the registry"),
        (["report", "--process", "guyane-procss"], "did you mean guyane-process?"),
    ],
)
def test_a_process_that_does_not_exist_is_an_error_not_an_empty_answer(
    world: World, command: list[str], expected: str
) -> None:
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        before = dump(home)
        result = run_cli(home, command)
        assert_clean(result, before, dump(home))
    assert result.exit_code == 1 and expected in result.output, result.output


def test_an_undecodable_file_name_is_shown_not_a_crash(world: World) -> None:
    result = run_cli(None, ["validate", "/tmp/\udcff-no-such-folder"])
    assert_clean(result)
    assert result.exit_code == 1


# --- deploy: all or nothing, lineage ----------------------------------------------------------


def process_copy(tmp: Path, name: str, **changes: object) -> Path:
    folder = tmp / name
    shutil.copytree(PROCESSES / "residence-permit-entry", folder)
    spec = yaml.safe_load((folder / "process.yaml").read_text("utf-8"))
    spec.update(changes)
    (folder / "process.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    return folder


def test_deploy_a_b_c_stores_nothing_when_c_conflicts(database_url: str, tmp_path: Path) -> None:
    def cli(*args: str) -> Result:
        options = ["--home", str(tmp_path / "home"), "--database-url", database_url]
        return run_cli(None, [*options, *args])

    first = cli("deploy", str(process_copy(tmp_path, "c0", id="c-process")))
    assert first.exit_code == 0, first.output
    listed_before = cli("processes", "--json").output
    a = process_copy(tmp_path, "a", id="a-process")
    b = process_copy(tmp_path, "b", id="b-process")
    c = process_copy(tmp_path, "c", id="c-process", description="changed, same version")

    result = cli("deploy", str(a), str(b), str(c))

    assert_clean(result)
    assert result.exit_code == 1
    assert "nothing was stored" in result.output
    assert cli("processes", "--json").output == listed_before


def test_a_106_character_version_is_refused_before_the_database(
    database_url: str, tmp_path: Path
) -> None:
    folder = process_copy(tmp_path, "long", version="1.0.0-" + "a" * 100)
    result = run_cli(
        None,
        ["--home", str(tmp_path / "home"), "--database-url", database_url, "deploy", str(folder)],
    )
    assert_clean(result)
    assert result.exit_code == 1 and "at most 64 characters" in result.output


def test_a_local_deploy_over_an_imported_process_is_refused_keeping_its_lineage(
    world: World,
) -> None:
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        local = guyane_copy(tmp, version="1.0.1")
        before = dump(home)
        result = run_cli(home, ["deploy", str(local)])
        assert_clean(result, before, dump(home))
        assert result.exit_code == 1 and "--fork" in result.output and "lineage" in result.output
        replicas = json.loads(run_cli(home, ["replicas", "--json"]).stdout)["replicas"]
    assert [(r["process_id"], r["origin_region"]) for r in replicas] == [
        ("guyane-process", "guyane")
    ]


def test_deploy_fork_records_a_local_fork_and_the_process_keeps_its_origin(world: World) -> None:
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        result = run_cli(home, ["deploy", "--fork", str(guyane_copy(tmp, version="1.0.1"))])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("forked")
        history = json.loads(run_cli(home, ["history", "guyane-process", "--json"]).stdout)
        replicas = json.loads(run_cli(home, ["replicas", "--json"]).stdout)["replicas"]
    assert history["events"][-1]["action"] == "fork"
    assert "local fork of guyane 1.0.0" in history["events"][-1]["detail"]
    assert history["versions"][-1]["origin_region"] == "guyane"
    assert [(r["origin_region"], r["origin_version"], r["version_in_use"]) for r in replicas] == [
        ("guyane", "1.0.0", "1.0.1")
    ]


def guyane_copy(tmp: Path, **changes: object) -> Path:
    from tests.hostile.support import guyane_process

    folder = guyane_process(tmp / "local")
    spec = yaml.safe_load((folder / "process.yaml").read_text("utf-8"))
    spec.update(changes)
    (folder / "process.yaml").write_text(yaml.safe_dump(spec), "utf-8")
    return folder


# --- bundles in a shared catalogue --------------------------------------------------------------


def test_a_deeply_nested_manifest_in_a_shared_catalogue_is_skipped_with_a_warning(
    world: World,
) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", "[" * 50_000 + "]" * 50_000)
        archive.writestr("signature", "x")
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        catalogue = tmp / "catalogue"
        catalogue.mkdir()
        (catalogue / "nested.robo.zip").write_bytes(buffer.getvalue())
        (catalogue / "guyane-process-1.0.0.robo.zip").write_bytes(world.bundle)
        result = run_cli(home, ["replicas", "--catalogue", str(catalogue)])
        imported = run_cli(home, ["import", str(catalogue / "nested.robo.zip")])
    assert_clean(result)
    assert result.exit_code == 0
    assert "ignored nested.robo.zip" in result.output and "nested" in result.output
    assert "guyane-process" in result.output
    assert_clean(imported)
    assert imported.exit_code == 1 and "nested 50000 levels deep" in imported.output


def test_run_without_input_of_a_version_imported_without_its_items_says_so(
    world: World,
) -> None:
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        bundle = tmp / "no-items.robo.zip"
        exported = run_cli(home, ["export", "guyane-process", "-o", str(bundle)])
        assert exported.exit_code == 0, exported.output
        other = copy_home(world.national, tmp / "n")
        key = json.loads(run_cli(home, ["keys", "list", "--json"]).stdout)["local_key"]
        assert run_cli(other, ["keys", "trust", "occitanie", key]).exit_code == 0
        assert run_cli(other, ["import", str(bundle)]).exit_code == 0
        result = run_cli(other, ["run", "guyane-process"], env=BASE_ENV)
    assert_clean(result)
    assert result.exit_code == 1
    assert "items.csv" in result.output and "does not exist" in result.output


@pytest.mark.parametrize(
    "command", [["show", "residence-permit-entry"], ["run", "residence-permit-entry"]]
)
def test_a_stored_version_that_newer_bounds_refuse_is_a_clear_error_not_a_traceback(
    world: World, command: list[str]
) -> None:
    """A version stored by an earlier robo (before the bounds) is read back as it is."""
    import sqlite3

    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        connection = sqlite3.connect(home / "robo.db")
        with connection:
            (definition,) = connection.execute(
                "SELECT definition FROM process_versions v JOIN processes p "
                "ON p.active_version_id = v.id WHERE p.id = 'residence-permit-entry'"
            ).fetchone()
            data = json.loads(definition)
            data["timeouts"]["item_seconds"] = 1e308  # refused since the bounds landed
            connection.execute(
                "UPDATE process_versions SET definition = ? WHERE process_id = ? AND id = "
                "(SELECT active_version_id FROM processes WHERE id = ?)",
                (json.dumps(data), "residence-permit-entry", "residence-permit-entry"),
            )
        connection.close()
        before = dump(home)
        result = run_cli(home, command)
        assert_clean(result, before, dump(home))
    assert result.exit_code == 1, result.output
    assert "residence-permit-entry 1.0.0, as stored in the database" in result.output
    assert "timeouts.item_seconds" in result.output
    assert "robo rollback" in result.output
