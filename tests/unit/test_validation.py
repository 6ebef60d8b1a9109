"""Validation of process definitions: every problem a user can make, and what they are told.

Each problem is checked twice: through the loader (``DefinitionError.problems``,
the structured form) and through ``robo validate`` (the text a user reads).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from robo.cli.main import cli
from robo.errors import DefinitionError, Problem
from robo.loader import load_many, load_process
from tests.conftest import definition

ROOT = Path(__file__).resolve().parents[2]
MakeProcess = Callable[..., Path]


# --- helpers -----------------------------------------------------------------------


def line_of(folder: Path, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line of process.yaml that starts with ``needle``."""
    lines = (folder / "process.yaml").read_text(encoding="utf-8").splitlines()
    found = [n for n, text in enumerate(lines, start=1) if text.strip().startswith(needle)]
    assert len(found) >= occurrence, f"{needle!r} not in process.yaml"
    return found[occurrence - 1]


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        load_process(path)
    return info.value.problems


def only_problem(path: Path) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def yaml_text(spec: dict[str, object]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def validate(*paths: Path | str) -> Result:
    return CliRunner().invoke(cli, ["validate", *(str(p) for p in paths)])


# --- YAML syntax -----------------------------------------------------------------


def test_bad_yaml_syntax_is_reported_with_its_line(make_process: MakeProcess) -> None:
    folder = make_process("id: x\nname: a: b\nversion: 1.0.0\n")
    problem = only_problem(folder)
    assert problem.file == str(folder / "process.yaml")
    assert problem.line == 2
    assert problem.message.startswith("invalid YAML: ")
    assert "mapping values are not allowed" in problem.message
    assert "indentation and quoting" in problem.hint


def test_a_tab_used_for_indentation_is_reported_with_its_line(make_process: MakeProcess) -> None:
    folder = make_process("id: x\n\tname: y\n")
    problem = only_problem(folder)
    assert problem.line == 2
    assert "invalid YAML" in problem.message
    assert "\\t" in problem.message
    assert "indentation" in problem.hint


def test_wrong_indentation_is_reported_with_its_line(make_process: MakeProcess) -> None:
    folder = make_process("id: x\nname: y\n  version: 1.0.0\n")
    problem = only_problem(folder)
    assert problem.line == 3
    assert "invalid YAML" in problem.message


def test_a_definition_that_is_not_a_mapping_is_refused(make_process: MakeProcess) -> None:
    folder = make_process("- just\n- a list\n")
    problem = only_problem(folder)
    assert problem.message == "the definition must be a YAML mapping"
    assert "id: my-process" in problem.hint


def test_a_python_object_tag_is_refused(make_process: MakeProcess) -> None:
    folder = make_process("id: !!python/object/apply:os.system ['echo pwned']\n")
    problem = only_problem(folder)
    assert problem.line == 1
    assert "python/object" in problem.message
    assert problem.hint == "tags such as !!python/object are refused: definitions are plain data"


def test_a_python_tag_nested_deep_in_the_definition_is_refused(
    make_process: MakeProcess,
) -> None:
    text = yaml_text(definition()).replace(
        "portal_url: http://127.0.0.1:1", "portal_url: !!python/name:os.system"
    )
    folder = make_process(text)
    problem = only_problem(folder)
    assert problem.line == line_of(folder, "portal_url:")
    assert "!!python/object are refused" in problem.hint


def test_yaml_anchors_and_aliases_are_refused(make_process: MakeProcess) -> None:
    text = yaml_text(definition(description=None)).replace("parameters:", "parameters: &params")
    folder = make_process(text + "description: *params\n")
    problem = only_problem(folder)
    assert problem.message == "YAML anchors and aliases are not allowed"
    assert problem.hint == "write the values out in full"


def test_duplicate_keys_are_refused_with_both_lines(make_process: MakeProcess) -> None:
    folder = make_process(yaml_text(definition()) + "name: Another name\n")
    problem = only_problem(folder)
    assert problem.field == "name"
    assert problem.line == line_of(folder, "name:", occurrence=2)
    assert problem.message == f"duplicate key (first at line {line_of(folder, 'name:')})"
    assert "silently use the last" in problem.hint


def test_duplicate_nested_keys_are_refused_with_their_path(make_process: MakeProcess) -> None:
    text = yaml_text(definition()).replace(
        "  manual_minutes_per_item: 10\n",
        "  manual_minutes_per_item: 10\n  manual_minutes_per_item: 12\n",
    )
    folder = make_process(text)
    problem = only_problem(folder)
    assert problem.field == "baseline.manual_minutes_per_item"
    assert problem.line == line_of(folder, "manual_minutes_per_item:", occurrence=2)


# --- fields and values -------------------------------------------------------------


def test_an_unknown_field_is_reported_with_its_line(make_process: MakeProcess) -> None:
    folder = make_process(yaml_text(definition()) + "colour: blue\n")
    problem = only_problem(folder)
    assert problem.field == "colour"
    assert problem.line == line_of(folder, "colour:")
    assert problem.message == "unknown field"
    assert "robo schema" in problem.hint


def test_an_unknown_nested_field_is_reported_with_its_path_and_line(
    make_process: MakeProcess,
) -> None:
    spec = definition()
    spec["baseline"]["manual_minutes_per_itme"] = 3
    folder = make_process(spec)
    problems = {p.field: p for p in problems_of(folder)}
    typo = problems["baseline.manual_minutes_per_itme"]
    assert typo.message == "unknown field"
    assert typo.line == line_of(folder, "manual_minutes_per_itme:")


def test_a_string_where_a_number_is_expected_is_reported(make_process: MakeProcess) -> None:
    spec = definition()
    spec["baseline"]["manual_minutes_per_item"] = "ten"
    folder = make_process(spec)
    problem = only_problem(folder)
    assert problem.field == "baseline.manual_minutes_per_item"
    assert problem.line == line_of(folder, "manual_minutes_per_item:")
    assert "valid number" in problem.message


def test_a_missing_baseline_is_reported(make_process: MakeProcess) -> None:
    folder = make_process(definition(baseline=None))
    problem = only_problem(folder)
    assert problem.field == "baseline"
    assert problem.message == "required field is missing"
    assert "add this field" in problem.hint


def test_negative_residual_minutes_are_refused(make_process: MakeProcess) -> None:
    spec = definition()
    spec["baseline"]["residual_minutes_per_item"] = -1
    folder = make_process(spec)
    problem = only_problem(folder)
    assert problem.field == "baseline.residual_minutes_per_item"
    assert problem.line == line_of(folder, "residual_minutes_per_item:")
    assert "greater than or equal to 0" in problem.message
    assert problem.hint == "use zero or a positive number"


def test_negative_manual_minutes_are_refused(make_process: MakeProcess) -> None:
    spec = definition()
    spec["baseline"]["manual_minutes_per_item"] = -5
    folder = make_process(spec)
    problems = {p.field: p for p in problems_of(folder)}
    problem = problems["baseline.manual_minutes_per_item"]
    assert "greater than 0" in problem.message
    assert problem.hint == "use a positive number"


def test_residual_minutes_above_manual_minutes_are_refused(make_process: MakeProcess) -> None:
    spec = definition()
    spec["baseline"]["residual_minutes_per_item"] = 20
    folder = make_process(spec)
    problem = only_problem(folder)
    assert problem.field == "baseline"
    assert problem.line == line_of(folder, "baseline:")
    assert "residual_minutes_per_item cannot exceed manual_minutes_per_item" in problem.message


def test_a_version_that_is_not_semver_is_refused(make_process: MakeProcess) -> None:
    folder = make_process(definition(version="1.0"))
    problem = only_problem(folder)
    assert problem.field == "version"
    assert problem.line == line_of(folder, "version:")
    assert "should match pattern" in problem.message
    assert "robo schema" in problem.hint


def test_an_id_that_is_not_a_slug_is_refused(make_process: MakeProcess) -> None:
    folder = make_process(definition(id="My Process"), name="my-process")
    problem = only_problem(folder)
    assert problem.field == "id"
    assert problem.line == 1
    assert "should match pattern" in problem.message


# --- paths and files -------------------------------------------------------------


def test_an_input_path_with_dot_dot_is_refused(make_process: MakeProcess) -> None:
    folder = make_process(
        definition(items={"source": "csv", "path": "../x.csv", "reference": "ref"})
    )
    problem = only_problem(folder)
    assert problem.field == "items.path"
    assert problem.line == line_of(folder, "path:")
    assert "'../x.csv' escapes the process folder" in problem.message


def test_an_absolute_input_path_is_refused(make_process: MakeProcess) -> None:
    folder = make_process(
        definition(items={"source": "csv", "path": "/etc/passwd", "reference": "ref"})
    )
    problem = only_problem(folder)
    assert problem.field == "items.path"
    assert "'/etc/passwd' escapes the process folder" in problem.message


def test_an_included_path_with_dot_dot_is_refused(make_process: MakeProcess) -> None:
    folder = make_process(definition(include=["docs/../../secret.txt"]))
    problem = only_problem(folder)
    assert problem.field == "include"
    assert "escapes the process folder" in problem.message


def test_a_symlink_pointing_outside_the_folder_is_refused(
    make_process: MakeProcess, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("ref\nA1\n", encoding="utf-8")
    folder = make_process(
        definition(items={"source": "csv", "path": "input/link.csv", "reference": "ref"})
    )
    os.symlink(outside, folder / "input" / "link.csv")
    problem = only_problem(folder)
    assert problem.field == "items.path"
    assert problem.line == line_of(folder, "path:")
    assert problem.message == "'input/link.csv' escapes the process folder (symlink)"
    assert "inside its folder" in problem.hint


def test_a_symlink_inside_the_folder_is_accepted(make_process: MakeProcess) -> None:
    folder = make_process(
        definition(items={"source": "csv", "path": "input/link.csv", "reference": "ref"})
    )
    os.symlink(folder / "input" / "items.csv", folder / "input" / "link.csv")
    loaded = load_process(folder)
    assert loaded.files["input/link.csv"] == (folder / "input" / "items.csv").read_bytes()


def test_a_missing_input_file_is_reported(make_process: MakeProcess) -> None:
    folder = make_process(
        definition(items={"source": "csv", "path": "input/absent.csv", "reference": "ref"})
    )
    problem = only_problem(folder)
    assert problem.field == "items.path"
    assert problem.line == line_of(folder, "path:")
    assert problem.message == "file 'input/absent.csv' does not exist"
    assert str(folder) in problem.hint


def test_a_missing_bot_module_is_reported(make_process: MakeProcess) -> None:
    folder = make_process(definition(bot={"entrypoint": "bot:run"}))
    problem = only_problem(folder)
    assert problem.field == "bot"
    assert problem.line == line_of(folder, "bot:")
    assert problem.message == "file 'bot.py' does not exist"


def test_a_missing_dotted_bot_module_is_reported_by_its_file(make_process: MakeProcess) -> None:
    folder = make_process(definition(bot={"entrypoint": "bots.entry:run"}))
    problem = only_problem(folder)
    assert problem.message == "file 'bots/entry.py' does not exist"


def test_a_python_syntax_error_is_reported_with_the_bot_file_and_line(
    make_process: MakeProcess,
) -> None:
    folder = make_process(
        definition(bot={"entrypoint": "bot:run"}),
        files={"bot.py": "def run(ctx):\n    pass\n\ndef broken(:\n    pass\n"},
    )
    problem = only_problem(folder)
    assert problem.line == 4
    assert problem.message.startswith("Python syntax error")
    assert "bot.entrypoint" in problem.hint
    # The file must locate the module even when several processes are validated at once.
    assert Path(problem.file) == folder / "bot.py"


def test_an_absent_entrypoint_function_is_reported_with_the_functions_found(
    make_process: MakeProcess,
) -> None:
    folder = make_process(
        definition(bot={"entrypoint": "bot:run"}),
        files={"bot.py": "def other(ctx):\n    pass\n\nclass run:\n    pass\n"},
    )
    problem = only_problem(folder)
    assert problem.field == "bot.entrypoint"
    assert problem.line == line_of(folder, "entrypoint:")
    assert problem.message == "bot.py defines no top-level function 'run'"
    assert problem.hint == "functions found: other"


def test_an_absent_items_function_is_reported(make_process: MakeProcess) -> None:
    folder = make_process(
        definition(
            items={"source": "bot", "reference": "ref"},
            bot={"entrypoint": "bot:run", "items": "bot:items"},
        ),
        files={"bot.py": "def run(ctx):\n    pass\n"},
    )
    problem = only_problem(folder)
    assert problem.field == "bot.items"
    assert problem.message == "bot.py defines no top-level function 'items'"
    assert problem.hint == "functions found: run"


# --- steps and coherence ----------------------------------------------------------------


def test_an_unknown_step_kind_is_refused_with_the_known_ones(make_process: MakeProcess) -> None:
    folder = make_process(definition(bot={"steps": [{"tap": "#save"}]}))
    problem = only_problem(folder)
    assert problem.field == "bot.steps"
    assert problem.line == line_of(folder, "steps:")
    assert problem.message.startswith("unknown step 'tap'; known steps: goto, fill, click")


def test_a_step_with_two_keys_is_refused(make_process: MakeProcess) -> None:
    folder = make_process(definition(bot={"steps": [{"goto": "/a", "click": "#save"}]}))
    problem = only_problem(folder)
    assert problem.field == "bot.steps"
    assert problem.message == "a step has exactly one key, got ['click', 'goto']"


def test_fill_with_both_value_and_secret_is_refused(make_process: MakeProcess) -> None:
    step = {"fill": {"selector": "#pw", "value": "x", "secret": "portal_password"}}
    folder = make_process(definition(bot={"steps": [step]}))
    problem = only_problem(folder)
    assert problem.message == "fill takes exactly one of 'value' or 'secret'"
    assert problem.line == line_of(folder, "- fill:")
    # The step kind appears once: the discriminator tag is not a field the user wrote.
    assert problem.field == "bot.steps[0].fill"


def test_a_step_using_a_secret_not_listed_in_secrets_is_refused(
    make_process: MakeProcess,
) -> None:
    step = {"fill": {"selector": "#pw", "secret": "other_password"}}
    folder = make_process(definition(bot={"steps": [step]}))
    problem = only_problem(folder)
    assert problem.message == ("step uses secret 'other_password' that is not listed in 'secrets'")


def test_items_from_the_bot_need_an_items_producer(make_process: MakeProcess) -> None:
    folder = make_process(definition(items={"source": "bot", "reference": "ref"}))
    problem = only_problem(folder)
    assert problem.message == (
        "items.source is 'bot' but the bot gives neither 'items' nor 'scrape'"
    )


def test_a_bot_with_both_entrypoint_and_steps_is_refused(make_process: MakeProcess) -> None:
    folder = make_process(
        definition(bot={"entrypoint": "bot:run", "steps": [{"goto": "/"}]}),
        files={"bot.py": "def run(ctx):\n    pass\n"},
    )
    problem = only_problem(folder)
    assert problem.field == "bot"
    assert "exactly one of 'entrypoint' (Python) or 'steps'" in problem.message


# --- several problems, several folders ------------------------------------------------


def test_several_problems_in_one_file_are_reported_together(make_process: MakeProcess) -> None:
    spec = definition(version="one", owner=None)
    spec["baseline"]["manual_minutes_per_item"] = 0
    folder = make_process(spec)
    problems = problems_of(folder)
    assert {p.field for p in problems} == {
        "version",
        "owner",
        "baseline.manual_minutes_per_item",
    }
    assert all(p.file == str(folder / "process.yaml") for p in problems)


def test_problems_of_several_folders_are_reported_together(make_process: MakeProcess) -> None:
    first = make_process(definition(id="first", version="1"))
    second = make_process(definition(id="second", baseline=None))
    with pytest.raises(DefinitionError) as info:
        load_many([first, second])
    assert [(p.file, p.field) for p in info.value.problems] == [
        (str(first / "process.yaml"), "version"),
        (str(second / "process.yaml"), "baseline"),
    ]
    assert info.value.message.startswith("2 problems found:")


def test_a_duplicate_id_across_two_folders_is_refused(make_process: MakeProcess) -> None:
    first = make_process(definition(), name="first")
    second = make_process(definition(), name="second")
    with pytest.raises(DefinitionError) as info:
        load_many([first, second])
    (problem,) = info.value.problems
    assert problem.file == str(second / "process.yaml")
    assert problem.field == "id"
    assert problem.line == 1
    assert problem.message == (f"duplicate id 'sample-process' (also in {first / 'process.yaml'})")
    assert problem.hint == "every process needs its own id"


def test_a_duplicate_id_inside_a_parent_folder_is_refused(make_process: MakeProcess) -> None:
    first = make_process(definition(), name="first")
    make_process(definition(), name="second")
    with pytest.raises(DefinitionError) as info:
        load_many([first.parent])
    (problem,) = info.value.problems
    assert problem.message.startswith("duplicate id 'sample-process'")


def test_a_parent_folder_stands_for_the_process_folders_inside(make_process: MakeProcess) -> None:
    make_process(definition(id="alpha"))
    make_process(definition(id="beta"))
    loaded = load_many([make_process(definition(id="gamma")).parent])
    assert [p.definition.id for p in loaded] == ["alpha", "beta", "gamma"]


def test_a_folder_without_process_yaml_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    problem = only_problem(empty)
    assert problem.message == "no such file"
    assert "process.yaml" in problem.hint


# --- the CLI -----------------------------------------------------------------------------


def _bad_yaml(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make("id: x\nname: a: b\n")
    return folder, [f"{folder / 'process.yaml'}:2: invalid YAML", "hint: check indentation"]


def _tab(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make("id: x\n\tname: y\n")
    return folder, [f"{folder / 'process.yaml'}:2: invalid YAML: found character '\\t'"]


def _unknown_field(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(yaml_text(definition()) + "colour: blue\n")
    line = line_of(folder, "colour:")
    return folder, [
        f"{folder / 'process.yaml'}:{line}: colour: unknown field",
        "hint: remove it, or check its spelling against `robo schema`",
    ]


def _bad_type(make: MakeProcess) -> tuple[Path, list[str]]:
    spec = definition()
    spec["baseline"]["manual_minutes_per_item"] = "ten"
    folder = make(spec)
    line = line_of(folder, "manual_minutes_per_item:")
    return folder, [
        f"{folder / 'process.yaml'}:{line}: baseline.manual_minutes_per_item: "
        "Input should be a valid number"
    ]


def _missing_baseline(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(baseline=None))
    return folder, [
        f"{folder / 'process.yaml'}:1: baseline: required field is missing",
        "hint: add this field",
    ]


def _negative_minutes(make: MakeProcess) -> tuple[Path, list[str]]:
    spec = definition()
    spec["baseline"]["residual_minutes_per_item"] = -1
    folder = make(spec)
    line = line_of(folder, "residual_minutes_per_item:")
    return folder, [
        f"{folder / 'process.yaml'}:{line}: baseline.residual_minutes_per_item:",
        "hint: use zero or a positive number",
    ]


def _residual_above_manual(make: MakeProcess) -> tuple[Path, list[str]]:
    spec = definition()
    spec["baseline"]["residual_minutes_per_item"] = 20
    folder = make(spec)
    return folder, ["baseline: residual_minutes_per_item cannot exceed manual_minutes_per_item"]


def _bad_semver(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(version="v1"))
    return folder, [f"{folder / 'process.yaml'}:3: version: String should match pattern"]


def _bad_slug(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(id="Bad_Id"), name="bad")
    return folder, [f"{folder / 'process.yaml'}:1: id: String should match pattern"]


def _dot_dot(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(items={"source": "csv", "path": "../x.csv", "reference": "ref"}))
    return folder, ["items.path: '../x.csv' escapes the process folder"]


def _absolute(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(items={"source": "csv", "path": "/tmp/x.csv", "reference": "ref"}))
    return folder, ["items.path: '/tmp/x.csv' escapes the process folder"]


def _symlink(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(items={"source": "csv", "path": "input/l.csv", "reference": "ref"}))
    outside = folder.parent.parent / "outside.csv"
    outside.write_text("ref\nA\n", encoding="utf-8")
    os.symlink(outside, folder / "input" / "l.csv")
    return folder, [
        "items.path: 'input/l.csv' escapes the process folder (symlink)",
        "hint: keep every file of a process inside its folder",
    ]


def _missing_input(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(items={"source": "csv", "path": "in.csv", "reference": "ref"}))
    line = line_of(folder, "path:")
    return folder, [
        f"{folder / 'process.yaml'}:{line}: items.path: file 'in.csv' does not exist",
        "hint: create it in",
    ]


def _missing_bot(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(bot={"entrypoint": "bot:run"}))
    return folder, ["bot: file 'bot.py' does not exist"]


def _syntax_error(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(bot={"entrypoint": "bot:run"}), files={"bot.py": "def run(:\n"})
    return folder, ["bot.py:1: Python syntax error", "hint: fix the bot module"]


def _no_entrypoint(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(bot={"entrypoint": "bot:run"}), files={"bot.py": "X = 1\n"})
    line = line_of(folder, "entrypoint:")
    return folder, [
        f"{folder / 'process.yaml'}:{line}: bot.entrypoint: "
        "bot.py defines no top-level function 'run'",
        "hint: functions found: none",
    ]


def _python_tag(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make("id: !!python/object/apply:os.system ['true']\n")
    return folder, ["hint: tags such as !!python/object are refused"]


def _alias(make: MakeProcess) -> tuple[Path, list[str]]:
    text = yaml_text(definition(description=None)).replace("name:", "name: &n", 1)
    folder = make(text + "description: *n\n")
    return folder, ["YAML anchors and aliases are not allowed"]


def _duplicate_key(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(yaml_text(definition()) + "version: 2.0.0\n")
    return folder, ["version: duplicate key (first at line 3)"]


def _unknown_step(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(bot={"steps": [{"doubleclick": "#a"}]}))
    return folder, ["bot.steps: unknown step 'doubleclick'; known steps:"]


def _two_keys(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(bot={"steps": [{"goto": "/", "click": "#a"}]}))
    return folder, ["a step has exactly one key"]


def _fill_both(make: MakeProcess) -> tuple[Path, list[str]]:
    step = {"fill": {"selector": "#a", "value": "v", "secret": "portal_password"}}
    folder = make(definition(bot={"steps": [step]}))
    return folder, ["fill takes exactly one of 'value' or 'secret'"]


def _unlisted_secret(make: MakeProcess) -> tuple[Path, list[str]]:
    step = {"fill": {"selector": "#a", "secret": "smtp_password"}}
    folder = make(definition(bot={"steps": [step]}))
    return folder, ["step uses secret 'smtp_password' that is not listed in 'secrets'"]


def _no_items_producer(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(items={"source": "bot", "reference": "ref"}))
    return folder, ["items.source is 'bot' but the bot gives neither 'items' nor 'scrape'"]


def _several(make: MakeProcess) -> tuple[Path, list[str]]:
    folder = make(definition(version="x", owner=None, applications=[]))
    return folder, [
        "error: 3 problems found:",
        "version: String should match pattern",
        "owner: required field is missing",
        "applications: List should have at least 1 item",
    ]


CLI_CASES: dict[str, Callable[[MakeProcess], tuple[Path, list[str]]]] = {
    "bad-yaml-syntax": _bad_yaml,
    "tab-indentation": _tab,
    "unknown-field": _unknown_field,
    "string-for-number": _bad_type,
    "missing-baseline": _missing_baseline,
    "negative-minutes": _negative_minutes,
    "residual-above-manual": _residual_above_manual,
    "bad-semver": _bad_semver,
    "bad-id-slug": _bad_slug,
    "path-with-dot-dot": _dot_dot,
    "absolute-path": _absolute,
    "symlink-outside": _symlink,
    "missing-input-file": _missing_input,
    "missing-bot-module": _missing_bot,
    "python-syntax-error": _syntax_error,
    "absent-entrypoint": _no_entrypoint,
    "python-tag": _python_tag,
    "yaml-alias": _alias,
    "duplicate-key": _duplicate_key,
    "unknown-step": _unknown_step,
    "step-with-two-keys": _two_keys,
    "fill-value-and-secret": _fill_both,
    "unlisted-secret": _unlisted_secret,
    "bot-items-without-producer": _no_items_producer,
    "several-problems": _several,
}


@pytest.mark.parametrize("case", CLI_CASES.values(), ids=CLI_CASES.keys())
def test_validate_prints_each_problem_and_exits_1(
    case: Callable[[MakeProcess], tuple[Path, list[str]]], make_process: MakeProcess
) -> None:
    folder, expected = case(make_process)
    result = validate(folder)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ")
    assert "problem" in result.output.splitlines()[0]
    for text in expected:
        assert text in result.output
    assert "Traceback" not in result.output


def test_validate_reports_a_duplicate_id_across_two_folders(make_process: MakeProcess) -> None:
    first = make_process(definition(), name="one")
    second = make_process(definition(), name="two")
    result = validate(first, second)
    assert result.exit_code == 1
    assert (
        f"{second / 'process.yaml'}:1: id: duplicate id 'sample-process' "
        f"(also in {first / 'process.yaml'})"
    ) in result.output
    assert "hint: every process needs its own id" in result.output


def test_validate_reports_a_duplicate_id_inside_a_parent_folder(
    make_process: MakeProcess,
) -> None:
    first = make_process(definition(), name="one")
    make_process(definition(), name="two")
    result = validate(first.parent)
    assert result.exit_code == 1
    assert "duplicate id 'sample-process'" in result.output


def test_validate_reports_problems_of_every_folder_in_one_run(
    make_process: MakeProcess,
) -> None:
    good = make_process(definition(id="good"))
    bad_one = make_process(definition(id="bad-one", baseline=None))
    bad_two = make_process(yaml_text(definition(id="bad-two")) + "extra: 1\n", name="bad-two")
    result = validate(good, bad_one, bad_two)
    assert result.exit_code == 1
    assert result.output.startswith("error: 2 problems found:")
    assert f"{bad_one / 'process.yaml'}:1: baseline: required field is missing" in result.output
    assert f"{bad_two / 'process.yaml'}" in result.output
    assert "extra: unknown field" in result.output


def test_validate_json_lists_the_problems(make_process: MakeProcess) -> None:
    folder = make_process(definition(baseline=None))
    result = CliRunner().invoke(cli, ["validate", "--json", str(folder)])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False
    assert report["problems"] == [
        {
            "file": str(folder / "process.yaml"),
            "line": 1,
            "field": "baseline",
            "message": "required field is missing",
            "hint": "add this field; see docs/process-format.md",
        }
    ]


def test_validate_prints_ok_for_a_valid_process(make_process: MakeProcess) -> None:
    folder = make_process(definition())
    result = validate(folder)
    assert result.exit_code == 0, result.output
    assert result.output == f"ok  sample-process 1.0.0  ({folder})\n"


def test_validate_accepts_the_sample_processes() -> None:
    result = validate(ROOT / "processes")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (ROOT / "processes").iterdir() if (p / "process.yaml").exists())
    assert names
    for name in names:
        assert f"({ROOT / 'processes' / name})" in result.output
    assert result.output.count("ok  ") == len(names)


def test_schema_prints_the_json_schema_of_process_yaml() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert "properties" in schema
    assert "baseline" in schema["properties"]
    assert "baseline" in schema["required"]
    assert schema["additionalProperties"] is False


# --- hostile input (issue 12): each a located problem, never a traceback ---------------------


def sample_text() -> str:
    return (ROOT / "processes" / "residence-permit-entry" / "process.yaml").read_text("utf-8")


def sample_copy(tmp_path: Path, text: str) -> Path:
    """The residence-permit-entry sample with process.yaml replaced by ``text``."""
    import shutil

    folder = tmp_path / "rpe"
    shutil.copytree(ROOT / "processes" / "residence-permit-entry", folder)
    (folder / "process.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    return folder


def refused_cleanly(folder: Path, *expected: str) -> Problem:
    """`robo validate` exits 1 with the problem located; the loader says the same."""
    result = validate(folder)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output
    problems = problems_of(folder)
    assert all(p.file.endswith("process.yaml") for p in problems)
    return problems[0]


def test_lists_nested_350_deep_are_a_located_problem_not_a_recursion_error(
    tmp_path: Path,
) -> None:
    folder = sample_copy(tmp_path, sample_text() + "extra: " + "[" * 350 + "]" * 350 + "\n")
    problem = refused_cleanly(folder, "nested more than 20 levels deep")
    assert problem.line is not None


@pytest.mark.parametrize(
    ("tagged", "kind"),
    [("!!int 'zz'", "int"), ("!!float 'abc'", "float"), ("!!timestamp 'x'", "timestamp")],
)
def test_yaml_tags_with_bad_values_are_located_problems(
    tmp_path: Path, tagged: str, kind: str
) -> None:
    text = sample_text().replace("max_attempts: 3", f"max_attempts: {tagged}")
    folder = sample_copy(tmp_path, text)
    problem = refused_cleanly(folder, f"is not a valid {kind}")
    assert (problem.field, problem.line) == ("retry.max_attempts", line_of(folder, "max_attempts"))


def test_a_nul_byte_in_include_is_a_located_problem(tmp_path: Path) -> None:
    folder = sample_copy(tmp_path, sample_text().replace("  - README.md", '  - "READ\\0ME.md"'))
    problem = refused_cleanly(folder, "NUL")
    assert problem.field == "include[0]"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("  - README.md", '  - "\\ud800.md"', "include[0]"),
        ("timezone: Europe/Paris", 'timezone: "Europe/\\ud800"', "schedule.timezone"),
        (
            "timezone: Europe/Paris",
            'timezone: Europe/Paris\n  calendar: "FR-\\udc00"',
            "schedule.calendar",
        ),
    ],
)
def test_a_lone_surrogate_in_a_path_timezone_or_calendar_is_a_located_problem(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    folder = sample_copy(tmp_path, sample_text().replace(old, new))
    assert refused_cleanly(folder, "lone surrogate").field == field


def test_a_300_character_include_name_is_a_located_problem(tmp_path: Path) -> None:
    folder = sample_copy(tmp_path, sample_text().replace("  - README.md", "  - " + "a" * 300))
    assert refused_cleanly(folder, "at most 255 bytes").field == "include"


def test_a_window_start_given_as_a_number_is_a_problem_not_a_type_error(tmp_path: Path) -> None:
    text = sample_text().replace(
        "  timezone: Europe/Paris", "  timezone: Europe/Paris\n  window: {start: 1.5}"
    )
    refused_cleanly(sample_copy(tmp_path, text), "schedule.window.start: write times in quotes")


def test_a_106_character_version_is_refused_before_any_database_sees_it(tmp_path: Path) -> None:
    text = sample_text().replace("version: 1.0.0", "version: 1.0.0-" + "a" * 100)
    refused_cleanly(sample_copy(tmp_path, text), "version: String should have at most 64")


def test_a_300_character_name_is_refused(tmp_path: Path) -> None:
    text = sample_text().replace(
        "name: Saisie des dossiers de titre de séjour validés", "name: " + "n" * 300
    )
    refused_cleanly(sample_copy(tmp_path, text), "name: String should have at most 255")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e308", str(2**63)])
@pytest.mark.parametrize(
    ("field", "old"),
    [
        ("baseline.manual_minutes_per_item", "manual_minutes_per_item: 30"),
        ("baseline.manual_minutes_per_run", "manual_minutes_per_run: 5"),
        ("timeouts.item_seconds", "item_seconds: 60"),
        ("timeouts.run_seconds", "run_seconds: 1800"),
        ("timeouts.step_seconds", "step_seconds: 10"),
        ("retry.backoff_seconds", "backoff_seconds: 1"),
        ("retry.max_attempts", "max_attempts: 3"),
    ],
)
def test_non_finite_and_absurd_numbers_are_refused(
    tmp_path: Path, field: str, old: str, value: str
) -> None:
    key = old.split(":")[0]
    folder = sample_copy(tmp_path, sample_text().replace(old, f"{key}: {value}"))
    assert refused_cleanly(folder, field).field == field


@pytest.mark.parametrize("value", [".inf", ".nan", "1e308", str(2**63), "0.001", "0.04", "0"])
def test_every_minutes_is_finite_and_at_least_three_seconds(tmp_path: Path, value: str) -> None:
    text = sample_text().replace('- cron: "0 7 * * mon-fri"', f"- every_minutes: {value}")
    field = refused_cleanly(sample_copy(tmp_path, text)).field
    assert field == "schedule.triggers[0].every_minutes"


@pytest.mark.parametrize("value", [".inf", ".nan", str(2**63), "1.0e+16"])
def test_numeric_parameters_are_finite_and_bounded(tmp_path: Path, value: str) -> None:
    text = sample_text().replace("username: agent", f"username: {value}")
    refused_cleanly(sample_copy(tmp_path, text), "parameters: parameter 'username'")


def test_numbers_at_the_bounds_are_accepted(tmp_path: Path) -> None:
    text = (
        sample_text()
        .replace("manual_minutes_per_item: 30", "manual_minutes_per_item: 10080")
        .replace("item_seconds: 60", "item_seconds: 86400")
        .replace("run_seconds: 1800", "run_seconds: 604800")
        .replace("step_seconds: 10", "step_seconds: 0.1")
        .replace('- cron: "0 7 * * mon-fri"', "- every_minutes: 1")
    )
    result = validate(sample_copy(tmp_path, text))
    assert result.exit_code == 0, result.output


def test_a_misspelt_parameter_in_a_template_is_caught_at_validate_time(tmp_path: Path) -> None:
    text = sample_text().replace(
        "{{ params.portal_url }}/permits/new", "{{ params.portal_ulr }}/permits/new"
    )
    folder = sample_copy(tmp_path, text)
    problem = refused_cleanly(folder, "'params.portal_ulr': no such parameter")
    assert problem.field == "bot.steps[0].goto"
    assert "did you mean 'params.portal_url'?" in problem.hint


def test_an_unclosed_template_is_caught_at_validate_time(tmp_path: Path) -> None:
    text = sample_text().replace("{{ item.file_number }}", "{{ item.file_number }", 1)
    problem = refused_cleanly(sample_copy(tmp_path, text), "template syntax error")
    assert problem.field == "bot.steps[1].fill.value"


def test_an_item_name_not_in_the_csv_header_is_caught_at_validate_time(tmp_path: Path) -> None:
    text = sample_text().replace("{{ item.last_name }}", "{{ item.lastname }}")
    problem = refused_cleanly(sample_copy(tmp_path, text), "'item.lastname': no such input column")
    assert "did you mean 'item.last_name'?" in problem.hint


def test_item_names_are_not_checked_without_a_header_to_check_against(
    make_process: MakeProcess,
) -> None:
    spec = definition(
        items={"source": "json", "path": "input/items.json", "reference": "ref"},
        bot={"steps": [{"goto": "{{ params.portal_url }}/{{ item.anything }}"}]},
    )
    folder = make_process(spec, files={"input/items.json": '[{"ref": "A"}]'})
    assert validate(folder).exit_code == 0


def test_an_item_read_in_setup_is_caught_at_validate_time(make_process: MakeProcess) -> None:
    spec = definition(bot={"setup": [{"goto": "{{ item.ref }}"}], "steps": [{"click": "#a"}]})
    problem = only_problem(make_process(spec))
    assert problem.field == "bot.setup[0].goto"
    assert "no item" in problem.message


def test_a_huge_power_in_a_template_is_refused_at_validate_time_without_computing_it(
    tmp_path: Path,
) -> None:
    import time

    text = sample_text().replace("{{ item.last_name }}", "{{ (7 ** 4000000) % 2 }}")
    started = time.monotonic()
    refused_cleanly(sample_copy(tmp_path, text), "too large")
    assert time.monotonic() - started < 2


def test_the_template_sandbox_never_computes_huge_arithmetic() -> None:
    from jinja2.exceptions import SecurityError

    from robo.step_models import template_environment

    env = template_environment()
    for source in ("{{ (7 ** 4000000) % 2 }}", "{{ 'a' * 10 ** 9 }}", "{{ '%999999999d' % 1 }}"):
        with pytest.raises(SecurityError):
            env.from_string(source).render()
    assert env.from_string("{{ 2 ** 10 }} {{ 'ab' * 2 }}").render() == "1024 abab"


def test_an_unknown_filter_is_caught_at_validate_time(make_process: MakeProcess) -> None:
    spec = definition(bot={"steps": [{"goto": "{{ params.portal_url | urlencod }}"}]})
    assert "No filter named 'urlencod'" in only_problem(make_process(spec)).message


def test_output_names_must_be_set_by_some_step(make_process: MakeProcess) -> None:
    spec = definition(
        bot={
            "steps": [
                {"extract": {"selector": "#r", "into": "receipt"}},
                {"goto": "{{ params.portal_url }}/{{ output.reciept }}"},
            ]
        }
    )
    problem = only_problem(make_process(spec))
    assert "'output.reciept'" in problem.message and "output.receipt" in problem.hint


def test_a_python_module_with_a_nul_byte_is_a_problem(make_process: MakeProcess) -> None:
    folder = make_process(definition(bot={"entrypoint": "bot:run"}), files={"bot.py": b"x = 1\0\n"})
    assert "cannot be parsed" in only_problem(folder).message or "null" in (
        only_problem(folder).message
    )
