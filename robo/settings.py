"""Settings: built once at the edge (the CLI, a test) and passed down.

Sources, strongest first: keyword arguments, ``ROBO_*`` environment variables,
``robo.toml`` (``ROBO_CONFIG`` or ``./robo.toml``), then the defaults below.

``load_settings`` is the edge: every mistake in those sources (TOML syntax, a
``ROBO_CONFIG`` that does not exist, an unknown region or log level, a database URL
naming no database, a ``ROBO_HOME`` that is not a writable folder) becomes one
ConfigurationError saying which source holds it and what to do.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tempfile
import tomllib
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


LOG_LEVELS = ("debug", "info", "warning", "error")


def _config_file() -> Path:
    return Path(os.environ.get("ROBO_CONFIG", "robo.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROBO_", extra="forbid", allow_inf_nan=False)

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
        default=10, gt=0, le=3_600, description="How often a run says it is alive."
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
        le=30 * 86_400,
        description="Seconds before a broker redelivers a task a dead worker held (Redis).",
    )
    scheduler_lease_seconds: float = Field(
        default=15,
        gt=0,
        le=3_600,
        description="A standby takes over this long after the leader stops.",
    )
    abandon_after_seconds: float = Field(
        default=60,
        gt=0,
        le=86_400,
        description="A run silent this long is abandoned by the scheduler.",
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
    trace: Literal["on-first-retry", "always", "retain-on-failure", "off"] = Field(
        default="on-first-retry",
        description=(
            "Playwright traces for processes whose definition sets no evidence.trace "
            "(a definition's own choice wins): on-first-retry, always, retain-on-failure, off."
        ),
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
        le=8_784,
        description="Yearly work time of one full-time post, for FTE figures (French public service: 1,607 h).",
    )
    hour_cost_eur: float | None = Field(
        default=None,
        gt=0,
        le=1_000,
        description="What one agent hour costs this region in euros (salary and overheads), "
        "for the euros in reports; each run records the value it started with.",
    )
    hour_cost_set_by: str = Field(
        default="", max_length=255, description="Who set hour_cost_eur (shown with it)."
    )
    hour_cost_set_on: dt.date | None = Field(
        default=None, description="When hour_cost_eur was set (YYYY-MM-DD)."
    )
    locale: str = Field(
        default="",
        description="Language of reports and of the demo's summary: fr or en; empty: the "
        "region's (French for French regions). --locale overrides it per command.",
    )
    alerts_file: Path | None = Field(
        default=None,
        description="Alert rules and channels (TOML, docs/alerts.md); empty: "
        "ROBO_HOME/alerts.toml if it exists, else no alerts.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="warning", description="debug, info, warning or error"
    )
    log_format: str = Field(default="console", description="console or json")

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        from robo.regions import REGIONS

        if value in REGIONS:
            return value
        close = difflib.get_close_matches(value, list(REGIONS), n=3, cutoff=0.5)
        suggestion = f"did you mean {' or '.join(close)}? " if close else ""
        raise ValueError(
            f"unknown region {value!r}; {suggestion}known regions: {', '.join(sorted(REGIONS))}"
        )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _names_a_database(cls, value: str) -> str:
        if not value:
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a database URL; e.g. postgresql+psycopg://user@host:5432/robo or "
                "sqlite:////var/lib/robo/robo.db"
            ) from None
        if not url.database or url.database == ":memory:":
            example = (
                "sqlite:////var/lib/robo/robo.db"
                if url.get_backend_name() == "sqlite"
                else f"{url.drivername}://user@host:5432/robo"
            )
            raise ValueError(
                "the URL names no database (robo would create its tables in whatever "
                f"database the server or driver picks); name one, e.g. {example}"
            )
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

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        from robo.i18n import parse_locale

        return parse_locale(value) if value.strip() else ""

    @property
    def report_locale(self) -> str:
        """The language managers read: ROBO_LOCALE, else the region's."""
        from robo.regions import region

        return self.locale or region(self.region).locale

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

    @property
    def effective_alerts_file(self) -> Path:
        """The alert rules file: ``alerts_file``, else ROBO_HOME/alerts.toml."""
        return self.alerts_file or self.home / "alerts.toml"

    def ensure_home(self) -> None:
        """Create the data folder; a ConfigurationError naming it if that is impossible."""
        check_home(self.home)


def check_home(home: Path) -> None:
    """ROBO_HOME is a folder this user can write (created if missing)."""
    where = f"the data folder {home} (ROBO_HOME or --home)"
    try:
        if home.exists() and not home.is_dir():
            kind = "a file" if home.is_file() else "not a folder (a device or special file)"
            raise ConfigurationError(f"{where} is {kind}; point ROBO_HOME at a folder")
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home, prefix=".robo-probe-"):
            pass
    except ConfigurationError:
        raise
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(
            f"cannot write {where}: {reason}; choose a folder this user may write"
        ) from None


def _read_config(path: Path, explicit: bool) -> dict[str, Any]:
    """The TOML file's content, checked ({} when robo.toml is simply absent)."""
    try:
        if not path.exists():
            if explicit:
                raise ConfigurationError(
                    f"ROBO_CONFIG names {path}, which does not exist; fix the path or unset "
                    "ROBO_CONFIG"
                )
            return {}
        text = path.read_text(encoding="utf-8")
    except ConfigurationError:
        raise
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(f"cannot read the configuration file {path}: {reason}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        where = f"{path}:{found.group(1)}" if found else str(path)
        reason = message[: found.start()].strip() if found else message
        raise ConfigurationError(
            f"{where}: invalid TOML: {reason}; hint: quote text values "
            '(region = "guyane") and check the brackets of [sections]'
        ) from None


def _source(field: str, overrides: dict[str, Any], config: dict[str, Any], path: Path) -> str:
    if field in overrides:
        return f"--{field.replace('_', '-')}"
    if f"ROBO_{field.upper()}" in os.environ:
        return f"ROBO_{field.upper()}"
    if field in config:
        return f"{field} in {path}"
    return field


def load_settings(**overrides: Any) -> Settings:
    """Build settings from every source, or one ConfigurationError that says what to fix."""
    path = _config_file()
    config = _read_config(path, explicit="ROBO_CONFIG" in os.environ)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_source(str(err['loc'][0]), overrides, config, path) if err['loc'] else 'settings'}"
            f": {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None
    except (OSError, ValueError) as exc:  # the file changed between the two reads
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    settings.ensure_home()
    return settings
