"""The operator's command line, end to end: `robo ...` as typed, through click."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from robo.cli.main import cli
from tests.conftest import PORTAL_PASSWORD

REPO = Path(__file__).resolve().parents[2]
PROCESSES = REPO / "processes"
PROCESS_IDS = [
    "hr-claims-entry",
    "invoice-commitment-check",
    "invoice-inbox-dispatch",
    "lab-case-review",  # the steps-language sample (not in the demo: see robo/demo/showcase.py)
    "new-files-export",
    "outstanding-reminders",
    "residence-permit-entry",
]
RPE = "residence-permit-entry"
# residence-permit-entry: 25 min saved per item, 5 more per run; its sample input gives 7 ok.
RPE_HOURS = (7 * 25 + 5) / 60


@dataclass(frozen=True)
class Install:
    home: Path
    url: str
    env: tuple[tuple[str, str | None], ...] = ()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return robo(self.home, self.url, *args, input=input, **dict(self.env))

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)


def robo(home: Path, database_url: str, *args: str, input: str | None = None, **env: Any) -> Result:
    """`robo --home HOME --database-url URL ARGS...`, with the portal password in the environment."""
    environment: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    environment["ROBO_SECRET_PORTAL_PASSWORD"] = PORTAL_PASSWORD
    environment["ROBO_LOCALE"] = "en"
    environment.update(env)
    runner = CliRunner(env=environment)
    return runner.invoke(
        cli,
        ["--home", str(home), "--database-url", database_url, *args],
        input=input,
        catch_exceptions=False,
    )


@pytest.fixture
def install(home: Path, sqlite_url: str) -> Install:
    """A fresh installation with the sample processes deployed."""
    installation = Install(home, sqlite_url)
    installation.ok("deploy", str(PROCESSES))
    return installation


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """One installation with the samples deployed, for tests that do not change it."""
    root = tmp_path_factory.mktemp("shared")
    installation = Install(root / "home", f"sqlite:///{root / 'robo.db'}")
    installation.ok("deploy", str(PROCESSES))
    return installation


@dataclass(frozen=True)
class Ran:
    install: Install
    run: dict[str, Any]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, portal: Any) -> Ran:
    """An installation where residence-permit-entry ran once, by `robo run`, on a reset portal."""
    urllib.request.urlopen(urllib.request.Request(f"{portal.url}/api/reset", method="POST")).close()
    root = tmp_path_factory.mktemp("ran")
    installation = Install(root / "home", f"sqlite:///{root / 'robo.db'}")
    installation.ok("deploy", str(PROCESSES))
    result = installation("run", RPE, "--param", f"portal_url={portal.url}", "--json")
    assert result.exit_code == 0, result.output
    try:
        return Ran(installation, json.loads(result.stdout))
    finally:
        from robo.logging import reset

        reset()


def copy_process(tmp_path: Path, process_id: str = RPE) -> Path:
    target = tmp_path / "copies" / process_id
    shutil.copytree(PROCESSES / process_id, target)
    return target


def edit(folder: Path, old: str, new: str) -> None:
    path = folder / "process.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- The registry: deploy, list, show, history, diff, rollback, disable ------------------


def test_deploy_prints_created_then_unchanged(home: Path, sqlite_url: str) -> None:
    first = robo(home, sqlite_url, "deploy", str(PROCESSES))
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert len(lines) == len(PROCESS_IDS)
    for process_id in PROCESS_IDS:
        assert any(line.split()[:3] == ["created", process_id, "1.0.0"] for line in lines)

    again = robo(home, sqlite_url, "deploy", str(PROCESSES))
    assert again.exit_code == 0, again.output
    assert [line.split()[0] for line in again.stdout.splitlines()] == ["unchanged"] * len(
        PROCESS_IDS
    )


def test_deploy_of_changed_content_under_the_same_version_is_refused(
    install: Install, tmp_path: Path
) -> None:
    folder = copy_process(tmp_path)
    edit(folder, "manual_minutes_per_item: 30", "manual_minutes_per_item: 31")

    result = install("deploy", str(folder))

    assert result.exit_code == 1
    assert "residence-permit-entry 1.0.0 is already deployed with different content" in (
        result.output
    )
    assert "raise 'version'" in result.output
    assert install.json("processes")[-1]["versions"] == 1


def test_processes_json_lists_every_sample_with_its_active_version(shared: Install) -> None:
    rows = shared.json("processes")

    assert sorted(r["id"] for r in rows) == PROCESS_IDS
    assert {r["active_version"] for r in rows} == {"1.0.0"}
    assert all(r["enabled"] for r in rows)


def test_processes_table_and_empty_hint(shared: Install, home: Path, sqlite_url: str) -> None:
    table = shared.ok("processes").stdout
    assert all(process_id in table for process_id in PROCESS_IDS)

    empty = robo(home, sqlite_url, "processes")
    assert empty.exit_code == 0
    assert "robo deploy processes/" in empty.output


def test_show_describes_the_active_version(shared: Install) -> None:
    text = shared.ok("show", RPE).stdout

    assert text.startswith(f"{RPE} 1.0.0 ")
    assert "[enabled]" in text
    assert "30 min by hand, 5 min left per item -> 25 min saved" in text
    assert "secrets:      portal_password" in text
    assert "input/permits.csv" in text

    shown = shared.json("show", RPE)
    assert shown["definition"]["id"] == RPE
    assert shown["definition"]["version"] == "1.0.0"
    assert shown["definition"]["baseline"]["manual_minutes_per_item"] == 30
    assert shown["enabled"] is True
    assert len(shown["content_hash"]) == 64
    assert "input/permits.csv" in shown["files"]


def test_show_of_an_unknown_version_fails(shared: Install) -> None:
    result = shared("show", RPE, "--version", "9.9.9")

    assert result.exit_code == 1
    assert "9.9.9" in result.output


def test_history_json_records_the_deploy(shared: Install) -> None:
    history = shared.json("history", RPE)

    assert [v["version"] for v in history["versions"]] == ["1.0.0"]
    assert history["versions"][0]["active"] is True
    assert any(e["action"] == "deploy" and e["version"] == "1.0.0" for e in history["events"])
    table = shared.ok("history", RPE).stdout
    assert "deploy" in table


@pytest.fixture
def two_versions(install: Install, tmp_path: Path) -> Install:
    """residence-permit-entry 1.0.0 from the samples, then a 1.1.0 with another baseline."""
    folder = copy_process(tmp_path)
    edit(folder, "version: 1.0.0", "version: 1.1.0")
    edit(folder, "manual_minutes_per_item: 30", "manual_minutes_per_item: 35")
    deployed = install.ok("deploy", str(folder)).stdout
    assert deployed.split()[:3] == ["new-version", RPE, "1.1.0"]
    return install


def test_diff_shows_the_changed_lines(two_versions: Install) -> None:
    text = two_versions.ok("diff", RPE, "1.0.0", "1.1.0").stdout

    assert f"--- {RPE} 1.0.0/process.yaml" in text
    assert f"+++ {RPE} 1.1.0/process.yaml" in text
    assert "-version: 1.0.0" in text.splitlines()
    assert "+version: 1.1.0" in text.splitlines()
    assert "-  manual_minutes_per_item: 30" in text.splitlines()
    assert "+  manual_minutes_per_item: 35" in text.splitlines()
    assert "README.md" not in text  # unchanged files are not listed

    same = two_versions.ok("diff", RPE, "1.0.0", "1.0.0").stdout
    assert "same content" in same


def test_diff_with_an_unknown_version_fails(two_versions: Install) -> None:
    result = two_versions("diff", RPE, "1.0.0", "2.0.0")

    assert result.exit_code == 1
    assert "2.0.0" in result.output


def test_rollback_makes_the_earlier_version_active(two_versions: Install) -> None:
    assert _active(two_versions) == "1.1.0"

    result = two_versions.ok("rollback", RPE, "1.0.0")

    assert f"{RPE}: version 1.0.0 is active" in result.stdout
    assert _active(two_versions) == "1.0.0"
    events = two_versions.json("history", RPE)["events"]
    assert any(e["action"] == "rollback" and e["version"] == "1.0.0" for e in events)
    assert two_versions.json("show", RPE)["definition"]["version"] == "1.0.0"


def test_rollback_to_a_version_never_deployed_fails(install: Install) -> None:
    result = install("rollback", RPE, "0.9.0")

    assert result.exit_code == 1
    assert "0.9.0" in result.output
    assert _active(install) == "1.0.0"


def _active(installation: Install) -> str:
    rows = {r["id"]: r for r in installation.json("processes")}
    return str(rows[RPE]["active_version"])


def test_a_disabled_process_does_not_run_until_enabled(install: Install) -> None:
    assert install.ok("disable", RPE).stdout.strip() == f"{RPE}: disabled"
    assert install.ok("disable", RPE).stdout.strip() == f"{RPE} was already disabled"
    assert "[disabled]" in install.ok("show", RPE).stdout

    result = install("run", RPE)

    assert result.exit_code == 1
    assert f"robo enable {RPE}" in result.output
    assert install.json("runs") == []

    assert install.ok("enable", RPE).stdout.strip() == f"{RPE}: enabled"
    assert install.ok("enable", RPE).stdout.strip() == f"{RPE} was already enabled"
    rows = {r["id"]: r for r in install.json("processes")}
    assert rows[RPE]["enabled"] is True
    events = [e["action"] for e in install.json("history", RPE)["events"]]
    assert "disable" in events
    assert "enable" in events


# --- Running and reading the ledger ---------------------------------------------------


@pytest.mark.browser
def test_run_json_reports_the_outcomes(ran: Ran) -> None:
    run = ran.run

    assert run["status"] == "completed", run.get("error")
    assert run["items_total"] == 10
    assert (run["succeeded"], run["business_exceptions"], run["application_exceptions"]) == (
        7,
        3,
        0,
    )
    assert run["minutes_saved"] == pytest.approx(7 * 25 + 5)


@pytest.mark.browser
def test_runs_json_lists_the_run(ran: Ran) -> None:
    rows = ran.install.json("runs")

    assert [r["id"] for r in rows] == [ran.run["run_id"]]
    assert rows[0]["process_id"] == RPE
    assert rows[0]["version"] == "1.0.0"
    assert rows[0]["status"] == "completed"
    assert (rows[0]["succeeded"], rows[0]["business_exceptions"]) == (7, 3)
    assert ran.install.json("runs", "--process", "hr-claims-entry") == []
    assert ran.install.json("runs", "--status", "failed") == []
    table = ran.install.ok("runs").stdout
    assert RPE in table


@pytest.mark.browser
def test_run_show_json_has_every_item_and_evidence_on_disk(ran: Ran) -> None:
    detail = ran.install.json("run-show", str(ran.run["run_id"]))

    items = detail["items"]
    assert len(items) == 10
    assert detail["run"]["id"] == ran.run["run_id"]
    assert detail["baseline"]["manual_minutes_per_item"] == 30
    business = [i for i in items if i["status"] == "business_exception"]
    assert len(business) == 3
    for item in business:
        assert item["minutes_saved"] == 0
        assert item["error"]
        assert item["evidence"], item
        for path in item["evidence"]:
            assert Path(path).is_absolute(), path
            assert Path(path).is_file(), path
            assert Path(path).is_relative_to(ran.install.home), path
    successes = [i for i in items if i["status"] == "success"]
    assert len(successes) == 7
    assert all(i["output"]["receipt"].startswith("RCP-") for i in successes)
    assert sum(i["minutes_saved"] for i in items) == pytest.approx(7 * 25)


@pytest.mark.browser
def test_run_show_table_shows_the_baseline_and_items(ran: Ran) -> None:
    text = ran.install.ok("run-show", str(ran.run["run_id"])).stdout

    assert text.startswith(f"run {ran.run['run_id']} · {RPE} 1.0.0 ")
    baseline = next(line for line in text.splitlines() if "baseline:" in line)
    assert "30 min by hand - 5 min left per item (+5 min per run)" in baseline
    assert "Bureau du séjour (sample figures)" in baseline
    assert "2024-75-00117" in text  # the duplicate file, a business exception
    assert "evidence:" in text


@pytest.mark.browser
def test_report_json_counts_the_hours_saved(ran: Ran) -> None:
    rows = ran.install.json("report")

    assert len(rows) == 1
    row = rows[0]
    assert row["process_id"] == RPE
    assert (row["runs"], row["items"], row["succeeded"], row["business_exceptions"]) == (
        1,
        10,
        7,
        3,
    )
    assert row["hours_saved"] == pytest.approx(RPE_HOURS, abs=1e-4)
    assert row["minutes_saved"] == pytest.approx(7 * 25 + 5)

    table = ran.install.ok("report").stdout
    assert "Hours of agent work saved" in table
    assert f"{RPE_HOURS:,.1f}" in table


@pytest.mark.browser
def test_report_for_a_period_without_runs_is_empty(ran: Ran) -> None:
    assert ran.install.json("report", "--since", "2000-01-01", "--until", "2000-01-02") == []

    table = ran.install("report", "--since", "2000-01-01", "--until", "2000-01-02")
    assert table.exit_code == 0
    assert "no runs in this period" in table.output


def test_report_refuses_a_malformed_date(shared: Install) -> None:
    result = shared("report", "--since", "notadate")

    assert result.exit_code == 2
    assert "'notadate' is not a date (YYYY-MM-DD)" in result.output
    assert "--since" in result.output


# --- Bad input is refused before anything is recorded ---------------------------------


def test_run_with_a_missing_input_file_records_nothing(shared: Install, tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"

    result = shared("run", RPE, "--input", str(missing))

    assert result.exit_code != 0
    assert "missing.csv" in result.output
    assert "does not exist" in result.output
    assert shared.json("runs") == []


def test_run_with_a_parameter_without_value_is_a_usage_error(shared: Install) -> None:
    result = shared("run", RPE, "--param", "novalue")

    assert result.exit_code == 2
    assert "'novalue' is not KEY=VALUE" in result.output
    assert shared.json("runs") == []


def test_run_with_an_unknown_parameter_names_the_known_ones(shared: Install) -> None:
    result = shared("run", RPE, "--param", "portal_ulr=http://x")

    assert result.exit_code == 1
    assert "portal_ulr" in result.output
    assert "known: portal_url, username" in result.output
    assert shared.json("runs") == []


def test_run_of_an_unknown_process_says_how_to_list_them(shared: Install) -> None:
    result = shared("run", "unknown-id")

    assert result.exit_code == 1
    assert "unknown-id" in result.output
    assert "robo processes" in result.output


def test_run_show_of_an_unknown_run_fails(shared: Install) -> None:
    result = shared("run-show", "999")

    assert result.exit_code == 1
    assert "no run 999" in result.output
    assert "robo runs" in result.output


def test_run_show_needs_a_number(shared: Install) -> None:
    assert shared("run-show", "abc").exit_code == 2


def test_commands_on_an_unknown_process_fail_cleanly(shared: Install) -> None:
    for args in (
        ("show", "nope"),
        ("history", "nope"),
        ("disable", "nope"),
        ("enable", "nope"),
        ("rollback", "nope", "1.0.0"),
        ("diff", "nope", "1.0.0", "1.1.0"),
    ):
        result = shared(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "nope" in result.output, args
        assert "Traceback" not in result.output, args


# --- Every listing speaks JSON --------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (("processes",), list),
        (("runs",), list),
        (("history", RPE), dict),
        (("secret", "list"), list),
        (("report",), list),
        (("validate", str(PROCESSES)), dict),
        (("deploy", str(PROCESSES)), list),
    ],
    ids=lambda v: v if isinstance(v, type) else " ".join(v)[:30],
)
def test_every_listing_command_prints_valid_json(
    ran: Ran, args: tuple[str, ...], kind: type
) -> None:
    result = ran.install.ok(*args, "--json")

    parsed = json.loads(result.stdout)
    assert isinstance(parsed, kind)
    assert parsed


def test_validate_json_lists_the_samples_and_reports_problems(
    shared: Install, make_process: Any
) -> None:
    valid = shared.json("validate", str(PROCESSES))
    assert valid["valid"] is True
    assert sorted(p["id"] for p in valid["processes"]) == PROCESS_IDS

    broken = make_process("id: Not A Slug\nversion: one\n", name="broken")
    result = shared("validate", str(broken), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["problems"]
    assert all({"file", "field", "message"} <= set(p) for p in report["problems"])

    text = shared("validate", str(broken))
    assert text.exit_code == 1
    assert "problem" in text.output


def test_schema_is_json_and_can_be_written_to_a_file(shared: Install, tmp_path: Path) -> None:
    printed = json.loads(shared.ok("schema").stdout)
    assert "properties" in printed
    assert "baseline" in printed["properties"]

    target = tmp_path / "process.schema.json"
    shared.ok("schema", "-o", str(target))
    assert json.loads(target.read_text(encoding="utf-8")) == printed


# --- Secrets ------------------------------------------------------------------------


def test_a_secret_is_stored_listed_by_name_only_and_deleted(home: Path, sqlite_url: str) -> None:
    value = "Zq9-never-printed"
    installation = Install(home, sqlite_url, env=(("ROBO_SECRET_PORTAL_PASSWORD", None),))

    stored = installation("secret", "set", "portal_password", "--stdin", input=value + "\n")
    assert stored.exit_code == 0, stored.output
    assert "portal_password" in stored.stdout
    assert value not in stored.output

    listed = installation.ok("secret", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["source"]) for r in rows] == [("portal_password", "store")]
    assert rows[0]["updated_at"]
    assert value not in listed.output
    assert value not in installation.ok("secret", "list").output
    assert value.encode() not in (home.parent / "robo.db").read_bytes()

    deleted = installation.ok("secret", "delete", "portal_password")
    assert "deleted" in deleted.stdout
    assert installation.json("secret", "list") == []

    again = installation("secret", "delete", "portal_password")
    assert again.exit_code == 1
    assert "no stored secret 'portal_password'" in again.output


def test_a_secret_in_the_environment_is_listed_as_coming_from_there(
    home: Path, sqlite_url: str
) -> None:
    installation = Install(home, sqlite_url)  # ROBO_SECRET_PORTAL_PASSWORD is set
    installation.ok("secret", "set", "portal_password", "--stdin", input="stored-value")

    listed = installation.ok("secret", "list", "--json")

    rows = json.loads(listed.stdout)
    assert [(r["name"], r["source"]) for r in rows] == [("portal_password", "environment")]
    assert PORTAL_PASSWORD not in listed.output
    assert "stored-value" not in listed.output


def test_a_secret_name_is_checked(home: Path, sqlite_url: str) -> None:
    result = robo(home, sqlite_url, "secret", "set", "not-a-name", "--stdin", input="x")

    assert result.exit_code == 1
    assert "not a valid secret name" in result.output


# --- Help and version ---------------------------------------------------------------

WITH_EXAMPLES = [
    ("validate",),
    ("deploy",),
    ("run",),
    ("report",),
    ("diff",),
    ("rollback",),
    ("schema",),
    ("secret", "set"),
    ("demo",),
    ("portal",),
]
WITHOUT_EXAMPLES = [
    ("processes",),
    ("show",),
    ("history",),
    ("disable",),
    ("enable",),
    ("runs",),
    ("run-show",),
    ("secret",),
    ("secret", "list"),
    ("secret", "delete"),
]


@pytest.mark.parametrize("command", WITH_EXAMPLES + WITHOUT_EXAMPLES, ids=" ".join)
def test_help_of_every_command(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert f"{' '.join(command)} [OPTIONS]" in result.output
    if command in WITH_EXAMPLES:
        assert "Example" in result.output


def test_root_help_lists_every_command_and_examples() -> None:
    result = CliRunner().invoke(cli, ["-h"], catch_exceptions=False)

    assert result.exit_code == 0
    assert "Examples:" in result.output
    for name in ("validate", "deploy", "run", "runs", "run-show", "report", "secret", "demo"):
        assert f"  {name} " in result.output


def test_python_m_robo_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "robo", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert importlib.metadata.version("robo") in proc.stdout
