"""Metrics files: a region's ledger figures, signed, merged idempotently at national level.

Format ``robo-metrics``, ``format_version`` 1: a JSON object ``{"manifest": {...},
"signature": "<base64 Ed25519 over the canonical manifest>"}``. The manifest
holds the region's finished runs (stable ``uid``) with their baseline snapshot
and items. An item is identified by ``(run uid, key)`` where ``key`` is a hash
of its reference: no work-item data, output, error text, parameter or evidence
leaves the region, only outcomes, durations and minutes.

Import verifies format, signature and figures for every file first, then adds,
in one transaction, the runs whose uid is unknown and the items not yet there,
with ``imported_from`` = the region and no version row. Importing a file twice,
or files with overlapping periods, changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from robo.canonical import signed_bytes
from robo.clock import utcnow
from robo.definition import SLUG
from robo.errors import MetricsError
from robo.ledger import Ledger, ReportedFile
from robo.replication.signing import KeyStore, sign

if TYPE_CHECKING:
    from collections.abc import Sequence

    from robo.storage.models import ItemRow, RunRow

FORMAT = "robo-metrics"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 200_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricsBaseline(_Strict):
    manual_minutes_per_item: float = Field(ge=0)
    residual_minutes_per_item: float = Field(ge=0)
    manual_minutes_per_run: float = Field(ge=0)
    measured_by: str
    measured_on: str


class MetricsItem(_Strict):
    key: str = Field(pattern=r"^[0-9a-f]{32}$")
    position: int
    status: Literal["success", "business_exception", "application_exception"]
    attempts: int = Field(ge=0)
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    duration_seconds: float | None
    error_type: str | None
    minutes_saved: float = Field(ge=0)


class MetricsRun(_Strict):
    uid: str = Field(pattern=r"^[0-9a-f]{32}$")
    process_id: str
    version: str
    region: str
    application: str
    origin_region: str | None
    origin_version: str | None
    trigger: str
    status: str
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    items_total: int | None
    baseline: MetricsBaseline
    run_minutes_saved: float = Field(ge=0)
    items: list[MetricsItem]


class MetricsManifest(_Strict):
    format: Literal["robo-metrics"]
    format_version: Literal[1]
    region: str = Field(pattern=SLUG)
    created_at: str
    since: str | None
    until: str | None
    runs: list[MetricsRun]


@dataclass(frozen=True)
class MetricsExport:
    path: str
    region: str
    runs: int
    items: int
    sha256: str


@dataclass(frozen=True)
class MetricsImport:
    path: str
    region: str
    runs_added: int
    items_added: int
    outcome: str  # imported, already-imported


def item_key(run_uid: str, reference: str) -> str:
    """A stable item id that does not reveal the reference."""
    return hashlib.sha256(f"{run_uid}\0{reference}".encode()).hexdigest()[:32]


# --- export ------------------------------------------------------------------------------


def export_metrics(
    ledger: Ledger,
    keys: KeyStore,
    output: Path,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> MetricsExport:
    region = keys.region
    key = keys.private()
    runs: list[dict[str, Any]] = []
    count = 0
    for run, items in ledger.own_final_runs(since, until):
        count += len(items)
        runs.append(_run_record(run, items))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "region": region,
        "created_at": utcnow().isoformat(timespec="seconds"),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "runs": runs,
    }
    body = signed_bytes(manifest)
    text = json.dumps({"manifest": manifest, "signature": sign(key, body)}, indent=1)
    _write_atomic(output, text.encode())
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    return MetricsExport(str(output), region, len(runs), count, digest)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _run_record(run: RunRow, items: Sequence[ItemRow]) -> dict[str, Any]:
    return {
        "uid": run.uid, "process_id": run.process_id, "version": run.version,
        "region": run.region, "application": run.application,
        "origin_region": run.origin_region, "origin_version": run.origin_version,
        "trigger": run.trigger, "status": run.status,
        "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
        "items_total": run.items_total,
        "baseline": {
            "manual_minutes_per_item": run.manual_minutes_per_item,
            "residual_minutes_per_item": run.residual_minutes_per_item,
            "manual_minutes_per_run": run.manual_minutes_per_run,
            "measured_by": run.baseline_measured_by,
            "measured_on": run.baseline_measured_on,
        },
        "run_minutes_saved": run.run_minutes_saved,
        "items": [
            {
                "key": item_key(run.uid, i.reference), "position": i.position,
                "status": i.status, "attempts": i.attempts,
                "started_at": _iso(i.started_at), "finished_at": _iso(i.finished_at),
                "duration_seconds": i.duration_seconds, "error_type": i.error_type,
                "minutes_saved": i.minutes_saved,
            }
            for i in items
        ],
    }  # fmt: skip


def _write_atomic(output: Path, data: bytes) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".metrics-", dir=output.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, output)


# --- import ------------------------------------------------------------------------------


def read_metrics(keys: KeyStore, path: Path) -> tuple[MetricsManifest, str]:
    """Check one file completely; return its manifest and sha256. Nothing is stored."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise MetricsError(f"{path} is {size} bytes; the limit is {MAX_FILE_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        raise MetricsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetricsError(f"{path} is not JSON ({exc}); was it altered?") from None
    manifest = document.get("manifest") if isinstance(document, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise MetricsError(f"{path} is not a robo metrics file")
    found = manifest.get("format_version")
    if not isinstance(found, int) or found > FORMAT_VERSION:
        raise MetricsError(
            f"{path} is metrics format {found!r}; this robo reads format {FORMAT_VERSION} "
            "only: upgrade robo to import it"
        )
    region = manifest.get("region")
    signature = document.get("signature")
    if not isinstance(region, str) or not isinstance(signature, str):
        raise MetricsError(f"{path} has no region or no signature")
    keys.verify(region, signed_bytes(manifest), signature, f"metrics {path.name}")
    try:
        parsed = MetricsManifest.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MetricsError(f"{path}: {where}: {first['msg']}") from None
    _check_figures(parsed, path)
    return parsed, hashlib.sha256(raw).hexdigest()


def _check_figures(manifest: MetricsManifest, path: Path) -> None:
    """A region reports its own runs, and every minute follows from the run's baseline."""
    for run in manifest.runs:
        where = f"{path}: run {run.uid}"
        if run.region != manifest.region:
            raise MetricsError(f"{where} ran in {run.region}, not in {manifest.region}")
        b = run.baseline
        per_item = b.manual_minutes_per_item - b.residual_minutes_per_item
        keys = set()
        for item in run.items:
            expected = per_item if item.status == "success" else 0.0
            if not math.isclose(item.minutes_saved, expected, abs_tol=1e-9):
                raise MetricsError(f"{where}: item {item.key} claims {item.minutes_saved} min")
            keys.add(item.key)
        if len(keys) != len(run.items):
            raise MetricsError(f"{where}: an item appears twice")
        if run.run_minutes_saved not in (0.0, b.manual_minutes_per_run):
            raise MetricsError(f"{where}: run minutes do not follow from its baseline")


def import_metrics(ledger: Ledger, keys: KeyStore, paths: list[Path]) -> list[MetricsImport]:
    """Verify every file, then merge them all through the ledger in one transaction (or nothing)."""
    checked = [(path, *read_metrics(keys, path)) for path in paths]
    merged = ledger.import_reported(
        [ReportedFile(digest, manifest.region, manifest.runs) for _, manifest, digest in checked]
    )
    return [
        MetricsImport(str(path), manifest.region, 0, 0, "already-imported")
        if counts is None
        else MetricsImport(str(path), manifest.region, *counts, "imported")
        for (path, manifest, _), counts in zip(checked, merged, strict=True)
    ]
