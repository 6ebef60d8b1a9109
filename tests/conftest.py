"""Shared fixtures: an isolated installation per test, databases, the sample portal."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from robo.app import Robo
from robo.settings import Settings

POSTGRES_URL = os.environ.get("ROBO_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("ROBO_TEST_REDIS_URL", "")
AMQP_URL = os.environ.get("ROBO_TEST_AMQP_URL", "")
PORTAL_PASSWORD = "s3cret-Portal-pw!"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Service-backed tests run where their services are configured (CI configures them)."""
    needs = {
        "postgres": (bool(POSTGRES_URL), "set ROBO_TEST_POSTGRES_URL to run PostgreSQL tests"),
        "redis": (
            bool(POSTGRES_URL and REDIS_URL),
            "set ROBO_TEST_POSTGRES_URL and ROBO_TEST_REDIS_URL",
        ),
        "rabbitmq": (
            bool(POSTGRES_URL and AMQP_URL),
            "set ROBO_TEST_POSTGRES_URL and ROBO_TEST_AMQP_URL",
        ),
    }
    for item in items:
        for marker, (available, reason) in needs.items():
            if marker in item.keywords and not available:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _english_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests read reports in English unless they choose a language: every region robo
    knows is French, so without this the default would be French everywhere.
    (tests/unit/test_translations.py and the report tests check the French default.)"""
    monkeypatch.setenv("ROBO_LOCALE", "en")


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """CLI commands run in-process configure logging and install a SIGTERM handler."""
    from robo.logging import reset

    handler = signal.getsignal(signal.SIGTERM)
    yield
    reset()
    signal.signal(signal.SIGTERM, handler)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'robo.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the real PostgreSQL server, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'robo.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def settings(home: Path, sqlite_url: str) -> Settings:
    return Settings(home=home, database_url=sqlite_url, region="occitanie")


@pytest.fixture
def robo(settings: Settings) -> Iterator[Robo]:
    app = Robo(settings, env={"ROBO_SECRET_PORTAL_PASSWORD": PORTAL_PASSWORD})
    yield app
    app.close()


@pytest.fixture(scope="session")
def portal() -> Iterator[Any]:
    from robo.demo.portal import PortalConfig, PortalServer

    with PortalServer(PortalConfig(password=PORTAL_PASSWORD)) as server:
        yield server


@pytest.fixture
def fresh_portal(portal: Any) -> Any:
    """The shared portal with its state and injected faults reset."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{portal.url}/api/reset", method="POST")).close()
    return portal


def definition(**overrides: Any) -> dict[str, Any]:
    """A valid declarative definition; tests override what they are about."""
    base: dict[str, Any] = {
        "id": "sample-process",
        "name": "Sample process",
        "version": "1.0.0",
        "description": "A process used by tests.",
        "owner": {"region": "occitanie", "team": "Lab'O", "contact": "labo@example.org"},
        "applications": ["sample-portal"],
        "parameters": {"portal_url": "http://127.0.0.1:1"},
        "secrets": ["portal_password"],
        "items": {"source": "csv", "path": "input/items.csv", "reference": "ref"},
        "bot": {"steps": [{"goto": "{{ params.portal_url }}/"}]},
        "baseline": {
            "manual_minutes_per_item": 10,
            "residual_minutes_per_item": 2,
            "manual_minutes_per_run": 0,
            "measured_by": "Test team",
            "measured_on": "2026-01-15",
        },
        "retry": {"max_attempts": 2, "backoff_seconds": 0},
        "timeouts": {"item_seconds": 30, "run_seconds": 300, "step_seconds": 5},
    }
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


@pytest.fixture
def make_process(tmp_path: Path) -> Callable[..., Path]:
    """Write a process folder: ``make_process(definition_dict_or_text, files={...})``."""

    def make(
        spec: dict[str, Any] | str, files: dict[str, str | bytes] | None = None, name: str = ""
    ) -> Path:
        folder = (
            tmp_path / "processes" / (name or (spec["id"] if isinstance(spec, dict) else "process"))
        )
        folder.mkdir(parents=True, exist_ok=True)
        text = (
            spec
            if isinstance(spec, str)
            else yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
        )
        (folder / "process.yaml").write_text(text, encoding="utf-8")
        default_files: dict[str, str | bytes] = {
            "input/items.csv": "ref,name\nA1,first\nA2,second\n"
        }
        for rel, content in {**default_files, **(files or {})}.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return folder

    return make


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Callable[..., Robo]]:
    """Separate regional installations: ``installation("guyane")``, each with its own database."""
    opened: list[Robo] = []

    def make(region: str, **settings: Any) -> Robo:
        home = tmp_path / "regions" / region
        home.mkdir(parents=True, exist_ok=True)
        app = Robo(
            Settings(
                home=home, database_url=f"sqlite:///{home / 'robo.db'}", region=region, **settings
            ),
            env={"ROBO_SECRET_PORTAL_PASSWORD": PORTAL_PASSWORD},
        )
        app.registry.actor = "tester"
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()
