"""The registry: immutable hashed versions, which one is active, and what happened when.

Every test runs on SQLite and on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from robo.errors import ProcessNotFound, RegistryError, VersionConflict, VersionNotFound
from robo.loader import load_process
from robo.regional import RegionDefaults
from robo.registry import Registry
from robo.storage.database import Database
from robo.storage.models import RegistryEventRow, VersionFileRow, VersionRow
from tests.conftest import definition

MakeProcess = Callable[..., Path]
PYTHON_BOT = "def run(ctx):\n    return None\n"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def registry(db: Database) -> Registry:
    return Registry(db, RegionDefaults("Europe/Paris", "FR"), actor="tester")


def python_definition(**overrides: Any) -> dict[str, Any]:
    return definition(bot={"entrypoint": "bot:run"}, **overrides)


def version_rows(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(VersionRow)) or 0)


def actions(registry: Registry, process_id: str = "sample-process") -> list[tuple[str, str | None]]:
    return [(e.action, e.version) for e in registry.history(process_id)]


# --- deploying ---------------------------------------------------------------------


def test_first_deploy_creates_the_process(registry: Registry, make_process: MakeProcess) -> None:
    result = registry.deploy(load_process(make_process(definition())))
    assert (result.process_id, result.version, result.outcome) == (
        "sample-process",
        "1.0.0",
        "created",
    )
    (summary,) = registry.processes()
    assert (summary.id, summary.active_version, summary.enabled, summary.versions) == (
        "sample-process",
        "1.0.0",
        True,
        1,
    )
    assert summary.owner_region == "occitanie"
    assert actions(registry) == [("deploy", "1.0.0")]


def test_the_deploy_records_who_and_from_where(
    registry: Registry, make_process: MakeProcess
) -> None:
    folder = make_process(definition())
    loaded = load_process(folder)
    registry.deploy(loaded)
    (info,) = registry.versions("sample-process")
    assert info.deployed_by == "tester"
    assert info.source_path == str(folder)
    assert info.content_hash == loaded.content_hash
    assert info.active is True
    (event,) = registry.history("sample-process")
    assert event.actor == "tester"


def test_deploying_identical_content_is_a_no_op(
    registry: Registry, db: Database, make_process: MakeProcess
) -> None:
    folder = make_process(definition())
    first = registry.deploy(load_process(folder))
    again = registry.deploy(load_process(folder))
    assert again.outcome == "unchanged"
    assert again.content_hash == first.content_hash
    assert version_rows(db) == 1
    assert actions(registry) == [("deploy", "1.0.0")]


def test_formatting_and_comment_changes_are_unchanged(
    registry: Registry, db: Database, make_process: MakeProcess
) -> None:
    folder = make_process(definition())
    registry.deploy(load_process(folder))
    definition_file = folder / "process.yaml"
    text = definition_file.read_text(encoding="utf-8")
    reformatted = (
        "# Sample process, reformatted by a colleague\n"
        + text.replace("version: 1.0.0", "version: '1.0.0'   # same version")
        .replace("name: Sample process", 'name: "Sample process"')
        .replace("  manual_minutes_per_item: 10", "  manual_minutes_per_item: 10.0")
        + "\n\n"
    )
    assert reformatted != text
    definition_file.write_text(reformatted, encoding="utf-8")
    result = registry.deploy(load_process(folder))
    assert result.outcome == "unchanged"
    assert version_rows(db) == 1


def test_reordered_keys_are_unchanged(registry: Registry, make_process: MakeProcess) -> None:
    registry.deploy(load_process(make_process(definition())))
    shuffled = dict(reversed(list(definition().items())))
    result = registry.deploy(load_process(make_process(shuffled, name="shuffled")))
    assert result.outcome == "unchanged"


def test_changed_content_under_the_same_version_is_a_conflict(
    registry: Registry, db: Database, make_process: MakeProcess
) -> None:
    registry.deploy(load_process(make_process(definition())))
    changed = make_process(definition(description="Changed."), name="changed")
    with pytest.raises(VersionConflict) as info:
        registry.deploy(load_process(changed))
    message = info.value.message
    assert "sample-process 1.0.0 is already deployed with different content" in message
    assert f"raise 'version' in {changed / 'process.yaml'}" in message
    assert "(e.g. 1.0.1)" in message
    assert version_rows(db) == 1
    assert registry.active("sample-process").definition.description == "A process used by tests."


def test_a_changed_bot_file_under_the_same_version_is_a_conflict(
    registry: Registry, make_process: MakeProcess
) -> None:
    folder = make_process(python_definition(), files={"bot.py": PYTHON_BOT})
    registry.deploy(load_process(folder))
    (folder / "bot.py").write_text(PYTHON_BOT + "# tweak\n", encoding="utf-8")
    with pytest.raises(VersionConflict, match=r"sample-process 1\.0\.0 .*raise 'version'"):
        registry.deploy(load_process(folder))


def test_a_changed_input_file_under_the_same_version_is_a_conflict(
    registry: Registry, make_process: MakeProcess
) -> None:
    folder = make_process(definition())
    registry.deploy(load_process(folder))
    (folder / "input" / "items.csv").write_text("ref,name\nB1,other\n", encoding="utf-8")
    with pytest.raises(VersionConflict):
        registry.deploy(load_process(folder))


def test_a_new_version_becomes_active(registry: Registry, make_process: MakeProcess) -> None:
    registry.deploy(load_process(make_process(definition())))
    result = registry.deploy(
        load_process(make_process(definition(version="1.1.0", name="Renamed"), name="v2"))
    )
    assert result.outcome == "new-version"
    active = registry.active("sample-process")
    assert (active.definition.version, active.definition.name) == ("1.1.0", "Renamed")
    assert [(v.version, v.active) for v in registry.versions("sample-process")] == [
        ("1.0.0", False),
        ("1.1.0", True),
    ]
    assert registry.processes()[0].versions == 2


def test_rollback_makes_an_older_version_active_and_is_recorded(
    registry: Registry, make_process: MakeProcess
) -> None:
    registry.deploy(load_process(make_process(definition())))
    registry.deploy(load_process(make_process(definition(version="2.0.0"), name="v2")))
    result = registry.rollback("sample-process", "1.0.0")
    assert (result.version, result.outcome) == ("1.0.0", "reactivated")
    assert registry.active("sample-process").definition.version == "1.0.0"
    assert actions(registry) == [("deploy", "1.0.0"), ("deploy", "2.0.0"), ("rollback", "1.0.0")]
    assert registry.history("sample-process")[-1].detail == "to 1.0.0"


def test_redeploying_an_older_identical_version_reactivates_it(
    registry: Registry, db: Database, make_process: MakeProcess
) -> None:
    old = make_process(definition())
    registry.deploy(load_process(old))
    registry.deploy(load_process(make_process(definition(version="2.0.0"), name="v2")))
    result = registry.deploy(load_process(old))
    assert result.outcome == "reactivated"
    assert registry.active("sample-process").definition.version == "1.0.0"
    assert version_rows(db) == 2
    assert actions(registry)[-1] == ("deploy", "1.0.0")


def test_disable_and_enable_are_recorded(registry: Registry, make_process: MakeProcess) -> None:
    registry.deploy(load_process(make_process(definition())))
    assert registry.set_enabled("sample-process", False) is True
    assert registry.active("sample-process").enabled is False
    assert registry.processes()[0].enabled is False
    assert registry.set_enabled("sample-process", True) is True
    assert registry.active("sample-process").enabled is True
    assert actions(registry) == [("deploy", "1.0.0"), ("disable", None), ("enable", None)]


def test_disable_and_enable_are_idempotent(registry: Registry, make_process: MakeProcess) -> None:
    registry.deploy(load_process(make_process(definition())))
    assert registry.set_enabled("sample-process", True) is False
    registry.set_enabled("sample-process", False)
    assert registry.set_enabled("sample-process", False) is False
    assert actions(registry) == [("deploy", "1.0.0"), ("disable", None)]


def test_deploying_keeps_a_disabled_process_disabled(
    registry: Registry, make_process: MakeProcess
) -> None:
    registry.deploy(load_process(make_process(definition())))
    registry.set_enabled("sample-process", False)
    registry.deploy(load_process(make_process(definition(version="1.0.1"), name="v2")))
    assert registry.active("sample-process").enabled is False


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.active("nope"),
        lambda r: r.get("nope", "1.0.0"),
        lambda r: r.versions("nope"),
        lambda r: r.history("nope"),
        lambda r: r.rollback("nope", "1.0.0"),
        lambda r: r.set_enabled("nope", False),
    ],
    ids=["active", "get", "versions", "history", "rollback", "set_enabled"],
)
def test_an_unknown_process_is_named_with_where_to_find_the_known_ones(
    registry: Registry, make_process: MakeProcess, call: Callable[[Registry], object]
) -> None:
    registry.deploy(load_process(make_process(definition())))
    with pytest.raises(ProcessNotFound) as info:
        call(registry)
    assert "no process 'nope' in the registry" in info.value.message
    assert "`robo processes` lists them" in info.value.message


def test_an_unknown_version_lists_the_deployed_ones(
    registry: Registry, make_process: MakeProcess
) -> None:
    registry.deploy(load_process(make_process(definition())))
    registry.deploy(load_process(make_process(definition(version="1.1.0"), name="v2")))
    with pytest.raises(VersionNotFound) as info:
        registry.rollback("sample-process", "9.9.9")
    assert info.value.message == (
        "sample-process has no version 9.9.9; deployed versions: 1.0.0, 1.1.0"
    )
    with pytest.raises(VersionNotFound, match=re.escape("deployed versions: 1.0.0, 1.1.0")):
        registry.get("sample-process", "0.0.1")
    assert registry.active("sample-process").definition.version == "1.1.0"


# --- reading versions ------------------------------------------------------------------


def test_diff_shows_the_changed_lines_of_the_definition_and_bot(
    registry: Registry, make_process: MakeProcess
) -> None:
    registry.deploy(
        load_process(make_process(python_definition(), files={"bot.py": PYTHON_BOT}, name="v1"))
    )
    new_bot = PYTHON_BOT.replace("return None", "return 42")
    registry.deploy(
        load_process(
            make_process(
                python_definition(version="1.1.0", name="Sample, improved"),
                files={"bot.py": new_bot},
                name="v2",
            )
        )
    )
    text = registry.diff("sample-process", "1.0.0", "1.1.0")
    lines = text.splitlines()
    assert "--- sample-process 1.0.0/process.yaml" in lines
    assert "+++ sample-process 1.1.0/process.yaml" in lines
    assert "-version: 1.0.0" in lines
    assert "+version: 1.1.0" in lines
    assert "-name: Sample process" in lines
    assert "+name: Sample, improved" in lines
    assert "--- sample-process 1.0.0/bot.py" in lines
    assert "+++ sample-process 1.1.0/bot.py" in lines
    assert "-    return None" in lines
    assert "+    return 42" in lines
    # Unchanged files are not shown.
    assert "items.csv" not in text


def test_diff_of_a_version_with_itself_is_empty(
    registry: Registry, make_process: MakeProcess
) -> None:
    registry.deploy(load_process(make_process(definition())))
    assert registry.diff("sample-process", "1.0.0", "1.0.0") == ""


def test_diff_names_a_binary_file_that_changed(
    registry: Registry, make_process: MakeProcess
) -> None:
    spec = definition(include=["doc.bin"])
    registry.deploy(load_process(make_process(spec, files={"doc.bin": b"\x00\xff1"}, name="a")))
    spec = definition(include=["doc.bin"], version="1.0.1")
    registry.deploy(load_process(make_process(spec, files={"doc.bin": b"\x00\xff2"}, name="b")))
    assert "Binary file doc.bin differs\n" in registry.diff("sample-process", "1.0.0", "1.0.1")


def test_unpack_writes_exactly_the_version_files(
    registry: Registry, make_process: MakeProcess, tmp_path: Path
) -> None:
    folder = make_process(
        python_definition(include=["docs/README.md"]),
        files={"bot.py": PYTHON_BOT, "docs/README.md": "# Read me\n"},
    )
    (folder / "notes.txt").write_text("not part of the version", encoding="utf-8")
    registry.deploy(load_process(folder))
    version = registry.active("sample-process")
    root = tmp_path / "versions"
    target = version.unpack(root)
    assert target == root / version.content_hash
    written = {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert written == {
        "process.yaml": (folder / "process.yaml").read_bytes(),
        "bot.py": PYTHON_BOT.encode(),
        "docs/README.md": b"# Read me\n",
        "input/items.csv": (folder / "input" / "items.csv").read_bytes(),
    }
    assert [p.name for p in root.iterdir()] == [version.content_hash]  # no staging left


def test_unpacking_twice_reuses_the_folder(
    registry: Registry, make_process: MakeProcess, tmp_path: Path
) -> None:
    registry.deploy(load_process(make_process(definition())))
    version = registry.active("sample-process")
    first = version.unpack(tmp_path / "versions")
    assert version.unpack(tmp_path / "versions") == first


def test_files_stored_with_a_version_carry_their_sha256(
    db: Database, registry: Registry, make_process: MakeProcess
) -> None:
    import hashlib

    folder = make_process(python_definition(), files={"bot.py": PYTHON_BOT})
    registry.deploy(load_process(folder))
    with db.session() as session:
        rows = {r.path: r.sha256 for r in session.scalars(select(VersionFileRow))}
    assert rows == {
        "bot.py": hashlib.sha256(PYTHON_BOT.encode()).hexdigest(),
        "input/items.csv": hashlib.sha256((folder / "input/items.csv").read_bytes()).hexdigest(),
    }


def test_editing_files_after_deploy_does_not_change_the_active_version(
    registry: Registry, make_process: MakeProcess
) -> None:
    folder = make_process(python_definition(), files={"bot.py": PYTHON_BOT})
    registry.deploy(load_process(folder))
    before = registry.active("sample-process")
    definition_text = (folder / "process.yaml").read_text(encoding="utf-8")
    (folder / "bot.py").write_text("def run(ctx):\n    raise SystemExit\n", encoding="utf-8")
    (folder / "input" / "items.csv").write_text("ref\nZ9\n", encoding="utf-8")
    (folder / "process.yaml").write_text(
        definition_text.replace("Sample process", "Edited"), encoding="utf-8"
    )
    after = registry.active("sample-process")
    assert after.files == before.files
    assert after.files["bot.py"] == PYTHON_BOT.encode()
    assert after.definition_text == definition_text
    assert after.definition.name == "Sample process"
    assert after.content_hash == before.content_hash


def test_the_active_version_matches_what_was_loaded(
    registry: Registry, make_process: MakeProcess
) -> None:
    loaded = load_process(make_process(python_definition(), files={"bot.py": PYTHON_BOT}))
    registry.deploy(loaded)
    active = registry.active("sample-process")
    assert active.definition == loaded.definition
    assert active.files == loaded.files
    assert active.definition_text == loaded.definition_text
    assert active.content_hash == loaded.content_hash


def test_every_registry_change_is_an_event(
    db: Database, registry: Registry, make_process: MakeProcess
) -> None:
    registry.deploy(load_process(make_process(definition())))
    registry.deploy(load_process(make_process(definition(version="1.0.1"), name="b")))
    registry.rollback("sample-process", "1.0.0")
    registry.set_enabled("sample-process", False)
    with db.session() as session:
        count = session.scalar(select(func.count()).select_from(RegistryEventRow))
    assert count == len(registry.history("sample-process")) == 4


# --- all or nothing, lineage (issue 12) ----------------------------------------------------


def dump(db: Database) -> list[tuple[str, int]]:
    """Row counts of every registry table: what a refused deploy must leave as it was."""
    from robo.storage.models import ProcessRow

    with db.session() as session:
        return [
            (t.__tablename__, int(session.scalar(select(func.count()).select_from(t)) or 0))
            for t in (ProcessRow, VersionRow, VersionFileRow, RegistryEventRow)
        ]


def test_deploy_many_stores_nothing_when_the_last_process_conflicts(
    registry: Registry, db: Database, make_process: MakeProcess
) -> None:
    registry.deploy(load_process(make_process(definition(id="c-process"), name="c0")))
    before = dump(db)
    a = load_process(make_process(definition(id="a-process"), name="a"))
    b = load_process(make_process(definition(id="b-process"), name="b"))
    c = load_process(make_process(definition(id="c-process", description="changed"), name="c"))

    with pytest.raises(VersionConflict):
        registry.deploy_many([a, b, c])

    assert dump(db) == before
    assert [p.id for p in registry.processes()] == ["c-process"]


def test_deploy_many_stores_every_process_in_one_go(
    registry: Registry, make_process: MakeProcess
) -> None:
    loaded = [
        load_process(make_process(definition(id=pid), name=pid)) for pid in ("a-one", "b-two")
    ]
    results = registry.deploy_many(loaded)
    assert [(r.process_id, r.outcome) for r in results] == [
        ("a-one", "created"),
        ("b-two", "created"),
    ]


def imported(registry: Registry, make_process: MakeProcess) -> None:
    """sample-process 1.0.0 as `robo import` stores it: with its origin."""
    loaded = load_process(make_process(definition(), name="bundle"))
    registry.deploy(loaded, origin_region="occitanie", origin_version="1.0.0")


def test_a_local_deploy_over_an_imported_process_is_refused_and_keeps_its_lineage(
    registry: Registry, db: Database, make_process: MakeProcess
) -> None:
    imported(registry, make_process)
    before = dump(db)
    local = load_process(make_process(definition(version="1.0.1"), name="local"))

    with pytest.raises(RegistryError, match="lineage") as info:
        registry.deploy_many([local], local_region="guyane")

    assert "--fork" in info.value.message and "occitanie" in info.value.message
    assert dump(db) == before
    active = registry.active("sample-process")
    assert (active.origin_region, active.origin_version) == ("occitanie", "1.0.0")


def test_fork_records_a_local_fork_with_the_origin_kept(
    registry: Registry, make_process: MakeProcess
) -> None:
    imported(registry, make_process)
    local = load_process(make_process(definition(version="1.0.1"), name="local"))

    (result,) = registry.deploy_many([local], fork=True, local_region="guyane")

    assert result.outcome == "forked"
    active = registry.active("sample-process")
    assert (active.definition.version, active.origin_region, active.origin_version) == (
        "1.0.1",
        "occitanie",
        "1.0.0",
    )
    assert actions(registry)[-1] == ("fork", "1.0.1")
    assert "local fork of occitanie 1.0.0" in registry.history("sample-process")[-1].detail


def test_a_fork_goes_on_being_a_fork_without_asking_again(
    registry: Registry, make_process: MakeProcess
) -> None:
    imported(registry, make_process)
    registry.deploy_many(
        [load_process(make_process(definition(version="1.0.1"), name="v1"))],
        fork=True,
        local_region="guyane",
    )
    (result,) = registry.deploy_many(
        [load_process(make_process(definition(version="1.0.2"), name="v2"))],
        local_region="guyane",
    )
    assert result.outcome == "forked"
    assert registry.active("sample-process").origin_region == "occitanie"


def test_redeploying_the_imported_content_itself_is_not_a_fork(
    registry: Registry, make_process: MakeProcess
) -> None:
    imported(registry, make_process)
    same = load_process(make_process(definition(), name="same"))
    (result,) = registry.deploy_many([same], local_region="guyane")
    assert result.outcome == "unchanged"


def test_a_process_built_here_deploys_without_fork(
    registry: Registry, make_process: MakeProcess
) -> None:
    registry.deploy_many([load_process(make_process(definition()))], local_region="guyane")
    (result,) = registry.deploy_many(
        [load_process(make_process(definition(version="1.1.0"), name="v2"))],
        local_region="guyane",
    )
    assert result.outcome == "new-version"
