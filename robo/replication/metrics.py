"""Metrics files: a region's ledger figures, signed, merged idempotently at national level.

Format ``robo-metrics``, ``format_version`` 1: a JSON object ``{"manifest": {...},
"signature": "<base64 Ed25519 over the canonical manifest>"}``. The manifest
holds the region's finished runs (stable ``uid``) with their baseline snapshot
and items. An item is identified by ``(run uid, key)`` where ``key`` is an
HMAC-SHA256 of the run uid and the item's reference under a key only the region
holds (``ROBO_HOME/keys/<region>.item-key``): knowing the uid and guessing the
reference pattern does not give the reference back. No work-item data, output,
error text, parameter or evidence leaves the region, only outcomes, durations
and minutes. (Files written before keyed hashes used a plain sha256; an importer
only compares keys, so they import as before.)

Import parses the JSON with its depth bounded and only finite numbers, verifies
format, signature and figures (finished runs only, every number within bounds,
every minute following from the run's baseline) for every file first, then adds,
in one transaction, the runs whose uid is unknown with their items, with
``imported_from`` = the region and no version row. A run already imported keeps
its items: an imported run's item set is final, and items a later file adds to
it are not added (the import says so). Importing a file twice, or files with
overlapping periods, changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from robo.canonical import signed_bytes
from robo.clock import utcnow
from robo.definition import MAX_ITEM_SECONDS, MAX_LABEL, MAX_MINUTES, MAX_VERSION, SLUG
from robo.errors import MetricsError, ReplicationError
from robo.ledger import FINAL_RUN_STATUSES, Ledger, ReportedFile, RunPurpose
from robo.replication import safejson
from robo.replication.signing import KeyStore, sign
from robo.storage.models import ItemRow, RunRow

if TYPE_CHECKING:
    from collections.abc import Sequence

FORMAT = "robo-metrics"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 200_000_000
MAX_COUNT = 10_000_000  # positions, attempts, items per run
FinalStatus = Literal["completed", "failed", "timed_out", "interrupted", "abandoned", "cancelled"]
assert set(get_args(FinalStatus)) == set(FINAL_RUN_STATUSES)

Slug = Annotated[str, Field(pattern=SLUG)]
Label = Annotated[str, Field(max_length=MAX_LABEL)]
Version = Annotated[str, Field(min_length=1, max_length=MAX_VERSION)]
Minutes = Annotated[float, Field(ge=0, le=MAX_MINUTES)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class _Strict(BaseModel):
    # Finite numbers only, and bounded texts: a signed file is trusted for who sent it,
    # not for being sane (a bug or a hand-edited export must not reach a report).
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=MAX_LABEL
    )


class MetricsBaseline(_Strict):
    manual_minutes_per_item: Minutes
    residual_minutes_per_item: Minutes
    manual_minutes_per_run: Minutes
    measured_by: Label
    measured_on: str = Field(max_length=10)


class MetricsItem(_Strict):
    key: str = Field(pattern=r"^[0-9a-f]{32}$")
    position: Count
    status: Literal["success", "business_exception", "application_exception", "skipped"]
    attempts: Count
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    duration_seconds: float | None = Field(ge=0, le=MAX_ITEM_SECONDS * 7)
    error_type: str | None = Field(max_length=128)
    minutes_saved: Minutes


class MetricsRun(_Strict):
    uid: str = Field(pattern=r"^[0-9a-f]{32}$")
    process_id: Slug
    version: Version
    region: Slug
    application: Label
    origin_region: Slug | None
    origin_version: Version | None
    trigger: str = Field(max_length=32)
    # Files from before purposes were recorded hold production runs only.
    purpose: RunPurpose = "production"
    status: FinalStatus = Field(description="Only finished runs travel: a running one is refused.")
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    items_total: Count | None
    baseline: MetricsBaseline
    run_minutes_saved: Minutes
    items: list[MetricsItem] = Field(max_length=MAX_COUNT)


class MetricsManifest(_Strict):
    format: Literal["robo-metrics"]
    format_version: Literal[1]
    region: Slug
    created_at: str = Field(max_length=64)
    since: str | None = Field(max_length=64)
    until: str | None = Field(max_length=64)
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
    ignored: list[str] = field(default_factory=list)  # why some items were not added


def item_key(secret: bytes, run_uid: str, reference: str) -> str:
    """A stable item id that does not reveal the reference, even to whoever knows the run
    uid and the pattern of references: keyed by the region's item-key secret."""
    message = f"{run_uid}\0{reference}".encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


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
    secret = keys.item_secret()
    runs: list[dict[str, Any]] = []
    count = 0
    for run, items in ledger.own_final_runs(since, until):
        count += len(items)
        runs.append(_run_record(run, items, secret))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "region": region,
        "created_at": utcnow().isoformat(timespec="seconds"),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "runs": runs,
    }
    try:
        json.dumps(manifest, allow_nan=False)
    except ValueError:
        raise MetricsError(
            "the ledger holds a non-finite number (a run recorded before robo bounded "
            "baselines?); no file was written: narrow --since/--until to leave that run out"
        ) from None
    body = signed_bytes(manifest)
    text = json.dumps({"manifest": manifest, "signature": sign(key, body)}, indent=1)
    _write_atomic(output, text.encode())
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    return MetricsExport(str(output), region, len(runs), count, digest)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _run_record(run: RunRow, items: Sequence[ItemRow], secret: bytes) -> dict[str, Any]:
    return {
        "uid": run.uid, "process_id": run.process_id, "version": run.version,
        "region": run.region, "application": run.application,
        "origin_region": run.origin_region, "origin_version": run.origin_version,
        "trigger": run.trigger, "purpose": run.purpose, "status": run.status,
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
                "key": item_key(secret, run.uid, i.reference), "position": i.position,
                "status": i.status, "attempts": i.attempts,
                "started_at": _iso(i.started_at), "finished_at": _iso(i.finished_at),
                "duration_seconds": i.duration_seconds, "error_type": i.error_type,
                "minutes_saved": i.minutes_saved,
            }
            for i in items
        ],
    }  # fmt: skip


def _write_atomic(output: Path, data: bytes) -> None:
    """Written whole or not at all, mode 0644: the file is meant for a shared folder."""
    tmp = ""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".metrics-", dir=output.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except OSError as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise ReplicationError(
            f"cannot write {output}: {exc.strerror or exc}; choose a file you may write"
        ) from None


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
        document = safejson.loads(raw)
    except ValueError as exc:
        raise MetricsError(f"{path} is not JSON robo accepts: {exc}; was it altered?") from None
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
    try:
        body = signed_bytes(manifest)
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON: never signed by robo
        raise MetricsError(
            f"{path} holds text that is not valid Unicode; was it altered?"
        ) from None
    keys.verify(region, body, signature, f"metrics {path.name}")
    try:
        parsed = MetricsManifest.model_validate(manifest)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MetricsError(f"{path}: {where}: {first['msg']}; nothing was stored") from None
    _check_figures(parsed, path)
    return parsed, hashlib.sha256(raw).hexdigest()


def _check_figures(manifest: MetricsManifest, path: Path) -> None:
    """A region reports its own runs, and every minute follows from the run's baseline."""
    for run in manifest.runs:
        where = f"{path}: run {run.uid}"
        if run.region != manifest.region:
            raise MetricsError(f"{where} ran in {run.region}, not in {manifest.region}")
        b = run.baseline
        if b.residual_minutes_per_item > b.manual_minutes_per_item:
            raise MetricsError(f"{where}: its baseline's residual minutes exceed the manual ones")
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
    final = _final_item_sets(ledger, [manifest for _, manifest, _ in checked])
    merged = ledger.import_reported(
        [
            ReportedFile(digest, manifest.region, runs)
            for (_, manifest, digest), (runs, _) in zip(checked, final, strict=True)
        ]
    )
    return [
        MetricsImport(str(path), manifest.region, 0, 0, "already-imported")
        if counts is None
        else MetricsImport(str(path), manifest.region, *counts, "imported", ignored)
        for (path, manifest, _), counts, (_, ignored) in zip(checked, merged, final, strict=True)
    ]


def _final_item_sets(
    ledger: Ledger, manifests: list[MetricsManifest]
) -> list[tuple[list[MetricsRun], list[str]]]:
    """Per file, the runs to hand to the ledger, and why some of their items are left out.

    A run already in the database (or earlier in this batch) is finished and was
    imported with all its items: its item set is final. Its items are not handed on
    again (the ledger would add the ones it lacks); a file listing others is told so.
    """
    uids = sorted({run.uid for manifest in manifests for run in manifest.runs})
    known: dict[str, set[str]] = {}
    with ledger.db.session() as session:
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
            rows = session.execute(select(RunRow.id, RunRow.uid).where(RunRow.uid.in_(chunk)))
            ids = {run_id: uid for run_id, uid in rows}
            for uid in ids.values():
                known[uid] = set()
            if ids:
                for run_id, key in session.execute(
                    select(ItemRow.run_id, ItemRow.reference).where(ItemRow.run_id.in_(list(ids)))
                ):
                    known[ids[run_id]].add(key)
    result = []
    for manifest in manifests:
        runs: list[MetricsRun] = []
        ignored: list[str] = []
        for run in manifest.runs:
            keys = {item.key for item in run.items}
            if run.uid not in known:
                known[run.uid] = keys
                runs.append(run)
                continue
            extra = keys - known[run.uid]
            if extra:
                ignored.append(
                    f"run {run.uid}: already imported with {len(known[run.uid])} item(s); this "
                    f"file lists {len(extra)} more, not added (an imported run's items are final)"
                )
            runs.append(run.model_copy(update={"items": []}))
        result.append((runs, ignored))
    return result
