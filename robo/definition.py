"""The process definition: pydantic models of ``process.yaml`` and their JSON Schema.

A definition is data only. Loading it from files (with line numbers for errors)
lives in ``robo.loader``; running it lives in ``robo.runner``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from robo import crontab
from robo.step_models import NAME, STEP_KINDS, FillStep, Model, ScrapeTable, Step, walk_steps

__all__ = ["NAME", "STEP_KINDS", "Model", "ScrapeTable", "Step"]  # and the models below

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$"

# --- bounds: every number is finite and within these (docs/process-format.md, "Bounds") ---
MAX_MINUTES = 10_080  # a week: manual minutes per item or per run
MAX_ITEM_SECONDS = 86_400  # a day
MAX_RUN_SECONDS = 604_800  # a week
MAX_STEP_SECONDS = 3_600  # an hour (Playwright timers are 32-bit milliseconds)
MIN_STEP_SECONDS = 0.1  # Playwright reads 0 as "no time limit"
MIN_EVERY_MINUTES = 0.05  # 3 seconds: the scheduler checks its loop about every second
MAX_EVERY_MINUTES = 525_600  # a year
MAX_GRACE_MINUTES = 10_080
MAX_QUEUE_MIN_ITEMS = 100_000
MAX_PARAMETER_NUMBER = 10**15  # |value| of a numeric parameter
MAX_LABEL = 255  # names, teams, versions' texts stored in database columns
MAX_VERSION = 64
MAX_PATH_BYTES = 255
MAX_PATH_PARTS = 10  # folders deep, so that a bundle can carry the file
MAX_FILES = 200  # include entries


def relative_path(value: str) -> str:
    """A path inside the process folder: relative, no '..', no backslashes, bounded."""
    path = PurePosixPath(value)
    if "\\" in value or path.is_absolute() or ".." in path.parts or not value.strip():
        raise ValueError(
            f"'{value}' escapes the process folder; use a path relative to the folder "
            "that holds process.yaml, without '..'"
        )
    if "\0" in value:
        raise ValueError("a path cannot contain a NUL character")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise ValueError(f"a path is at most {MAX_PATH_BYTES} bytes long; use a shorter name")
    if len(path.parts) > MAX_PATH_PARTS:
        raise ValueError(f"a path is at most {MAX_PATH_PARTS} folders deep")
    return value


Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL)]


class Owner(Model):
    region: Annotated[str, Field(pattern=SLUG, description="Region that owns the process.")]
    team: str = Field(max_length=MAX_LABEL)
    contact: str = Field(
        max_length=MAX_LABEL, description="E-mail address or name to contact about this process."
    )


class Baseline(Model):
    """How long the work takes by hand: the basis of every minute of time saved."""

    manual_minutes_per_item: float = Field(
        gt=0, le=MAX_MINUTES, description="Agent minutes for one item by hand."
    )
    residual_minutes_per_item: float = Field(
        default=0,
        ge=0,
        le=MAX_MINUTES,
        description="Agent minutes still needed per item after automation.",
    )
    manual_minutes_per_run: float = Field(
        default=0,
        ge=0,
        le=MAX_MINUTES,
        description="Agent minutes saved once per run (e.g. opening the tools).",
    )
    measured_by: str = Field(
        min_length=1, max_length=MAX_LABEL, description="Who measured the manual time."
    )
    measured_on: dt.date = Field(description="When it was measured (YYYY-MM-DD).")

    @model_validator(mode="after")
    def _residual_below_manual(self) -> Baseline:
        if self.residual_minutes_per_item > self.manual_minutes_per_item:
            raise ValueError(
                "residual_minutes_per_item cannot exceed manual_minutes_per_item: "
                "automation would cost time instead of saving it"
            )
        return self

    @property
    def minutes_saved_per_item(self) -> float:
        return self.manual_minutes_per_item - self.residual_minutes_per_item


class RetryPolicy(Model):
    max_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts per item, first included."
    )
    backoff_seconds: float = Field(default=1.0, ge=0, le=600, description="Pause between attempts.")
    max_runs: int = Field(
        default=3,
        ge=1,
        le=20,
        description=(
            "Runs that may try a queue item ending in an application exception; after the "
            "last, it goes to the worklist."
        ),
    )


class Timeouts(Model):
    item_seconds: float = Field(
        default=120, ge=1, le=MAX_ITEM_SECONDS, description="Hard limit for one attempt."
    )
    run_seconds: float = Field(
        default=3600, ge=1, le=MAX_RUN_SECONDS, description="Hard limit for the whole run."
    )
    step_seconds: float = Field(
        default=15,
        ge=MIN_STEP_SECONDS,
        le=MAX_STEP_SECONDS,
        description="Default wait for one page action (Playwright timeout).",
    )


class ItemSource(Model):
    """Where work items come from, and which field identifies one."""

    source: Literal["csv", "xlsx", "json", "bot", "queue"] = Field(
        description=(
            "csv/xlsx/json read a file into the queue; bot: the bot produces them; queue: "
            "the process only takes what others add to its queue (a performer)."
        )
    )
    path: str | None = Field(
        default=None, description="Default input file, relative to the process folder."
    )
    reference: str = Field(
        min_length=1,
        max_length=MAX_LABEL,
        description="Field holding each item's unique reference.",
    )
    sheet: str | None = Field(
        default=None, max_length=MAX_LABEL, description="xlsx only: sheet name (default: first)."
    )

    @field_validator("path")
    @classmethod
    def _inside_folder(cls, value: str | None) -> str | None:
        return value if value is None else relative_path(value)

    @model_validator(mode="after")
    def _path_fits_source(self) -> ItemSource:
        if self.source in ("bot", "queue") and self.path:
            raise ValueError(f"items from source '{self.source}' take no 'path'")
        if self.sheet and self.source != "xlsx":
            raise ValueError("'sheet' only applies to xlsx input")
        return self


PythonRef = Annotated[
    str,
    Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"),
]


class Bot(Model):
    """Either a Python entry point or a list of declarative steps."""

    entrypoint: PythonRef | None = Field(
        default=None,
        description="'module:function' in the process folder, called once per item with a context.",
    )
    items: PythonRef | None = Field(
        default=None,
        description="Python form, items source 'bot': 'module:function' yielding item dicts.",
    )
    setup: list[Step] = Field(
        default_factory=list,
        description="Steps run once per browser context before the first item (e.g. log in).",
    )
    steps: list[Step] | None = Field(default=None, description="Declarative form: steps per item.")
    verify: list[Step] | PythonRef | None = Field(
        default=None,
        description=(
            "Was this item's work already done in the application? Run before redoing an item "
            "whose run died: steps (done if they all pass; a fail_if means not done) or a Python "
            "'module:function' returning True/False. Without it such an item becomes uncertain."
        ),
    )
    scrape: ScrapeTable | None = Field(
        default=None, description="Declarative form, items source 'bot': table to read items from."
    )

    @field_validator("setup", "steps", "verify", mode="before")
    @classmethod
    def _known_step_kinds(cls, steps: Any) -> Any:
        if isinstance(steps, list):
            for step in steps:
                if isinstance(step, dict) and len(step) == 1:
                    (kind,) = step
                    if kind not in STEP_KINDS:
                        raise ValueError(
                            f"unknown step '{kind}'; known steps: {', '.join(STEP_KINDS)}"
                        )
                elif isinstance(step, dict):
                    raise ValueError(f"a step has exactly one key, got {sorted(step)}")
        return steps

    @model_validator(mode="after")
    def _one_form(self) -> Bot:
        if (self.entrypoint is None) == (self.steps is None):
            raise ValueError(
                "a bot has exactly one of 'entrypoint' (Python) or 'steps' (declarative)"
            )
        if self.items and self.scrape:
            raise ValueError(
                "give the bot's items either as 'items' (Python) or 'scrape', not both"
            )
        if isinstance(self.verify, str) and self.steps is not None:
            raise ValueError("a declarative bot verifies with steps: 'verify' takes a step list")
        return self

    @property
    def verify_ref(self) -> str | None:
        return self.verify if isinstance(self.verify, str) else None

    @property
    def module_files(self) -> list[str]:
        """Python files the bot needs, relative to the process folder."""
        names = {ref.split(":")[0] for ref in (self.entrypoint, self.items, self.verify_ref) if ref}
        return sorted(name.replace(".", "/") + ".py" for name in names)


class QueueTrigger(Model):
    """Start runs when enough items wait in the process's queue."""

    min_items: int = Field(
        ge=1, le=MAX_QUEUE_MIN_ITEMS, description="Start a run once this many items wait."
    )
    max_runs: int = Field(default=1, ge=1, le=50, description="Runs of the process at once.")


class ScheduleEntry(Model):
    cron: str | None = Field(
        default=None, max_length=MAX_LABEL, description="Five-field cron, e.g. '0 7 * * mon-fri'."
    )
    every_minutes: float | None = Field(
        default=None,
        ge=MIN_EVERY_MINUTES,
        le=MAX_EVERY_MINUTES,
        description="Interval in minutes, from 0.05 (3 seconds) to a year.",
    )
    queue: QueueTrigger | None = Field(
        default=None, description="Queue trigger, e.g. {min_items: 20, max_runs: 2}."
    )

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleEntry:
        given = [k for k in ("cron", "every_minutes", "queue") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a schedule entry has exactly one of 'cron', 'every_minutes' or 'queue'"
            )
        if self.queue is not None:
            return self
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(
                f"cron '{self.cron}' must have 5 fields: minute hour day month weekday"
            )
        crontab.check(self.cron, self.every_minutes)
        return self

    @property
    def is_queue(self) -> bool:
        return self.queue is not None

    @property
    def is_cron(self) -> bool:
        return self.cron is not None

    def describe(self) -> str:
        if self.queue is not None:
            return f"queue >= {self.queue.min_items} items, <= {self.queue.max_runs} runs"
        return crontab.describe(self.cron, self.every_minutes)

    def key(self, index: int, timezone: str) -> str:
        """The entry's stable job key (see ``robo.crontab.trigger_key``)."""
        return crontab.trigger_key(index, self.cron, self.every_minutes, timezone)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WORKING_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class Window(Model):
    """When the target application is open: runs outside it are skipped and recorded."""

    start: dt.time = Field(description="Local time, quoted: '07:00'.")
    end: dt.time = Field(description="Local time, quoted: '19:00' (exclusive).")
    days: list[Weekday] = Field(
        default_factory=lambda: list(WORKING_DAYS),
        description="Days the application is open.",
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_time(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            # YAML 1.1 reads an unquoted 19:00 as the number 1140 (base 60); pydantic would
            # read a number as seconds since midnight in UTC.
            raise ValueError("write times in quotes, e.g. '07:00', so YAML keeps them as text")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start >= self.end:
            raise ValueError("window start must be before its end (windows do not cross midnight)")
        return self


MAX_EUROS = 100_000_000.0


class Cost(Model):
    """What the robot cost to build and costs to run: weighed against the euros it saves."""

    build_days: float = Field(ge=0, le=10_000, description="Days of work it took to build.")
    build_eur: float = Field(ge=0, le=MAX_EUROS, description="What building it cost, in euros.")
    run_eur_per_year: float = Field(
        default=0,
        ge=0,
        le=MAX_EUROS,
        description="Yearly running cost in euros (licences, hosting, maintenance).",
    )


class Schedule(Model):
    """When a process runs; overridable per region by an overlay."""

    triggers: list[ScheduleEntry] = Field(min_length=1)
    timezone: str | None = Field(
        default=None, max_length=MAX_LABEL, description="IANA zone; default: the region's."
    )
    calendar: str | None = Field(
        default=None,
        max_length=MAX_LABEL,
        description="Holiday calendar (FR, FR-973, FR-57...); default: the region's.",
    )
    skip_holidays: bool = True
    window: Window | None = None
    missed: Literal["run_once", "each", "skip"] = Field(
        default="run_once",
        description=(
            "Fires missed while no scheduler ran: run_once = one late run if within the grace "
            "period, each = every missed fire within it, skip = none."
        ),
    )
    grace_minutes: float = Field(default=60, ge=0, le=MAX_GRACE_MINUTES)
    overlap: Literal["skip", "allow"] = Field(
        default="skip", description="skip: never two runs of this process at once."
    )
    on_abandoned: Literal["retry_remaining", "leave"] = Field(
        default="retry_remaining",
        description="When a scheduled run's runner died: run its unprocessed items again, or not.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        from robo.regions import check_timezone

        return value if value is None else check_timezone(value)

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, value: str | None) -> str | None:
        from robo.regions import check_calendar

        return value if value is None else check_calendar(value)


TRACE_POLICIES = ("on-first-retry", "always", "retain-on-failure", "off")
TracePolicy = Literal["on-first-retry", "always", "retain-on-failure", "off"]


class Evidence(Model):
    screenshot_on_failure: bool = True
    trace: TracePolicy | None = Field(
        default=None,
        description=(
            "When to record a Playwright trace: on-first-retry (only the item's first retry "
            "is traced), always (every attempt, kept), retain-on-failure (every attempt, kept "
            "when it fails), off. Unset: the installation's ROBO_TRACE (default on-first-retry)."
        ),
    )
    trace_on_failure: bool = Field(
        default=True,
        description="Before `trace`: false is `trace: off`; true leaves the choice to `trace`.",
    )
    trace_snapshots: bool = Field(
        default=True,
        description=(
            "Record DOM snapshots in traces (the most useful part of a trace); costs 10-20 % "
            "of browser time per item, see docs/benchmarks.md."
        ),
    )

    @model_validator(mode="after")
    def _one_trace_choice(self) -> Evidence:
        if not self.trace_on_failure and self.trace not in (None, "off"):
            raise ValueError(
                f"evidence.trace is '{self.trace}' but evidence.trace_on_failure is false "
                "(which means trace: off); keep evidence.trace only"
            )
        return self

    @property
    def trace_policy(self) -> TracePolicy | None:
        """The definition's own trace policy; None leaves it to the installation (ROBO_TRACE)."""
        return "off" if not self.trace_on_failure else self.trace


class QueueSettings(Model):
    """The process's work queue: its own by default, or one another process feeds."""

    name: Annotated[str, Field(pattern=SLUG)] | None = Field(
        default=None, description="Queue to take items from (default: the process id)."
    )
    unique: Literal["refuse", "after_business_exception"] = Field(
        default="refuse",
        description=(
            "A reference already queued is refused (default), or accepted again once its "
            "earlier item was handed back as a business exception."
        ),
    )


class ProcessDefinition(Model):
    """A robo process: what it automates, how, on which items, and what it saves."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"$id": "https://robo.example/process.schema.json"},
    )

    id: Annotated[str, Field(pattern=SLUG, description="Unique slug, e.g. 'invoice-check'.")]
    name: str = Field(min_length=1, max_length=MAX_LABEL)
    version: Annotated[
        str,
        Field(
            pattern=SEMVER, max_length=MAX_VERSION, description="Semantic version, e.g. '1.2.0'."
        ),
    ]
    description: str = ""
    owner: Owner
    applications: list[Label] = Field(
        min_length=1, max_length=100, description="Applications the bot touches."
    )
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Defaults, overridable per region and per run."
    )
    secrets: list[Annotated[str, Field(pattern=NAME)]] = Field(
        default_factory=list, description="Names of the secrets the bot may read (never values)."
    )
    items: ItemSource
    bot: Bot
    baseline: Baseline
    cost: Cost | None = None
    retry: RetryPolicy = RetryPolicy()
    timeouts: Timeouts = Timeouts()
    evidence: Evidence = Evidence()
    schedule: Schedule | None = None
    queue: QueueSettings = QueueSettings()
    include: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILES,
        description="Extra files kept with the version: documentation, sample attachments.",
    )

    @field_validator("include")
    @classmethod
    def _include_inside_folder(cls, value: list[str]) -> list[str]:
        return [relative_path(p) for p in value]

    @field_validator("parameters", mode="before")
    @classmethod
    def _bounded_parameters(cls, value: Any) -> Any:
        return bounded_parameters(value)

    @model_validator(mode="after")
    def _coherent(self) -> ProcessDefinition:
        if self.items.source == "bot" and not (self.bot.items or self.bot.scrape):
            raise ValueError("items.source is 'bot' but the bot gives neither 'items' nor 'scrape'")
        if self.items.source != "bot" and (self.bot.items or self.bot.scrape):
            raise ValueError("the bot produces items but items.source is not 'bot'")
        for name in _secret_names(self.bot):
            if name not in self.secrets:
                raise ValueError(f"step uses secret '{name}' that is not listed in 'secrets'")
        return self

    @property
    def files(self) -> list[str]:
        """Every file of the version besides process.yaml."""
        extra = [self.items.path] if self.items.path else []
        return sorted({*self.bot.module_files, *extra, *self.include})

    @property
    def queue_name(self) -> str:
        """The queue this process takes its items from."""
        return self.queue.name or self.id


def bounded_parameters(value: Any) -> Any:
    """Numeric parameter values are finite and at most MAX_PARAMETER_NUMBER in size."""
    if not isinstance(value, dict):
        return value
    for name, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"parameter '{name}' is not a finite number; quote it to keep text")
        if abs(item) > MAX_PARAMETER_NUMBER:
            raise ValueError(
                f"parameter '{name}' is too large: numbers are at most "
                f"{MAX_PARAMETER_NUMBER:,} in size; quote it to keep it as text"
            )
    return value


def _secret_names(bot: Bot) -> list[str]:
    verify = bot.verify if isinstance(bot.verify, list) else []
    steps = [step for _, step in walk_steps([*bot.setup, *(bot.steps or []), *verify])]
    return [s.fill.secret for s in steps if isinstance(s, FillStep) and s.fill.secret]


def json_schema() -> dict[str, Any]:
    schema = ProcessDefinition.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
