"""The prepared world, built once per session (see ``support``)."""

from __future__ import annotations

import pytest

from tests.hostile.support import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("hostile-world"))
