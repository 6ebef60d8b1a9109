"""A command line a person can read: help with examples, tables that fit the terminal,
"did you mean", and shell completion of process and run ids."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import robo.cli.render as render
from robo.app import Robo
from robo.cli.completion import process_ids, run_ids
from robo.cli.main import cli
from robo.errors import ProcessNotFound, QueueError, did_you_mean
from robo.loader import load_process
from tests.conftest import definition


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group under ``group``, found in the click tree as it is now
    (commands added later are checked without editing this test)."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))


ALL_COMMANDS = [(), *command_paths(cli)]


# --- help ----------------------------------------------------------------------------


def test_the_command_tree_is_walked_down_to_subcommands() -> None:
    assert ("run",) in ALL_COMMANDS
    assert ("queue", "list") in ALL_COMMANDS
    assert ("secret", "set") in ALL_COMMANDS
    assert len(ALL_COMMANDS) > 60


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "robo")
def test_every_command_and_group_help_has_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`robo {' '.join(path)} --help` shows no example"
    # The \b block keeps each example on its own line (click does not rewrap it).
    example = result.output.split("Example", 1)[1].splitlines()[1]
    assert example.strip().startswith(("robo", "ROBO_", "_ROBO")), example


# --- did you mean --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [(["rnu"], "Did you mean 'run'?"), (["queue", "lst"], "Did you mean 'list'?")],
)
def test_an_unknown_command_suggests_the_close_one(args: list[str], suggestion: str) -> None:
    result = CliRunner().invoke(cli, args)

    assert result.exit_code == 2
    assert suggestion in result.output


def test_did_you_mean_names_one_or_several_close_names_or_nothing() -> None:
    known = ["residence-permit-entry", "invoice-inbox-dispatch", "invoice-commitment-check"]

    assert did_you_mean("residence-permit-entri", known) == "did you mean 'residence-permit-entry'?"
    assert did_you_mean("invoice-check", ["invoice-checks", "invoices-check"]) == (
        "did you mean one of 'invoices-check', 'invoice-checks'?"
    )
    assert did_you_mean("payroll", known) == ""
    assert did_you_mean("x", []) == ""


@pytest.fixture
def deployed(robo: Robo, make_process: Any) -> Robo:
    robo.registry.actor = "tester"
    robo.registry.deploy(load_process(make_process(definition())))
    return robo


def test_an_unknown_process_id_suggests_the_registered_one(deployed: Robo) -> None:
    with pytest.raises(ProcessNotFound) as info:
        deployed.registry.active("sample-proces")

    assert info.value.message.startswith(
        "no process 'sample-proces' in the registry; did you mean 'sample-process'? "
    )
    assert "`robo processes` lists them" in info.value.message


def test_a_far_process_id_gets_no_suggestion(deployed: Robo) -> None:
    with pytest.raises(ProcessNotFound) as info:
        deployed.registry.require("payroll")

    assert "did you mean" not in info.value.message


def test_an_unknown_queue_suggests_the_existing_one(deployed: Robo) -> None:
    deployed.queues.ensure("sample-process")

    with pytest.raises(QueueError) as info:
        deployed.queues.summary("sample-proces")

    assert "did you mean 'sample-process'?" in info.value.message


def test_the_cli_suggests_a_process_id_on_every_lookup(deployed: Robo) -> None:
    settings = deployed.settings
    base = ["--home", str(settings.home), "--database-url", str(settings.database_url)]
    for args in (["run", "sample-proces"], ["show", "sample-proces"], ["pause", "sample-proces"]):
        result = CliRunner().invoke(cli, [*base, *args], env={"ROBO_CONFIG": os.devnull})

        assert result.exit_code == 1, result.output
        assert "did you mean 'sample-process'?" in result.output


# --- tables --------------------------------------------------------------------------

COLUMNS = ["run", "process", "version", "region", "status", "started (UTC)", "items", "ok",
           "business", "app", "h saved"]  # fmt: skip
ROWS = [
    (i, "residence-permit-entry", "1.0.0", "occitanie", "completed (test)",
     "2026-12-01 22:10:45", 40, 30, 5, 5, "12.5")
    for i in (1, 22, 333)
]  # fmt: skip


def printed(capsys: pytest.CaptureFixture[str], **kwargs: Any) -> list[str]:
    render.table(None, COLUMNS, ROWS, right=["run"], **kwargs)
    lines = capsys.readouterr().out.splitlines()
    assert lines
    return lines


def test_a_wide_table_fits_an_80_column_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "_width", lambda: (80, True))

    lines = printed(capsys, optional=["region", "version", "items"])

    assert max(len(line) for line in lines) <= 80
    assert lines[-1] == "(region, version, items: left out to fit 80 columns; --json has them)"
    assert "│" not in "\n".join(lines)  # compact: no vertical borders
    assert any("residence-permit-entry" in line for line in lines)  # an id is not folded
    header = " ".join(lines[:2]).split()
    for kept in ("run", "process", "status", "ok", "business", "saved"):
        assert kept in header
    assert "occitanie" not in "\n".join(lines)
    assert all(str(row[0]) in "\n".join(lines) for row in ROWS)  # run ids never folded


def test_a_table_that_fits_keeps_its_borders_and_every_column(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "_width", lambda: (200, True))

    lines = printed(capsys, optional=["region", "version"])

    assert lines[0].startswith("┏")
    assert "│ residence-permit-entry │" in lines[3]
    assert "left out" not in "\n".join(lines)


def test_in_a_pipe_a_table_leaves_nothing_out_and_breaks_no_word(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    monkeypatch.setenv("COLUMNS", "80")

    lines = printed(capsys, optional=["region", "version"])

    text = "\n".join(lines)
    assert "left out" not in text
    words = {word for row in ROWS for value in row for word in str(value).split()}
    assert all(re.search(rf"(^|\s){re.escape(word)}(\s|$)", text, re.M) for word in words)
    # As narrow as whole words allow (wider than COLUMNS here), sentences wrapped.
    assert 80 < max(len(line) for line in lines) <= 110


def test_in_a_pipe_a_table_that_fits_columns_keeps_to_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    monkeypatch.setenv("COLUMNS", "60")

    render.table(None, ["item", "note"], [(1, "a note long enough to wrap " * 4)])

    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert len(lines) > 3


def test_in_a_pipe_without_columns_each_row_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)

    lines = printed(capsys)

    assert len(lines) == 4 + len(ROWS)  # borders, header, rows: nothing wrapped
    assert "│ residence-permit-entry │" in lines[3]
    assert render._width() == (0, False)


def test_robo_processes_fits_80_columns(deployed: Robo) -> None:
    settings = deployed.settings
    result = CliRunner().invoke(
        cli,
        ["--home", str(settings.home), "--database-url", str(settings.database_url), "processes"],
        env={"ROBO_CONFIG": os.devnull, "COLUMNS": "80"},
    )

    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "sample-process" in result.output


# --- completion ----------------------------------------------------------------------


def context(home: Path, database_url: str) -> click.Context:
    ctx = click.Context(cli, info_name="robo")
    ctx.params = {"home": home, "database_url": database_url, "region": None, "log_level": None}
    return ctx


def param(command: str) -> click.Parameter:
    found = cli.commands[command].params[0]
    assert isinstance(found, click.Argument)
    return found


def test_process_ids_complete_from_the_registry(deployed: Robo, make_process: Any) -> None:
    deployed.registry.deploy(load_process(make_process(definition(id="other-process"))))
    ctx = context(deployed.settings.home, str(deployed.settings.database_url))

    assert process_ids(ctx, param("run"), "") == ["other-process", "sample-process"]
    assert process_ids(ctx, param("run"), "sam") == ["sample-process"]
    assert process_ids(ctx, param("run"), "zzz") == []
    assert process_ids(ctx, param("run"), "%") == []  # a LIKE wildcard is a character


def start_run(robo: Robo) -> int:
    version = robo.registry.active("sample-process")
    return robo.ledger.start_run(
        process_id="sample-process", version_id=version.version_id,
        version=version.definition.version, baseline=version.definition.baseline,
        region="occitanie", parameters={},
    )  # fmt: skip


def test_run_ids_complete_recent_runs_with_what_they_were(deployed: Robo) -> None:
    started = [start_run(deployed), start_run(deployed)]
    ctx = context(deployed.settings.home, str(deployed.settings.database_url))

    items = run_ids(ctx, param("run-show"), "")

    assert [item.value for item in items] == [str(i) for i in reversed(started)]
    assert items[0].help is not None and items[0].help.startswith("sample-process running ")
    assert [item.value for item in run_ids(ctx, param("run-show"), str(started[0]))] == [
        str(started[0])
    ]


def test_completion_is_silent_and_creates_nothing_without_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "robo.db"
    ctx = context(tmp_path / "no-home", f"sqlite:///{missing}")

    assert process_ids(ctx, param("run"), "") == []
    assert run_ids(ctx, param("run-show"), "") == []
    assert not missing.parent.exists()
    assert not (tmp_path / "no-home").exists()


def test_completion_gives_up_quietly_on_an_unreachable_server(tmp_path: Path) -> None:
    ctx = context(tmp_path, "postgresql+psycopg://robo@127.0.0.1:1/robo")
    began = time.monotonic()

    assert process_ids(ctx, param("run"), "") == []
    assert time.monotonic() - began < 5


def complete(deployed: Robo, words: str, shell: str = "bash") -> str:
    """What the shell gets from `_ROBO_COMPLETE={shell}_complete robo` for ``words``."""
    settings = deployed.settings
    words = f"robo --home {settings.home} --database-url {settings.database_url} {words}"
    env = {
        "_ROBO_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        "ROBO_CONFIG": os.devnull,
    }
    result = CliRunner(env=env).invoke(cli, [], prog_name="robo", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ["run", "show", "history", "pause", "schedule", "submit"])
def test_click_completes_process_ids_after_every_command_taking_one(
    deployed: Robo, command: str
) -> None:
    assert complete(deployed, f"{command} sam").splitlines() == ["plain,sample-process"]


def test_click_completes_the_process_option_and_commands(deployed: Robo) -> None:
    assert "plain,sample-process" in complete(deployed, "runs --process s").splitlines()
    assert "plain,run-show" in complete(deployed, "run").splitlines()


def test_zsh_completion_shows_what_each_run_was(deployed: Robo) -> None:
    run_id = start_run(deployed)

    lines = complete(deployed, "run-show ", shell="zsh").splitlines()

    assert lines[:2] == ["plain", str(run_id)]
    assert lines[2].startswith("sample-process running ")


def test_bash_completion_through_the_installed_command(deployed: Robo) -> None:
    """The real entry point, as the shell runs it on each TAB: quick, quiet, exit 0."""
    settings = deployed.settings
    words = f"robo --home {settings.home} --database-url {settings.database_url} run sam"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_")}
    env.update(_ROBO_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD="6",
               ROBO_CONFIG=os.devnull)  # fmt: skip
    script = "from robo.cli.main import main; main()"

    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["plain,sample-process"]
    assert done.stderr == ""
