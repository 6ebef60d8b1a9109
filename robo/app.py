"""The installation as one object: settings, database and services, built once at the edge."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING

from robo.redaction import Redactor
from robo.settings import Settings

# Services are imported where first used: `robo runs` must not pay for Playwright,
# Jinja2 or cryptography, and `robo --help` for nothing at all.
if TYPE_CHECKING:
    from robo.ledger import Ledger
    from robo.registry import Registry
    from robo.runner.run import RunEnvironment
    from robo.secrets import SecretStore
    from robo.storage.database import Database


class Robo:
    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.env = dict(os.environ if env is None else env)
        self.redactor = Redactor()

    @cached_property
    def db(self) -> Database:
        from robo.storage.database import Database

        self.settings.ensure_home()
        return Database(self.settings.effective_database_url)

    @cached_property
    def registry(self) -> Registry:
        from robo.registry import Registry

        return Registry(self.db)

    @cached_property
    def ledger(self) -> Ledger:
        from robo.ledger import Ledger

        return Ledger(self.db, self.redactor)

    @cached_property
    def secrets(self) -> SecretStore:
        from robo.secrets import SecretStore, load_or_create_key

        key = load_or_create_key(self.settings.secret_key_file, self.settings.secret_key)
        return SecretStore(self.db, key, env=self.env, redactor=self.redactor)

    def run_environment(self) -> RunEnvironment:
        from robo.runner.run import RunEnvironment

        return RunEnvironment(
            ledger=self.ledger,
            secret=self.secrets.get,
            redactor=self.redactor,
            region=self.settings.region,
            chromium=self.settings.chromium,
            evidence_dir=self.settings.evidence_dir,
            versions_dir=self.settings.versions_dir,
            heartbeat_seconds=self.settings.heartbeat_seconds,
        )

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.close()
