"""A regional overlay: what a region changes in a process it adopted, as a file and as data.

An overlay file (``overlays/<process-id>.yaml``, in the region's own git repo)
changes parameters, schedule, time zone, calendar, baseline and secret names.
It is validated like a definition (safe YAML, file/line/field problems), then
checked against the process it adapts: every parameter and secret it names
must exist there. The registry applies the stored overlay (``Registry.active``)
so runs and schedules use local values; storing overlays is
``robo.replication.overlays``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator

from robo.canonical import signed_bytes
from robo.definition import (
    NAME,
    SLUG,
    Baseline,
    Model,
    ProcessDefinition,
    Schedule,
    bounded_parameters,
)
from robo.errors import DefinitionError, OverlayError, Problem
from robo.loader import (
    MAX_DEFINITION_BYTES,
    _field_name,
    _Positions,
    _validation_problems,
    parse_yaml,
)

SecretName = Annotated[str, Field(pattern=NAME)]


class Overlay(Model):
    """What a region changes in a process it adopted. Everything is optional."""

    process: Annotated[str, Field(pattern=SLUG, description="Id of the process it adapts.")]
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Local values of parameters the process declares."
    )
    schedule: dict[str, Any] | None = Field(
        default=None,
        description="Schedule fields replacing the process's (a full block if it has none).",
    )
    timezone: str | None = Field(
        default=None, max_length=255, description="IANA zone for this process here."
    )
    calendar: str | None = Field(
        default=None, max_length=255, description="Holiday calendar: FR, FR-973..."
    )
    baseline: Baseline | None = Field(
        default=None, description="Manual time measured in this region (replaces the origin's)."
    )
    secrets: dict[SecretName, SecretName] = Field(
        default_factory=dict, description="Process secret name -> local secret name."
    )

    @field_validator("parameters", mode="before")
    @classmethod
    def _bounded_parameters(cls, value: Any) -> Any:
        return bounded_parameters(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        from robo.regions import check_timezone

        return value if value is None else check_timezone(value)

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str | None) -> str | None:
        from robo.regions import check_calendar

        return value if value is None else check_calendar(value)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(signed_bytes(self.model_dump(mode="json"))).hexdigest()


@dataclass(frozen=True)
class LoadedOverlay:
    overlay: Overlay
    text: str
    source: str
    positions: _Positions


# --- reading and checking ---------------------------------------------------------------


def parse_overlay(text: str, source: str) -> LoadedOverlay:
    data, positions = parse_yaml(text, source)
    if not isinstance(data, dict):
        raise OverlayError(
            [
                Problem(
                    source, 1, "", "an overlay must be a YAML mapping", "start with 'process: ID'"
                )
            ]
        )
    try:
        overlay = Overlay.model_validate(data)
    except ValidationError as exc:
        raise OverlayError(_validation_problems(exc, source, positions)) from None
    return LoadedOverlay(overlay, text, source, positions)


def load_overlay(path: Path) -> LoadedOverlay:
    source = str(path)
    try:
        if not path.is_file():
            raise OverlayError([Problem(source, None, "", "no such file")])
        if path.stat().st_size > MAX_DEFINITION_BYTES:
            raise OverlayError([Problem(source, None, "", "overlay file is too large")])
        raw = path.read_bytes()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OverlayError([Problem(source, None, "", f"cannot read: {reason}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OverlayError([Problem(source, None, "", f"not UTF-8 text ({exc.reason})")]) from None
    try:
        return parse_overlay(text, source)
    except DefinitionError as exc:  # YAML syntax, tags, aliases, duplicate keys
        raise OverlayError(exc.problems) from None


def fit_problems(loaded: LoadedOverlay, definition: ProcessDefinition) -> list[Problem]:
    """What in the overlay does not fit this version of the process (empty: it fits)."""
    overlay, file, at = loaded.overlay, loaded.source, loaded.positions.line_of
    label = f"{definition.id} {definition.version}"
    problems: list[Problem] = []
    if overlay.process != definition.id:
        problems.append(Problem(file, at(("process",)), "process", f"does not match {label}"))
    for name in overlay.parameters:
        if name not in definition.parameters:
            problems.append(
                Problem(
                    file,
                    at(("parameters", name)),
                    f"parameters.{name}",
                    f"{label} declares no parameter '{name}'",
                    f"its parameters: {', '.join(sorted(definition.parameters)) or 'none'}; "
                    "remove or rename it in the overlay",
                )
            )
    for name in overlay.secrets:
        if name not in definition.secrets:
            problems.append(
                Problem(
                    file,
                    at(("secrets", name)),
                    f"secrets.{name}",
                    f"{label} uses no secret '{name}'",
                    f"its secrets: {', '.join(definition.secrets) or 'none'}",
                )
            )
    if overlay.schedule is not None:
        try:
            Schedule.model_validate(_merged_schedule(definition, overlay))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = ("schedule", *err["loc"])
                message = err["msg"].removeprefix("Value error, ")
                hint = "" if definition.schedule else f"{label} has no schedule: give a full block"
                problems.append(Problem(file, at(loc), _field_name(loc), message, hint))
    return problems


def merged_schedule(base: dict[str, Any] | None, overlay: dict[str, Any]) -> dict[str, Any] | None:
    """A process's schedule block (as data) with a stored overlay's changes applied."""
    changes = overlay.get("schedule") or {}
    if not changes and base is None:
        return None
    merged = {**(base or {}), **changes}
    for name in ("timezone", "calendar"):  # the overlay's zone/calendar govern its schedule
        value = overlay.get(name)
        if value and name not in changes and name in Schedule.model_fields:
            merged[name] = value
    return merged


def _merged_schedule(definition: ProcessDefinition, overlay: Overlay) -> dict[str, Any] | None:
    base = definition.schedule.model_dump(mode="json") if definition.schedule else None
    return merged_schedule(base, overlay.model_dump(mode="json"))


def check_fits(loaded: LoadedOverlay, definition: ProcessDefinition) -> None:
    problems = fit_problems(loaded, definition)
    if problems:
        raise OverlayError(
            problems,
            f"the overlay {loaded.source} does not fit {definition.id} {definition.version} "
            f"({len(problems)} problem{'s' if len(problems) != 1 else ''}); nothing was stored:",
        )


def apply(definition: ProcessDefinition, overlay: Overlay) -> ProcessDefinition:
    """The effective definition: the process with the region's values."""
    data = definition.model_dump(mode="json")
    data["parameters"] = {**data["parameters"], **overlay.parameters}
    if overlay.baseline is not None:
        data["baseline"] = overlay.baseline.model_dump(mode="json")
    schedule = _merged_schedule(definition, overlay)
    if schedule is not None:
        data["schedule"] = schedule
    return ProcessDefinition.model_validate(data)
