"""Validation of the steps language: locators, frames, blocks, conditions and their
options; each problem at the line of the step that has it, with its field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from robo.cli.main import cli
from robo.errors import DefinitionError, Problem
from robo.loader import load_process
from tests.conftest import definition

MakeProcess = Callable[..., Path]


def problems(make: MakeProcess, *steps: Any) -> tuple[Path, list[Problem]]:
    spec = definition(bot={"steps": [{"goto": "{{ params.portal_url }}/"}, *steps]})
    folder = make(spec)
    with pytest.raises(DefinitionError) as info:
        load_process(folder)
    return folder, info.value.problems


def only(make: MakeProcess, *steps: Any) -> tuple[Problem, list[str]]:
    folder, found = problems(make, *steps)
    assert len(found) == 1, [p.render() for p in found]
    return found[0], (folder / "process.yaml").read_text(encoding="utf-8").splitlines()


def line(lines: list[str], needle: str) -> int:
    return next(n for n, text in enumerate(lines, start=1) if needle in text)


@pytest.mark.parametrize(
    ("step", "field", "message"),
    [
        (
            {"click": {"selector": "#a", "label": "Nom"}},
            "bot.steps[1].click",
            "locate the element in exactly one way, one of selector, label, role, text, "
            "placeholder, test_id (got selector, label)",
        ),
        (
            {"fill": {"value": "x"}},
            "bot.steps[1].fill",
            "locate the element in exactly one way, one of selector, label, role, text, "
            "placeholder, test_id (got none)",
        ),
        (
            {"click": {"text": "Envoyer", "name": "Envoyer"}},
            "bot.steps[1].click",
            "'name' goes with 'role' (the accessible name of an element)",
        ),
        (
            {"hover": {"test_id": "x", "exact": True}},
            "bot.steps[1].hover",
            "'exact' applies to label, text, placeholder or role + name",
        ),
        (
            {"press": {"key": "Enter", "frame": "#f"}},
            "bot.steps[1].press",
            "'frame' needs an element to act on inside the frame",
        ),
        (
            {"expect_text": {"text": "Enregistré", "label": "Statut", "selector": "#s"}},
            "bot.steps[1].expect_text",
            "locate the element in exactly one way, one of selector, label, role, "
            "placeholder, test_id (got selector, label)",
        ),
        (
            {"extract": {"selector": "#r", "into": "n", "business": True}},
            "bot.steps[1].extract",
            "'business' applies to a 'pattern' that does not match",
        ),
        (
            {"dialog": {"action": "dismiss", "text": "oui"}},
            "bot.steps[1].dialog",
            "a prompt's 'text' is typed only when the dialog is accepted",
        ),
        (
            {"wait_for_response": {"url": "**/x", "url_regex": "x$"}},
            "bot.steps[1].wait_for_response",
            "wait_for_response takes exactly one of 'url' (glob) or 'url_regex'",
        ),
        (
            {"if": {"exists": "#a", "visible": "#b", "then": [{"click": "#a"}]}},
            "bot.steps[1].if",
            "'if' takes exactly one condition, one of exists, visible, text, item "
            "(got exists, visible)",
        ),
        (
            {"if": {"item": "status", "then": [{"click": "#a"}]}},
            "bot.steps[1].if",
            "'item' (a field name) and 'equals' (its value) go together",
        ),
        (
            {"if": {"exists": "#a"}},
            "bot.steps[1].if",
            "'if' needs steps in 'then', 'else' or both",
        ),
        (
            {"frame": {"selector": "#f", "steps": []}},
            "bot.steps[1].frame.steps",
            "List should have at least 1 item after validation, not 0",
        ),
    ],
)
def test_a_bad_combination_is_refused_at_the_steps_line(
    make_process: MakeProcess, step: dict[str, Any], field: str, message: str
) -> None:
    problem, lines = only(make_process, step)

    assert (problem.field, problem.message) == (field, message)
    step_line = line(lines, f"- {next(iter(step))}:")
    assert problem.line == (step_line + 2 if field.endswith(".steps") else step_line)


def test_an_unknown_role_lists_the_aria_roles(make_process: MakeProcess) -> None:
    problem, _ = only(make_process, {"click": {"role": "bouton", "name": "Envoyer"}})

    assert problem.field == "bot.steps[1].click.role"
    assert problem.message.startswith("Input should be 'alert', 'alertdialog'")


def test_a_bad_regular_expression_is_refused_where_it_is_written(
    make_process: MakeProcess,
) -> None:
    problem, lines = only(
        make_process,
        {"extract": {"selector": "#r", "into": "n", "pattern": "ENR-(\\d+"}},
    )

    assert problem.field == "bot.steps[1].extract.pattern"
    assert problem.message.startswith("'ENR-(\\d+' is not a valid regular expression: missing )")
    assert problem.line == line(lines, "pattern:")


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"click": {"selector": "#a", "timeout": 0}}, "bot.steps[1].click.timeout"),
        ({"fill": {"label": "a", "value": "b", "timeout": 4000}}, "bot.steps[1].fill.timeout"),
        ({"fail_if": {"selector": "#e", "within": 61}}, "bot.steps[1].fail_if.within"),
        ({"if": {"exists": "#e", "within": -1, "then": [{"click": "#e"}]}}, "bot.steps[1].if.within"),
        ({"frame": {"selector": ["#a"] * 6, "steps": [{"click": "#b"}]}}, "bot.steps[1].frame.selector"),
        ({"wait_for_response": {"url": "**", "status": 99}}, "bot.steps[1].wait_for_response.status"),
    ],
)  # fmt: skip
def test_timeouts_waits_frames_and_statuses_are_bounded(
    make_process: MakeProcess, step: dict[str, Any], field: str
) -> None:
    _, found = problems(make_process, step)

    assert field in {p.field for p in found}, [p.render() for p in found]


def test_an_unknown_step_inside_a_block_names_the_known_ones_at_its_line(
    make_process: MakeProcess,
) -> None:
    step = {"frame": {"selector": "#f", "steps": [{"click": "#a"}, {"tap": "#b"}]}}
    problem, lines = only(make_process, step)

    assert problem.field == "bot.steps[1].frame.steps"
    assert problem.message.startswith("unknown step 'tap'; known steps: goto, fill, click")
    assert problem.line == line(lines, "- frame:") + 2  # the block's own steps:


def test_a_problem_deep_in_nested_blocks_has_its_own_line_and_path(
    make_process: MakeProcess,
) -> None:
    inner = {"popup": {"click": {"text": "Aide"}, "steps": [{"fill": {"label": "x"}}]}}
    step = {"if": {"visible": "#a", "then": [{"click": "#a"}], "else": [inner]}}
    problem, lines = only(make_process, step)

    assert problem.field == "bot.steps[1].if.else[0].popup.steps[0].fill"
    assert problem.message == "fill takes exactly one of 'value' or 'secret'"
    assert problem.line == line(lines, "- fill:")


def test_templates_inside_blocks_and_locators_are_checked(make_process: MakeProcess) -> None:
    step = {
        "frame": {
            "selector": "#f",
            "steps": [
                {"fill": {"label": "{{ params.portal_ulr }}", "value": "{{ item.nme }}"}},
                {"if": {"item": "statut", "equals": "x", "then": [{"skip_item": "{{ item.name }}"}]}},
            ],
        }
    }  # fmt: skip
    _, found = problems(make_process, step)

    assert sorted((p.field, p.message) for p in found) == [
        ("bot.steps[1].frame.steps[0].fill.label", "'params.portal_ulr': no such parameter"),
        ("bot.steps[1].frame.steps[0].fill.value", "'item.nme': no such input column"),
        ("bot.steps[1].frame.steps[1].if.item", "'item.statut': no such input column"),
    ]


def test_a_secret_filled_inside_a_block_must_be_listed(make_process: MakeProcess) -> None:
    step = {"frame": {"selector": "#f", "steps": [{"fill": {"label": "Mot", "secret": "other"}}]}}
    problem, _ = only(make_process, step)

    assert problem.message == "step uses secret 'other' that is not listed in 'secrets'"


def test_every_new_step_and_option_is_accepted(make_process: MakeProcess) -> None:
    steps = [
        {"click": {"role": "button", "name": "Envoyer", "exact": True, "timeout": 2}},
        {"hover": {"test_id": "aide"}},
        {"press": "Enter"},
        {"press": {"placeholder": "Rechercher", "key": "Control+A", "frame": ["#a", "#b"]}},
        {"fill": {"label": "Nom", "value": "{{ item.name }}", "frame": "#f"}},
        {"dialog": "accept"},
        {"dialog": {"action": "accept", "text": "{{ item.ref }}", "into": "asked"}},
        {"wait_for_response": {"url_regex": "/api/x$", "status": 200, "steps": [{"click": "#go"}]}},
        {"frame": {"selector": ["#outer", "#inner"], "steps": [{"click": {"text": "OK"}}]}},
        {"popup": {"click": "a#help", "steps": [{"extract": {"selector": "#c", "into": "c"}}]}},
        {"if": {"text": {"selector": "#s", "pattern": "^Clos"}, "else": [{"skip_item": "déjà clos"}]}},
        {"if": {"item": "name", "equals": "first", "within": 0, "then": [{"click": "#a"}]}},
        {"business_exception_if": {"label": "Erreur", "within": 1}},
        {"skip_if": {"selector": "#done", "within": 0.5}},
        {"extract": {"selector": "#r", "into": "n", "pattern": "ENR-(\\d+)", "business": True}},
        {"download": {"click": {"role": "button", "name": "Télécharger"}, "save_as": "a.csv"}},
    ]  # fmt: skip
    folder = make_process(definition(bot={"steps": steps}))

    loaded = load_process(folder)

    assert len(loaded.definition.bot.steps or []) == len(steps)


def test_the_json_schema_describes_the_new_steps() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    text = result.output
    schema = json.loads(text)

    defs = schema["$defs"]
    for model in ("IfArgs", "FrameBlock", "PopupArgs", "WaitForResponseArgs", "DialogArgs"):
        assert model in defs
    assert {"selector", "label", "role", "name", "text", "placeholder", "test_id"} <= set(
        defs["Target"]["properties"]
    )
    assert {"frame", "timeout"} <= set(defs["FillArgs"]["properties"])
    assert {"pattern", "attribute"} <= set(defs["ExtractArgs"]["properties"])
    assert "else" in defs["IfArgs"]["properties"] and "within" in defs["IfArgs"]["properties"]
    assert "button" in defs["Target"]["properties"]["role"]["anyOf"][0]["enum"]
