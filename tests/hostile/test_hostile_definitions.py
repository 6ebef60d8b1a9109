"""Generated definitions: mutations of the sample processes' YAML, validated and deployed.

Values at the edges (non-finite, huge, negative, empty, 5,000 characters, lone
surrogates, NUL), wrong types, deep nesting, YAML tags and odd syntax spliced into
the text, template typos: `robo validate` and `robo deploy` either accept the file
or refuse it with located problems; a refused deploy changes nothing.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from robo.step_models import template_environment
from tests.hostile.strategies import YAML_SNIPPETS, values
from tests.hostile.support import (
    HOSTILE,
    PROCESSES,
    SAMPLES,
    World,
    assert_clean,
    copy_home,
    dump,
    run_cli,
    scratch,
    yaml_text,
)

SAMPLE_TEXT = {name: (PROCESSES / name / "process.yaml").read_text("utf-8") for name in SAMPLES}
SAMPLE_DATA = {name: yaml.safe_load(text) for name, text in SAMPLE_TEXT.items()}


def node_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed definition where a value could be changed."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += node_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += node_paths(value, (*prefix, index))
    return found


def mutate(spec: Any, path: tuple[Any, ...], op: str, value: Any) -> None:
    *parents, last = path
    target = spec
    for part in parents:
        target = target[part]
    if op == "delete":
        del target[last]
    elif op == "add" and isinstance(target, dict):
        target[f"{last}_extra"] = value
    elif op == "add" and isinstance(target, list):
        target.append(value)
    else:
        target[last] = value


def process_folder(tmp: Path, sample: str, text: str) -> Path:
    folder = tmp / sample
    shutil.copytree(PROCESSES / sample, folder)
    (folder / "process.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    return folder


@st.composite
def mutated_definitions(draw: st.DrawFn) -> tuple[str, str]:
    """(sample, process.yaml text) with one to three values changed, removed or added."""
    sample = draw(st.sampled_from(SAMPLES))
    spec = copy.deepcopy(SAMPLE_DATA[sample])
    for _ in range(draw(st.integers(1, 3))):
        paths = node_paths(spec)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        mutate(spec, path, op, draw(values))
    return sample, yaml_text(spec)


@st.composite
def spliced_definitions(draw: st.DrawFn) -> tuple[str, str]:
    """(sample, text) with a YAML snippet spliced in, a line dropped, or the text cut."""
    sample = draw(st.sampled_from(SAMPLES))
    lines = SAMPLE_TEXT[sample].splitlines()
    at = draw(st.integers(0, len(lines)))
    op = draw(st.sampled_from(["insert", "replace-value", "drop", "cut", "duplicate"]))
    if op == "insert":
        indent = draw(st.sampled_from(["", "  ", "    "]))
        snippet = draw(st.sampled_from(YAML_SNIPPETS))
        lines[at:at] = [indent + line for line in snippet.splitlines()]
    elif op == "replace-value" and at < len(lines) and ":" in lines[at]:
        key = lines[at].split(":", 1)[0]
        snippet = draw(st.sampled_from(YAML_SNIPPETS))
        lines[at] = key + ":" + snippet.split(":", 1)[-1]
    elif op == "drop" and at < len(lines):
        del lines[at]
    elif op == "duplicate" and at < len(lines):
        lines.insert(at, lines[at])
    else:
        text = "\n".join(lines)
        return sample, text[: draw(st.integers(0, len(text)))]
    return sample, "\n".join(lines) + "\n"


PIECES = [
    "{{ ", " }}", "{% ", " %}", "{{ params.portal_url }}", "params.portal_url", "params.prot",
    "params['username']", "item.file_number", "item.file_nomber", "item['Référence']",
    "output.receipt", "text", "range(10)", "loop.index", " ** ", " * ", " % ", " + ", " ~ ",
    "7", "4000000", "10", "2", "'a'", "'%9999999d'", "(", ")", "|upper", "|urlencode",
    "|nofilter", "|default('x')", "{% for r in item.items() %}", "{% endfor %}", "}", "{",
]  # fmt: skip


@st.composite
def templates(draw: st.DrawFn) -> str:
    return "".join(draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=9)))


@given(case=mutated_definitions(), as_json=st.booleans())
@settings(HOSTILE, max_examples=350)
def test_a_mutated_definition_is_valid_or_refused_with_located_problems(
    case: tuple[str, str], as_json: bool
) -> None:
    sample, text = case
    with scratch() as tmp:
        folder = process_folder(tmp, sample, text)
        result = run_cli(None, ["validate", *(["--json"] if as_json else []), str(folder)])
    assert_clean(result, as_json=as_json)
    if result.exit_code and not as_json:
        assert "problem" in result.output and "process.yaml" in result.output


@given(case=spliced_definitions())
@settings(HOSTILE, max_examples=200)
def test_yaml_spliced_with_tags_nesting_and_bad_syntax_is_refused_cleanly(
    case: tuple[str, str],
) -> None:
    sample, text = case
    with scratch() as tmp:
        result = run_cli(None, ["validate", str(process_folder(tmp, sample, text))])
    assert_clean(result)


@given(template=templates())
@settings(HOSTILE, max_examples=120)
def test_a_generated_template_is_checked_quickly_and_cleanly(template: str) -> None:
    text = SAMPLE_TEXT["residence-permit-entry"].replace(
        '"{{ item.last_name }}"', yaml.safe_dump(template, default_style='"').strip()
    )
    started = time.monotonic()
    with scratch() as tmp:
        result = run_cli(
            None, ["validate", str(process_folder(tmp, "residence-permit-entry", text))]
        )
    assert_clean(result)
    assert time.monotonic() - started < 5
    # The sandbox that renders it never evaluates anything while compiling.
    try:
        compiled = template_environment().from_string(template)
    except Exception:  # a syntax error: validate refused it above
        assert result.exit_code == 1
        return
    assert compiled is not None


@given(case=st.one_of(mutated_definitions(), spliced_definitions()))
@settings(HOSTILE, max_examples=80)
def test_a_refused_deploy_changes_nothing_in_the_database(
    world: World, case: tuple[str, str]
) -> None:
    sample, text = case
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        folder = process_folder(tmp, sample, text)
        before = dump(home)
        result = run_cli(home, ["deploy", str(folder)])
        assert_clean(result, before, dump(home))


@given(case=st.one_of(mutated_definitions(), spliced_definitions()), position=st.integers(0, 2))
@settings(HOSTILE, max_examples=40)
def test_deploying_several_processes_is_all_or_nothing(
    world: World, case: tuple[str, str], position: int
) -> None:
    sample, text = case
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        folders = []
        for index, name in enumerate(("new-one", "new-two")):
            spec = copy.deepcopy(SAMPLE_DATA["residence-permit-entry"])
            spec["id"] = name
            folder = process_folder(tmp / str(index), "residence-permit-entry", yaml_text(spec))
            folders.append(folder)
        folders.insert(position, process_folder(tmp / "hostile", sample, text))
        before = dump(home)
        result = run_cli(home, ["deploy", *map(str, folders)])
        after = dump(home)
    assert_clean(result, before, after)
    if result.exit_code == 0:
        assert sum("new-one" in line or "new-two" in line for line in after) > sum(
            "new-one" in line or "new-two" in line for line in before
        )
