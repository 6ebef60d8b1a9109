"""Fixtures of the integration tests that enter residence permits in the sample portal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from robo.storage.database import Database
from tests.integration.permits_support import ROWS, Robo, portal_api


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Robo:
    home = tmp_path / "home"
    home.mkdir()
    return Robo(home, database_url)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, migrate=False)
    yield database
    database.engine.dispose()


@pytest.fixture
def app(fresh_portal: Any) -> Iterator[Any]:
    """The sample portal, reset; held requests are let go afterwards."""
    yield fresh_portal
    portal_api(fresh_portal, "/api/faults", {"hold": None, "release": True})


@pytest.fixture
def permits_csv(tmp_path: Path) -> Path:
    path = tmp_path / "permits.csv"
    lines = ["file_number,last_name,first_name,birth_date,nationality,permit_type"]
    lines += [",".join(row) for row in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
