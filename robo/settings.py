"""Settings: built once at the edge (the CLI, a test) and passed down.

Sources, strongest first: keyword arguments, ``ROBO_*`` environment variables,
``robo.toml`` (``ROBO_CONFIG`` or ``./robo.toml``), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_path
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from robo.errors import ConfigurationError

DEFAULT_CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def _config_file() -> Path:
    return Path(os.environ.get("ROBO_CONFIG", "robo.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROBO_", extra="forbid")

    home: Path = Field(
        default_factory=lambda: user_data_path("robo"),
        description="Data folder: database, evidence, secret key.",
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite in ROBO_HOME/robo.db."
    )
    region: str = Field(default="occitanie", description="Region recorded on every run.")
    timezone: str = Field(default="", description="Time zone for schedules; empty: the region's.")
    calendar: str = Field(
        default="", description="Holiday calendar (FR, FR-973, FR-57...); empty: the region's."
    )
    bot_slots: int = Field(
        default=2, ge=1, le=64, description="Bots running at once on this machine."
    )
    heartbeat_seconds: float = Field(
        default=10, gt=0, description="How often a run says it is alive."
    )
    executor: Literal["local", "celery"] = Field(
        default="local",
        description="Where scheduled runs execute: this machine, or Celery workers.",
    )
    broker_url: str = Field(
        default="", description="Celery broker for executor 'celery': redis://... or amqp://..."
    )
    broker_queue: str = Field(default="robo.runs", description="Celery queue the workers consume.")
    broker_visibility_timeout: float = Field(
        default=3600,
        gt=0,
        description="Seconds before a broker redelivers a task a dead worker held (Redis).",
    )
    scheduler_lease_seconds: float = Field(
        default=15, gt=0, description="A standby takes over this long after the leader stops."
    )
    abandon_after_seconds: float = Field(
        default=60, gt=0, description="A run silent this long is abandoned by the scheduler."
    )
    database_busy_seconds: float = Field(
        default=30, gt=0, le=3600, description="How long a SQLite write waits for another's lock."
    )
    ledger_retry_seconds: float = Field(
        default=60,
        ge=0,
        le=86400,
        description=(
            "How long an outcome write is retried (with backoff) before it is journaled to "
            "ROBO_HOME/journal and replayed when the database answers again."
        ),
    )
    chromium: str = Field(
        default="", description="Chromium executable; empty means look for a system one."
    )
    secret_key: str = Field(
        default="", description="Fernet key for secrets; empty means ROBO_HOME/secret.key."
    )
    catalogue: Path | None = Field(
        default=None, description="Folder of bundles offered to this region (robo replicas)."
    )
    fte_hours_per_year: float = Field(
        default=1607,
        gt=0,
        description="Yearly work time of one full-time post, for FTE figures (French public service: 1,607 h).",
    )
    log_level: str = Field(default="warning", description="debug, info, warning or error")
    log_format: str = Field(default="console", description="console or json")

    @field_validator("region")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c == "-" for c in value) or value != value.lower():
            raise ValueError("a region is a lower-case slug such as 'ile-de-france'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from robo.regions import check_timezone

        return check_timezone(value) if value else value

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str) -> str:
        from robo.regions import check_calendar

        return check_calendar(value) if value else value

    @property
    def effective_timezone(self) -> str:
        from robo.regions import region

        return self.timezone or region(self.region).timezone

    @property
    def effective_calendar(self) -> str:
        from robo.regions import region

        return self.calendar or region(self.region).calendar

    @field_validator("log_format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in ("console", "json"):
            raise ValueError("log_format is 'console' or 'json'")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'robo.db'}"

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"

    @property
    def versions_dir(self) -> Path:
        """Where immutable versions are unpacked for execution."""
        return self.home / "versions"

    @property
    def keys_dir(self) -> Path:
        """This region's Ed25519 signing key (bundles, metrics)."""
        return self.home / "keys"

    @property
    def secret_key_file(self) -> Path:
        return self.home / "secret.key"

    def ensure_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into a readable ConfigurationError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(
            f"invalid settings ({problems}); check ROBO_* variables and {_config_file()}"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot read {_config_file()}: {exc}") from exc
