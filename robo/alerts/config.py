"""The alert rules file: channels, rules and per-process overrides, validated on the way in.

One file per installation (``alerts_file``, else ``ROBO_HOME/alerts.toml``)::

    version = 1

    [channels.ops-mail]
    type = "smtp"
    host = "smtp.prefecture.gouv.fr"
    starttls = true
    username = "robo"
    password_secret = "smtp_password"       # a name in robo's secret store, never the value
    from = "robo@prefecture.gouv.fr"
    to = ["bureau-robots@prefecture.gouv.fr"]

    [channels.tchap]
    type = "webhook"
    url_secret = "tchap_hook"               # webhook URLs hold a token: keep them secret too

    [rules.application_exceptions]
    count = 3

    [processes.invoice-check.run_failed]    # per-process override of one rule's fields
    channels = ["ops-mail"]

Every rule is on with its defaults unless ``enabled = false``. Every mistake is
reported at once, with the file, the line, the field and what to do.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from robo.errors import AlertRulesInvalid, Problem, did_you_mean

FORMAT_VERSION = 1
MAX_FILE_BYTES = 256 * 1024
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SECRET_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
RUN_STATUSES = ("failed", "timed_out", "abandoned", "interrupted")

ChannelName = Annotated[str, Field(pattern=NAME)]
SecretName = Annotated[str, Field(pattern=SECRET_NAME, max_length=128)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- channels ----------------------------------------------------------------------------


class _Channel(_Model):
    timeout_seconds: float = Field(default=10, gt=0, le=120, description="Per attempt.")
    attempts: int = Field(default=3, ge=1, le=10, description="Tries before giving up.")
    backoff_seconds: float = Field(
        default=2, ge=0, le=300, description="Wait before the 2nd try, doubled after each."
    )


class SmtpChannel(_Channel):
    """E-mail over SMTP; the password is read from robo's secret store by name."""

    type: Literal["smtp"]
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    ca_file: Path | None = Field(default=None, description="CA bundle for a private server.")
    username: str = Field(default="", max_length=255)
    password_secret: SecretName | None = None
    sender: str = Field(alias="from", min_length=3, max_length=255)
    to: list[Annotated[str, Field(min_length=3, max_length=255)]] = Field(min_length=1)
    subject_prefix: str = Field(default="[robo]", max_length=64)

    @model_validator(mode="after")
    def _login(self) -> SmtpChannel:
        if self.password_secret and not self.username:
            raise ValueError("password_secret is set but username is not: set both or neither")
        return self


class WebhookChannel(_Channel):
    """A JSON POST (``text`` plus structured fields): Mattermost, Rocket.Chat, Slack, Tchap."""

    type: Literal["webhook"]
    url: str | None = Field(default=None, max_length=2048)
    url_secret: SecretName | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("not an http(s) URL, e.g. https://chat.example.org/hooks/abc123")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> WebhookChannel:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("give exactly one of url and url_secret")
        return self


Channel = SmtpChannel | WebhookChannel
CHANNEL_TYPES: dict[str, type[_Channel]] = {"smtp": SmtpChannel, "webhook": WebhookChannel}


# --- rules ------------------------------------------------------------------------------


class Rule(_Model):
    enabled: bool = True
    channels: list[ChannelName] | None = Field(
        default=None, description="Where this rule's alerts go; default: every channel."
    )


class RunFailedRule(Rule):
    """A run ended failed, timed out or abandoned; resolved by the next completed run."""

    statuses: list[Literal["failed", "timed_out", "abandoned", "interrupted"]] = Field(
        default=["failed", "timed_out", "abandoned"], min_length=1
    )


class ApplicationExceptionsRule(Rule):
    """``count`` application exceptions in a row: in one run, or across a process's runs."""

    count: int = Field(default=5, ge=1, le=10_000)
    scope: Literal["run", "process"] = "process"


class BusinessRateRule(Rule):
    """Business exceptions above ``threshold`` of a run's items (or of a window's)."""

    threshold: float = Field(default=0.5, gt=0, le=1)
    min_items: int = Field(default=10, ge=1, le=100_000)
    scope: Literal["run", "window"] = "run"
    window_minutes: float = Field(default=60, gt=0, le=10_080)


class ItemsOverdueRule(Rule):
    """Waiting queue items past their deadline (``queue_items.deadline``)."""

    min_items: int = Field(default=1, ge=1, le=1_000_000)
    grace_minutes: float = Field(default=0, ge=0, le=10_080)


class WorklistRule(Rule):
    """More than ``max_items`` items of a queue wait for a human (the worklist)."""

    max_items: int = Field(default=50, ge=0, le=1_000_000)


class MissedFireRule(Rule):
    """A scheduled fire recorded as missed and not made up by a later fire."""


class SchedulerSilentRule(Rule):
    """The scheduler leader stopped renewing its lease (a standby or `robo watch` notices)."""

    minutes: float = Field(default=5, gt=0, le=1_440)
    when_stopped: bool = Field(
        default=False, description="Also alert when no scheduler holds the lease at all."
    )


RULES: dict[str, type[Rule]] = {
    "run_failed": RunFailedRule,
    "application_exceptions": ApplicationExceptionsRule,
    "business_exception_rate": BusinessRateRule,
    "items_overdue": ItemsOverdueRule,
    "worklist_size": WorklistRule,
    "missed_fire": MissedFireRule,
    "scheduler_silent": SchedulerSilentRule,
}
#: Rules about a process's runs; items_overdue and worklist_size are about a queue (whose
#: overrides are read under [processes.QUEUE]); scheduler_silent about the installation.
RUN_RULES = ("run_failed", "application_exceptions", "business_exception_rate")
QUEUE_RULES = ("items_overdue", "worklist_size")


class AlertConfig:
    """The validated file: channels, the installation's rules, per-process overrides."""

    def __init__(
        self,
        channels: dict[str, Channel],
        rules: dict[str, Rule],
        overrides: dict[str, dict[str, Rule]],
        *,
        check_seconds: float = 30,
        source: str = "",
    ) -> None:
        self.channels = channels
        self.rules = rules
        self.overrides = overrides
        self.check_seconds = check_seconds
        self.source = source

    def rule(self, name: str, subject: str = "") -> Rule:
        """The rule as it applies to ``subject`` (a process id or queue name)."""
        return self.overrides.get(subject, {}).get(name) or self.rules[name]

    def channels_for(self, name: str, subject: str = "") -> list[str]:
        chosen = self.rule(name, subject).channels
        return list(self.channels) if chosen is None else chosen


def default_config(channels: dict[str, Channel] | None = None) -> AlertConfig:
    return AlertConfig(channels or {}, {name: model() for name, model in RULES.items()}, {})


# --- reading the file --------------------------------------------------------------------


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_.\- ])+?)\s*=")


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([^.]+)", text)
    return tuple((a or b or c).strip() for a, b, c in parts)


class _Positions:
    """Line numbers of tables and keys in a TOML text (tomllib keeps none)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = _split_key(header.group(1))
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                self.lines.setdefault((*table, *_split_key(key.group(1))), number)

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        path = tuple(str(part) for part in loc if not isinstance(part, int))
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


_HINTS = {
    "extra_forbidden": "remove it, or check its spelling in docs/alerts.md",
    "missing": "add it (docs/alerts.md lists every field)",
}


def _problems(
    exc: ValidationError, file: str, positions: _Positions, prefix: tuple[str, ...]
) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *(str(p) for p in err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "required field is missing"
        elif err["type"] == "extra_forbidden":
            message = "unknown field"
        field = ".".join(p for p in loc if not p.isdigit())
        line = positions.line_of(loc)
        problems.append(Problem(file, line, field, message, _HINTS.get(err["type"], "")))
    return problems


def _read(path: Path) -> str:
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise AlertRulesInvalid(
                [Problem(source, None, "", f"the file is too large ({size} bytes)")]
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AlertRulesInvalid(
            [
                Problem(
                    source,
                    None,
                    "",
                    "no such file",
                    "create it (docs/alerts.md) or fix alerts_file / ROBO_ALERTS_FILE",
                )
            ]
        ) from None
    except UnicodeDecodeError as exc:
        raise AlertRulesInvalid(
            [Problem(source, None, "", f"not UTF-8 text ({exc.reason})")]
        ) from None
    except OSError as exc:
        raise AlertRulesInvalid(
            [Problem(source, None, "", f"cannot read: {exc.strerror or exc}")]
        ) from None


def load_config(path: Path) -> AlertConfig:
    """The rules file at ``path``, or AlertRulesInvalid listing every problem in it."""
    return parse_config(_read(path), str(path))


def parse_config(text: str, source: str = "alerts.toml") -> AlertConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        reason = message[: found.start()].strip() if found else message
        raise AlertRulesInvalid(
            [
                Problem(
                    source,
                    int(found.group(1)) if found else None,
                    "",
                    f"invalid TOML: {reason}",
                    'quote text values (host = "smtp.example.org") and check the brackets of '
                    "[sections]",
                )
            ]
        ) from None
    positions = _Positions(text)
    problems: list[Problem] = []

    def problem(loc: tuple[str, ...], message: str, hint: str = "") -> None:
        problems.append(Problem(source, positions.line_of(loc), ".".join(loc), message, hint))

    known = {"version", "check_seconds", "channels", "rules", "processes"}
    for key in data:
        if key not in known:
            problem(
                (key,),
                "unknown section or field",
                did_you_mean(key, known)
                or "the file has version, check_seconds, [channels.*], [rules.*], [processes.*]",
            )
    version = data.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        problem(("version",), "must be a whole number", f"version = {FORMAT_VERSION}")
    elif version > FORMAT_VERSION:
        problem(
            ("version",),
            f"format version {version} is newer than this robo reads ({FORMAT_VERSION})",
            "upgrade robo, or write a version 1 file",
        )
    check_seconds = data.get("check_seconds", 30)
    if (
        not isinstance(check_seconds, int | float)
        or isinstance(check_seconds, bool)
        or not 1 <= check_seconds <= 3600
    ):
        problem(("check_seconds",), "must be a number of seconds from 1 to 3600")
        check_seconds = 30
    channels = _channels(data.get("channels", {}), source, positions, problems, problem)
    rules = _rules(data.get("rules", {}), ("rules",), {}, source, positions, problems, problem)
    overrides: dict[str, dict[str, Rule]] = {}
    processes = data.get("processes", {})
    if not isinstance(processes, dict):
        problem(("processes",), "must be a table: [processes.PROCESS_ID.RULE]")
        processes = {}
    for subject, table in processes.items():
        loc = ("processes", subject)
        if not isinstance(table, dict):
            problem(loc, "must be a table of rules, e.g. [processes.invoice-check.run_failed]")
            continue
        if not re.match(NAME, subject):
            problem(loc, "not a process id or queue name")
        overrides[subject] = _rules(
            table, loc, data.get("rules", {}), source, positions, problems, problem, override=True
        )
    for where, rule_set in [(("rules",), rules)] + [
        (("processes", s), r) for s, r in overrides.items()
    ]:
        for name, rule in rule_set.items():
            for channel in rule.channels or []:
                if channel not in channels:
                    problem(
                        (*where, name, "channels"),
                        f"no channel named '{channel}'",
                        did_you_mean(channel, channels)
                        or f"define it under [channels.{channel}], or remove it",
                    )
    if problems:
        raise AlertRulesInvalid(problems)
    complete = {name: rules.get(name) or model() for name, model in RULES.items()}
    return AlertConfig(
        channels, complete, overrides, check_seconds=float(check_seconds), source=source
    )


def _channels(
    raw: Any, source: str, positions: _Positions, problems: list[Problem], problem: Any
) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if not isinstance(raw, dict):
        problem(("channels",), "must be a table: [channels.NAME]")
        return channels
    for name, table in raw.items():
        loc = ("channels", name)
        if not re.match(NAME, name):
            problem(loc, "a channel name is letters, digits, '.', '_' or '-' (up to 64)")
        if not isinstance(table, dict):
            problem(loc, "must be a table with a type (smtp or webhook)")
            continue
        if "password" in table:
            problem(
                (*loc, "password"),
                "a password never goes in the rules file",
                "store it: `robo secret set smtp_password`, then write "
                'password_secret = "smtp_password"',
            )
            table = {k: v for k, v in table.items() if k != "password"}
        kind = table.get("type")
        model = CHANNEL_TYPES.get(kind) if isinstance(kind, str) else None
        if model is None:
            problem(
                (*loc, "type") if "type" in table else loc,
                f"unknown channel type {kind!r}" if "type" in table else "type is missing",
                'type = "smtp" (e-mail) or type = "webhook" (Mattermost, Rocket.Chat, '
                "Slack, Tchap bridge)",
            )
            continue
        try:
            channels[name] = model.model_validate(table)  # type: ignore[assignment]
        except ValidationError as exc:
            problems += _problems(exc, source, positions, loc)
    return channels


def _rules(
    raw: Any,
    where: tuple[str, ...],
    base: Any,
    source: str,
    positions: _Positions,
    problems: list[Problem],
    problem: Any,
    *,
    override: bool = False,
) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    if not isinstance(raw, dict):
        problem(where, "must be a table: [rules.RULE]")
        return rules
    base = base if isinstance(base, dict) else {}
    for name, table in raw.items():
        loc = (*where, name)
        model = RULES.get(name)
        if model is None:
            problem(
                loc,
                f"no rule named '{name}'",
                did_you_mean(name, RULES) or f"rules: {', '.join(RULES)}",
            )
            continue
        if not isinstance(table, dict):
            problem(loc, f"must be a table: [{'.'.join(loc)}] with the fields to change")
            continue
        if override and name == "scheduler_silent":
            problem(
                loc,
                "scheduler_silent is about the installation, not a process",
                "set it under [rules.scheduler_silent]",
            )
            continue
        inherited = base.get(name, {}) if override else {}
        merged = {**(inherited if isinstance(inherited, dict) else {}), **table}
        try:
            rules[name] = model.model_validate(merged)
        except ValidationError as exc:
            problems += _problems(exc, source, positions, loc)
    return rules
