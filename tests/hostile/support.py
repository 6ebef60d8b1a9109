"""What the hostile tests share: seeded settings, prepared installations, the promise checked.

The prepared world is built once per session through robo's own API:

- ``guyane``: a region with a signing key, a deployed process, finished runs; it
  provides a valid bundle (with its items file) and a valid metrics file;
- ``occitanie``: every sample process deployed, the guyane process imported from
  that bundle, an overlay on it, guyane's key trusted;
- ``national``: guyane's key trusted and one metrics file already imported.

Each example works on a fresh copy of a home folder (its SQLite database inside),
so a success in one example never changes what the next one starts from.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, settings
from hypothesis.control import currently_in_test_context

from robo.app import Robo
from robo.canonical import signed_bytes
from robo.cli.main import cli
from robo.ledger import ItemOutcome
from robo.loader import load_many, load_process
from robo.replication import signing
from robo.replication.bundles import export_bundle, import_bundle
from robo.replication.metrics import export_metrics, import_metrics
from robo.replication.overlays import apply_overlays
from robo.settings import Settings
from tests.conftest import definition

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
SAMPLES = sorted(p.parent.name for p in PROCESSES.glob("*/process.yaml"))

# Seeded and bounded: the same cases on every run, none allowed to take long. Each test
# sets its own max_examples; together they generate well over 1,000 cases.
HOSTILE = settings(
    derandomize=True,
    database=None,
    deadline=dt.timedelta(seconds=10),
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)

# No robo.toml from the working directory, no ROBO_* from the developer's shell.
BASE_ENV: dict[str, str | None] = {
    "ROBO_CONFIG": os.devnull,
    **{name: None for name in os.environ if name.startswith("ROBO_") and name != "ROBO_CONFIG"},
}
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|^\s+File "', re.M)
MAX_ERROR_LINES = 60  # one line per problem and its hint; a fuzzed file rarely has more


# --- the prepared world -----------------------------------------------------------------

GUYANE_BOT = "def process(ctx):\n    ctx.output['done'] = 'yes'\n"
GUYANE_ITEMS = "ref,name,birth_date\nG1,Jeanne DUPONT,1970-01-02\nG2,Marc LEROY,1981-03-04\n"
OVERLAY = """\
process: guyane-process
parameters:
  portal_url: https://portail.guyane.example
timezone: America/Cayenne
calendar: FR-973
baseline:
  manual_minutes_per_item: 20
  residual_minutes_per_item: 4
  manual_minutes_per_run: 0
  measured_by: Cellule RPA
  measured_on: 2026-02-17
"""


class World:
    """What build_world prepared (a plain class: hypothesis prints it with each failure)."""

    def __init__(
        self, root: Path, bundle: bytes, metrics: bytes, key: Ed25519PrivateKey, public: str
    ) -> None:
        self.root = root
        self.occitanie = root / "occitanie"
        self.national = root / "national"
        self.bundle = bundle
        self.metrics = metrics
        self.guyane_key = key
        self.guyane_public = public

    def __repr__(self) -> str:
        return f"World({self.root})"


def _installation(home: Path, region: str) -> Robo:
    home.mkdir(parents=True, exist_ok=True)
    robo = Robo(
        Settings(home=home, database_url=f"sqlite:///{home / 'robo.db'}", region=region),
        env={"ROBO_SECRET_PORTAL_PASSWORD": "x"},
    )
    robo.registry.actor = "hostile"
    return robo


def guyane_process(root: Path, **overrides: Any) -> Path:
    folder = root / "guyane-process"
    (folder / "input").mkdir(parents=True, exist_ok=True)
    spec = definition(
        id="guyane-process",
        owner={"region": "guyane", "team": "Cellule RPA", "contact": "rpa@guyane.example"},
        bot={"entrypoint": "bot:process"},
        include=["README.md"],
        **overrides,
    )
    (folder / "process.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), "utf-8")
    (folder / "input" / "items.csv").write_text(GUYANE_ITEMS, "utf-8")
    (folder / "bot.py").write_text(GUYANE_BOT, "utf-8")
    (folder / "README.md").write_text("# Guyane process\n", "utf-8")
    return folder


def _record_runs(robo: Robo) -> None:
    version = robo.registry.active("guyane-process")
    start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    for run in range(3):
        run_id = robo.ledger.start_run(
            process_id="guyane-process",
            version_id=version.version_id,
            version=version.definition.version,
            baseline=version.definition.baseline,
            region="guyane",
            parameters={},
        )
        for position in range(1, 4 + run):
            robo.ledger.record_item(
                run_id,
                ItemOutcome(
                    position=position,
                    reference=f"2026-973-{run:02d}{position:03d}",
                    status="success" if position % 3 else "business_exception",
                    attempts=1,
                    started_at=start,
                    finished_at=start + dt.timedelta(seconds=2),
                    data={"name": "DUPONT"},
                    output={},
                ),
            )
        robo.ledger.finish_run(run_id, "completed")


def _checkpoint(database: Path) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def build_world(root: Path) -> World:
    guyane = _installation(root / "guyane", "guyane")
    guyane.keys.generate()
    guyane.registry.deploy(load_process(guyane_process(root / "src")))
    _record_runs(guyane)
    bundle_path = root / "guyane-process-1.0.0.robo.zip"
    export_bundle(
        guyane.registry, guyane.keys, "guyane-process", None, bundle_path, with_items=True
    )
    metrics_path = root / "guyane.json"
    export_metrics(guyane.ledger, guyane.keys, metrics_path)
    public = guyane.keys.listing().local_key or ""
    key = signing.load_private(root / "guyane", "guyane")
    guyane.close()

    occitanie = _installation(root / "occitanie", "occitanie")
    occitanie.keys.generate()
    occitanie.keys.trust("guyane", public)
    for loaded in load_many([PROCESSES]):
        occitanie.registry.deploy(loaded)
    import_bundle(occitanie.db, occitanie.registry, occitanie.keys, bundle_path)
    overlay = root / "overlays" / "guyane-process.yaml"
    overlay.parent.mkdir()
    overlay.write_text(OVERLAY, "utf-8")
    apply_overlays(occitanie.db, occitanie.registry, [overlay])
    occitanie.secrets.set("portal_password", "hostile-secret")
    occitanie.close()

    national = _installation(root / "national", "national")
    national.keys.trust("guyane", public)
    import_metrics(national.ledger, national.keys, [metrics_path])
    national.close()

    for home in ("occitanie", "national"):
        _checkpoint(root / home / "robo.db")
    return World(root, bundle_path.read_bytes(), metrics_path.read_bytes(), key, public)


# --- one example ------------------------------------------------------------------------


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="robo-hostile-") as folder:
        yield Path(folder)


def copy_home(home: Path, into: Path) -> Path:
    target = into / "home"
    shutil.copytree(home, target)
    return target


def dump(home: Path) -> list[str]:
    """The whole database as SQL: what a refusal must leave exactly as it was."""
    connection = sqlite3.connect(home / "robo.db")
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def run_cli(
    home: Path | None,
    args: Sequence[str],
    *,
    input: str | bytes | None = None,
    env: dict[str, str | None] | None = None,
) -> Result:
    """robo in-process, on ``home`` and its database (or with no installation options)."""
    options = (
        ["--home", str(home), "--database-url", f"sqlite:///{home / 'robo.db'}"] if home else []
    )
    runner = CliRunner(env={**BASE_ENV, **(env or {})})
    return runner.invoke(cli, [*options, *args], input=input, catch_exceptions=True)


def assert_clean(
    result: Result,
    before: list[str] | None = None,
    after: list[str] | None = None,
    *,
    as_json: bool = False,
) -> None:
    """The promise: success, or a short error and a non-zero exit; never a traceback;
    after a refusal the database is exactly as before. ``as_json``: the command was
    asked for JSON, so a refusal may be a JSON report instead of an error line."""
    output = result.output
    if currently_in_test_context():  # --hypothesis-show-statistics: refused vs accepted
        event(f"exit {result.exit_code}")
    assert not TRACEBACK.search(output), output
    exception = result.exception
    assert exception is None or isinstance(exception, SystemExit), repr(exception)
    # 70 is the safety net of robo.cli.main: an exception robo did not explain (a bug).
    assert result.exit_code in (0, 1, 2), f"exit {result.exit_code}: {output}"
    if result.exit_code != 0:
        if as_json and output.lstrip().startswith("{"):
            report = json.loads(result.stdout)
            assert report.get("problems") or report.get("error"), output
        else:
            assert re.search(r"^(error: |Error: |Usage: )", output, re.M), output
            assert len(output.strip().splitlines()) <= MAX_ERROR_LINES, output
        if before is not None:
            assert after == before, f"a refusal changed the database: {output}"


# --- rewriting signed documents as an attacker holding the key would ---------------------


def resign_metrics(document: Any, key: Ed25519PrivateKey) -> bytes:
    document = json.loads(json.dumps(document, default=str))  # dates and such as text
    if isinstance(document, dict) and isinstance(document.get("manifest"), dict):
        try:
            body = signed_bytes(document["manifest"])
        except (ValueError, TypeError):
            body = b""
        document = {**document, "signature": signing.sign(key, body)}
    return json.dumps(document, default=str).encode()


def yaml_text(data: Any) -> str:
    """YAML as an author might write it; non-ASCII escaped so lone surrogates survive."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=False, width=1000)
