"""Generated overlays: mutations of a valid overlay, applied with `robo overlay apply`.

A refused overlay leaves the database as it was (all overlays or none are stored).
"""

from __future__ import annotations

import copy

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile.strategies import YAML_SNIPPETS, values
from tests.hostile.support import (
    HOSTILE,
    OVERLAY,
    World,
    assert_clean,
    copy_home,
    dump,
    run_cli,
    scratch,
    yaml_text,
)
from tests.hostile.test_hostile_definitions import mutate, node_paths

BASE = yaml.safe_load(OVERLAY)
FIELDS = ["parameters", "schedule", "timezone", "calendar", "baseline", "secrets", "process"]
SCHEDULES = [
    {"triggers": [{"cron": "30 6 * * mon-fri"}]},
    {"triggers": [{"every_minutes": 30}], "window": {"start": "06:00", "end": "19:00"}},
    {"grace_minutes": 10},
]


@st.composite
def overlays(draw: st.DrawFn) -> str:
    data = copy.deepcopy(BASE)
    if draw(st.booleans()):
        data["schedule"] = copy.deepcopy(draw(st.sampled_from(SCHEDULES)))
    if draw(st.booleans()):
        data["secrets"] = {"portal_password": draw(st.sampled_from(["local_pw", "bad name", ""]))}
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(node_paths(data) + [(name,) for name in FIELDS]))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        try:
            mutate(data, path, op, draw(values))
        except (KeyError, IndexError, TypeError):
            data[str(path[0])] = draw(values)
    text = yaml_text(data)
    if draw(st.integers(0, 4)) == 0:  # raw YAML trouble too
        lines = text.splitlines()
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(YAML_SNIPPETS)))
        text = "\n".join(lines)
    return text


@given(text=overlays())
@settings(HOSTILE, max_examples=200)
def test_a_mutated_overlay_is_stored_or_refused_and_a_refusal_changes_nothing(
    world: World, text: str
) -> None:
    with scratch() as tmp:
        home = copy_home(world.occitanie, tmp)
        path = tmp / "overlays" / "guyane-process.yaml"
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        before = dump(home)
        result = run_cli(home, ["overlay", "apply", str(path.parent)])
        assert_clean(result, before, dump(home))
        if result.exit_code == 0:  # stored: the process still resolves and shows
            shown = run_cli(home, ["show", "guyane-process"])
            assert_clean(shown)
            assert shown.exit_code == 0, shown.output
