"""The registry: immutable, hashed process versions, which one is active, and how this region runs it.

``Registry.active`` is the one place that turns a stored version into "the
version as this region runs it": the region's overlay applied (parameters,
baseline, schedule, secret names) and the schedule's zone and calendar
resolved. The runner, the dispatcher and `robo schedule` all read it;
``Registry.schedules`` streams the same resolution for a scheduler over
thousands of processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from robo.clock import utcnow
from robo.definition import ProcessDefinition
from robo.errors import (
    ProcessNotFound,
    RegistryError,
    StoredVersionInvalid,
    VersionConflict,
    VersionNotFound,
    did_you_mean,
)
from robo.loader import DEFINITION_FILE, LoadedProcess
from robo.overlay import Overlay, apply
from robo.regional import (
    EffectiveSchedule,
    RegionDefaults,
    ScheduleResolver,
    fires,
    resolve_schedule,
)
from robo.storage.database import Database
from robo.storage.models import (
    OverlayRow,
    ProcessRow,
    RegistryEventRow,
    VersionFileRow,
    VersionRow,
)

DeployOutcome = Literal["created", "new-version", "forked", "reactivated", "unchanged"]


@dataclass(frozen=True)
class DeployResult:
    process_id: str
    version: str
    content_hash: str
    outcome: DeployOutcome


@dataclass(frozen=True)
class VersionInfo:
    process_id: str
    version: str
    content_hash: str
    deployed_at: str
    deployed_by: str
    source_path: str
    active: bool
    origin_region: str | None = None
    origin_version: str | None = None


@dataclass(frozen=True)
class ProcessSummary:
    id: str
    name: str
    active_version: str
    enabled: bool
    owner_region: str
    applications: list[str]
    versions: int


@dataclass(frozen=True)
class ScheduledProcess:
    """A process as a scheduler sees it: its resolved schedule, and whether it fires."""

    process_id: str
    schedule: EffectiveSchedule | None
    fires: bool


@dataclass(frozen=True)
class HistoryEvent:
    at: str
    action: str
    version: str | None
    actor: str
    detail: str


@dataclass(frozen=True)
class ProcessVersion:
    """A deployed version, ready to run: definition plus exact files."""

    version_id: int
    definition: ProcessDefinition
    definition_text: str
    files: dict[str, bytes]
    content_hash: str
    enabled: bool = True
    paused: bool = False
    origin_region: str | None = None
    origin_version: str | None = None
    # The definition's schedule with its zone and calendar resolved (None: no schedule).
    schedule: EffectiveSchedule | None = None
    # A definition's secret name -> the name of the local secret (from the overlay).
    secret_names: dict[str, str] = field(default_factory=dict)

    @property
    def fires(self) -> bool:
        """Whether a scheduler fires this version (enabled, not paused, has a schedule)."""
        return fires(self.enabled, self.paused, self.schedule)

    def unpack(self, root: Path) -> Path:
        """Write the version's files under ``root/<hash>`` once; return that folder."""
        target = root / self.content_hash
        if target.is_dir():
            return target
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
        try:
            (staging / DEFINITION_FILE).write_text(self.definition_text, encoding="utf-8")
            for name, content in self.files.items():
                path = staging / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            os.replace(staging, target)  # atomic: a half-written version is never used
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.is_dir():
                raise
        return target


def _actor() -> str:
    """Who is at the keyboard: the login name, else the account the process runs as."""
    try:
        return os.getlogin()
    except OSError:
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            return f"uid {os.getuid()}"


class Registry:
    def __init__(self, db: Database, defaults: RegionDefaults, actor: str | None = None) -> None:
        self.db = db
        self.defaults = defaults
        self.actor = _actor() if actor is None else actor
        self._resolver = ScheduleResolver(defaults)

    # --- writing ---------------------------------------------------------------

    def deploy(
        self,
        loaded: LoadedProcess,
        *,
        origin_region: str | None = None,
        origin_version: str | None = None,
    ) -> DeployResult:
        """Store one version (an import gives its origin); see :meth:`deploy_many`."""
        with self._writing() as session:
            return self._deploy(session, loaded, origin_region, origin_version)

    def deploy_many(
        self, loaded: Sequence[LoadedProcess], *, fork: bool = False, local_region: str = ""
    ) -> list[DeployResult]:
        """Deploy local process folders all together, in one transaction: all or nothing.

        A process imported from another region keeps its lineage: deploying a local
        folder over it is refused (its origin would be lost), unless ``fork`` records the
        new version as a local fork of that origin (the origin region and version are
        kept on the version, and the registry event is 'fork'). A process whose active
        version is already a local fork goes on being one.
        """
        with self._writing() as session:
            return [self._deploy_local(session, one, fork, local_region) for one in loaded]

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Session]:
        try:
            with self.db.session() as session:
                yield session
        except IntegrityError:  # another deploy stored the same version meanwhile
            raise RegistryError(
                "another deploy changed the registry at the same time; nothing was stored: "
                "run the command again"
            ) from None

    def _deploy_local(
        self, session: Session, loaded: LoadedProcess, fork: bool, local_region: str
    ) -> DeployResult:
        definition = loaded.definition
        lineage = self._lineage(session, definition.id, local_region)
        if lineage is None:
            return self._deploy(session, loaded, None, None)
        origin_region, origin_version, forked = lineage
        same = session.scalars(
            select(VersionRow).where(
                VersionRow.process_id == definition.id,
                VersionRow.version == definition.version,
                VersionRow.content_hash == loaded.content_hash,
            )
        ).one_or_none()
        if same is not None:  # this very version is here: nothing is lost
            return self._deploy(session, loaded, same.origin_region, same.origin_version)
        if not (fork or forked):
            raise RegistryError(
                f"{definition.id} was imported from {origin_region} (version {origin_version}); "
                f"deploying {loaded.source_dir} over it would drop that lineage: adapt it with "
                "an overlay (robo overlay apply), take newer versions with robo upgrade, or "
                f"deploy with --fork to record {definition.version} as a local fork of "
                f"{origin_region} {origin_version}; nothing was stored"
            )
        return self._deploy(
            session, loaded, origin_region, origin_version, action="fork",
            detail=f"local fork of {origin_region} {origin_version}",
        )  # fmt: skip

    def _lineage(
        self, session: Session, process_id: str, local_region: str
    ) -> tuple[str, str, bool] | None:
        """(origin region, origin version, active version is a fork) of a process adopted
        from another region; None for a process built here (or new)."""
        rows = session.scalars(
            select(VersionRow)
            .where(VersionRow.process_id == process_id, VersionRow.origin_region.is_not(None))
            .order_by(VersionRow.id)
        ).all()
        foreign = [r for r in rows if r.origin_region != local_region]
        if not foreign:
            return None
        process = session.get(ProcessRow, process_id)
        active = next((r for r in foreign if process and r.id == process.active_version_id), None)
        source = active or foreign[-1]
        forked = (
            active is not None
            and (
                session.scalar(
                    select(func.count()).where(
                        RegistryEventRow.process_id == process_id,
                        RegistryEventRow.action == "fork",
                        RegistryEventRow.version == active.version,
                    )
                )
                or 0
            )
            > 0
        )
        return str(source.origin_region), source.origin_version or source.version, forked

    def _deploy(
        self,
        session: Session,
        loaded: LoadedProcess,
        origin_region: str | None,
        origin_version: str | None,
        *,
        action: str = "deploy",
        detail: str = "",
    ) -> DeployResult:
        definition = loaded.definition
        digest = loaded.content_hash
        now = utcnow()
        process = session.get(ProcessRow, definition.id)
        existing = session.scalars(
            select(VersionRow).where(
                VersionRow.process_id == definition.id, VersionRow.version == definition.version
            )
        ).one_or_none()
        if existing is not None and existing.content_hash != digest:
            raise VersionConflict(
                f"{definition.id} {definition.version} is already deployed with different "
                f"content (hash {existing.content_hash[:12]}, deployed "
                f"{existing.deployed_at:%Y-%m-%d %H:%M} UTC from {existing.source_path}); "
                f"versions are immutable: raise 'version' in "
                f"{loaded.source_dir / DEFINITION_FILE} (e.g. {_next_patch(definition.version)})"
            )
        if existing is not None and process is not None:
            if process.active_version_id == existing.id:
                return DeployResult(definition.id, definition.version, digest, "unchanged")
            self._activate(session, process, existing, "deploy", "re-activated identical content")
            return DeployResult(definition.id, definition.version, digest, "reactivated")

        version = VersionRow(
            process_id=definition.id,
            version=definition.version,
            content_hash=digest,
            definition=definition.model_dump(mode="json"),
            definition_text=loaded.definition_text,
            source_path=str(loaded.source_dir),
            deployed_at=now,
            deployed_by=self.actor,
            origin_region=origin_region,
            origin_version=origin_version,
            files=[
                VersionFileRow(path=name, sha256=hashlib.sha256(data).hexdigest(), content=data)
                for name, data in sorted(loaded.files.items())
            ],
        )
        session.add(version)
        session.flush()
        outcome: DeployOutcome = "forked" if action == "fork" else "new-version"
        if process is None:
            process = ProcessRow(id=definition.id, enabled=True, created_at=now, updated_at=now)
            session.add(process)
            outcome = "forked" if action == "fork" else "created"
        hashed = f"hash {digest[:12]}"
        self._activate(
            session, process, version, action, f"{detail}, {hashed}" if detail else hashed
        )
        return DeployResult(definition.id, definition.version, digest, outcome)

    def rollback(self, process_id: str, version: str) -> DeployResult:
        with self.db.session() as session:
            process = self._process(session, process_id)
            target = self._version(session, process_id, version)
            self._activate(session, process, target, "rollback", f"to {version}")
            return DeployResult(process_id, version, target.content_hash, "reactivated")

    def set_paused(self, process_id: str, paused: bool) -> bool:
        """Pause or resume a process's schedule (manual runs still work); True if changed."""
        return self._set_flag(process_id, "paused", paused, "pause" if paused else "resume")

    def generation(self) -> tuple[int, str]:
        """Changes whenever something a scheduler acts on changes (cheap to poll)."""
        with self.db.session() as session:
            last_event = session.scalar(select(func.max(RegistryEventRow.id))) or 0
            last_overlay = session.scalar(select(func.max(OverlayRow.updated_at)))
            overlays = session.scalar(select(func.count()).select_from(OverlayRow)) or 0
        return last_event, f"{overlays}:{last_overlay}"

    def changed_since(self, event_id: int) -> set[str]:
        """The processes with a registry event after ``event_id`` (see ``generation``):
        what a scheduler re-reads when only those changed."""
        with self.db.session() as session:
            return set(
                session.scalars(
                    select(RegistryEventRow.process_id).where(RegistryEventRow.id > event_id)
                )
            )

    def schedules(self, process_ids: Collection[str] | None = None) -> Iterator[ScheduledProcess]:
        """Every process's resolved schedule, from one query: what a scheduler syncs from.

        The same rule as ``active`` (overlay, zone, calendar, pause), but only the
        schedule part of each definition is read (no full validation), so a
        scheduler over ten thousand processes starts in seconds. ``process_ids``:
        only these (a process that no longer exists is simply not yielded).
        """
        query = (
            select(
                ProcessRow.id,
                ProcessRow.enabled,
                ProcessRow.paused,
                VersionRow.definition["schedule"],
                OverlayRow.data,
            )
            .join(VersionRow, VersionRow.id == ProcessRow.active_version_id)
            .outerjoin(OverlayRow, OverlayRow.process_id == ProcessRow.id)
            .order_by(ProcessRow.id)
        )
        if process_ids is not None:
            query = query.where(ProcessRow.id.in_(sorted(process_ids)))
        with self.db.session() as session:
            # Streamed: ten thousand parsed schedule blocks never sit in memory at once.
            for pid, enabled, paused, base, overlay in session.execute(
                query.execution_options(yield_per=500)
            ):
                if not (enabled and not paused):  # never fires: not worth validating
                    yield ScheduledProcess(pid, None, False)
                    continue
                schedule = self._resolver.resolve(pid, base, overlay)
                yield ScheduledProcess(pid, schedule, fires(enabled, paused, schedule))

    def require(self, process_id: str) -> None:
        """Raise ProcessNotFound (with what to do) unless the registry has this process."""
        with self.db.session() as session:
            self._process(session, process_id)

    def process_ids(self) -> list[str]:
        with self.db.session() as session:
            return list(session.scalars(select(ProcessRow.id).order_by(ProcessRow.id)))

    def set_enabled(self, process_id: str, enabled: bool) -> bool:
        """Enable or disable a process; returns whether anything changed."""
        return self._set_flag(process_id, "enabled", enabled, "enable" if enabled else "disable")

    def _set_flag(self, process_id: str, flag: str, value: bool, action: str) -> bool:
        with self.db.session() as session:
            process = self._process(session, process_id)
            if getattr(process, flag) == value:
                return False
            setattr(process, flag, value)
            process.updated_at = utcnow()
            session.add(self._event(process_id, action, None, ""))
            return True

    def _activate(
        self, session: Session, process: ProcessRow, version: VersionRow, action: str, detail: str
    ) -> None:
        process.active_version_id = version.id
        process.updated_at = utcnow()
        session.add(self._event(process.id, action, version.version, detail))

    def _event(
        self, process_id: str, action: str, version: str | None, detail: str
    ) -> RegistryEventRow:
        return RegistryEventRow(
            process_id=process_id, action=action, version=version, at=utcnow(),
            actor=self.actor, detail=detail,
        )  # fmt: skip

    # --- reading -----------------------------------------------------------------

    def processes(self) -> list[ProcessSummary]:
        with self.db.session() as session:
            rows = session.scalars(select(ProcessRow).order_by(ProcessRow.id)).all()
            counts: dict[str, int] = {}
            for pid in session.scalars(select(VersionRow.process_id)):
                counts[pid] = counts.get(pid, 0) + 1
            result = []
            for row in rows:
                active = row.active_version
                definition = active.definition if active else {}
                result.append(
                    ProcessSummary(
                        id=row.id,
                        name=definition.get("name", ""),
                        active_version=active.version if active else "",
                        enabled=row.enabled,
                        owner_region=definition.get("owner", {}).get("region", ""),
                        applications=definition.get("applications", []),
                        versions=counts.get(row.id, 0),
                    )
                )
            return result

    def active(self, process_id: str, *, with_overlay: bool = True) -> ProcessVersion:
        """The version as this region runs it: the active one with the overlay applied.

        Runner, dispatcher and `robo schedule` all call this, so a run uses the
        local parameters, baseline and secret names, and a schedule the local
        time zone and calendar. ``with_overlay=False`` gives the version exactly
        as deployed or imported (its schedule still resolved in this region).
        """
        with self.db.session() as session:
            process = self._process(session, process_id)
            if process.active_version is None:
                raise ProcessNotFound(f"process '{process_id}' has no active version")
            version = self._snapshot(process.active_version, process)
            row = session.get(OverlayRow, process_id) if with_overlay else None
            data = None if row is None else row.data
        if data is None:
            return version
        fix = f"apply a corrected overlay (robo overlay apply FILE) or robo overlay remove {process_id}"
        overlay = _stored(Overlay, data, f"this region's overlay of {process_id}", fix)
        try:
            definition = apply(version.definition, overlay)
        except ValidationError as exc:
            raise _invalid(exc, f"{process_id} with this region's overlay", fix) from None
        return dataclasses.replace(
            version,
            definition=definition,
            schedule=resolve_schedule(definition.id, definition.schedule, self.defaults),
            secret_names=dict(overlay.secrets),
        )

    def firing_schedule(self, process_id: str) -> EffectiveSchedule | None:
        """The schedule a scheduler fires for this process; None if none, or if it must not
        fire (unknown, disabled, paused)."""
        try:
            version = self.active(process_id)
        except RegistryError:
            return None
        return version.schedule if version.fires else None

    def get(self, process_id: str, version: str) -> ProcessVersion:
        with self.db.session() as session:
            process = self._process(session, process_id)
            return self._snapshot(self._version(session, process_id, version), process)

    def versions(self, process_id: str) -> list[VersionInfo]:
        with self.db.session() as session:
            process = self._process(session, process_id)
            rows = session.scalars(
                select(VersionRow)
                .where(VersionRow.process_id == process_id)
                .order_by(VersionRow.id)
            ).all()
            return [
                VersionInfo(
                    process_id=row.process_id,
                    version=row.version,
                    content_hash=row.content_hash,
                    deployed_at=row.deployed_at.isoformat(timespec="seconds"),
                    deployed_by=row.deployed_by,
                    source_path=row.source_path,
                    active=row.id == process.active_version_id,
                    origin_region=row.origin_region,
                    origin_version=row.origin_version,
                )
                for row in rows
            ]

    def history(self, process_id: str) -> list[HistoryEvent]:
        with self.db.session() as session:
            self._process(session, process_id)
            rows = session.scalars(
                select(RegistryEventRow)
                .where(RegistryEventRow.process_id == process_id)
                .order_by(RegistryEventRow.id)
            ).all()
            return [
                HistoryEvent(
                    r.at.isoformat(timespec="seconds"), r.action, r.version, r.actor, r.detail
                )
                for r in rows
            ]

    def diff(self, process_id: str, old: str, new: str) -> str:
        """A unified diff of the definition and every file between two versions."""
        a, b = self.get(process_id, old), self.get(process_id, new)
        chunks: list[str] = []
        sides: list[tuple[str, dict[str, bytes], dict[str, bytes]]] = [
            (
                DEFINITION_FILE,
                {DEFINITION_FILE: a.definition_text.encode()},
                {DEFINITION_FILE: b.definition_text.encode()},
            ),
            *[(name, a.files, b.files) for name in sorted({*a.files, *b.files})],
        ]
        for name, left, right in sides:
            before, after = left.get(name), right.get(name)
            if before == after:
                continue
            if _is_binary(before) or _is_binary(after):
                chunks.append(f"Binary file {name} differs\n")
                continue
            chunks += difflib.unified_diff(
                (before or b"").decode().splitlines(keepends=True),
                (after or b"").decode().splitlines(keepends=True),
                fromfile=f"{process_id} {old}/{name}",
                tofile=f"{process_id} {new}/{name}",
            )
        return "".join(line if line.endswith("\n") else line + "\n" for line in chunks)

    # --- helpers -------------------------------------------------------------------

    @staticmethod
    def _process(session: Session, process_id: str) -> ProcessRow:
        process = session.get(ProcessRow, process_id)
        if process is None:
            hint = did_you_mean(process_id, session.scalars(select(ProcessRow.id)))
            raise ProcessNotFound(
                f"no process '{process_id}' in the registry; {hint + ' ' if hint else ''}"
                "`robo processes` lists them, `robo deploy PATH` adds one"
            )
        return process

    @staticmethod
    def _version(session: Session, process_id: str, version: str) -> VersionRow:
        row = session.scalars(
            select(VersionRow).where(
                VersionRow.process_id == process_id, VersionRow.version == version
            )
        ).one_or_none()
        if row is None:
            known = session.scalars(
                select(VersionRow.version).where(VersionRow.process_id == process_id)
            ).all()
            raise VersionNotFound(
                f"{process_id} has no version {version}; deployed versions: {', '.join(known)}"
            )
        return row

    def _snapshot(self, row: VersionRow, process: ProcessRow) -> ProcessVersion:
        definition = _stored(
            ProcessDefinition, row.definition, f"{row.process_id} {row.version}",
            f"robo deploy a corrected version, or robo rollback {row.process_id} VERSION",
        )  # fmt: skip
        return ProcessVersion(
            version_id=row.id,
            definition=definition,
            schedule=resolve_schedule(definition.id, definition.schedule, self.defaults),
            definition_text=row.definition_text,
            files={f.path: f.content for f in row.files},
            content_hash=row.content_hash,
            enabled=process.enabled,
            paused=process.paused,
            origin_region=row.origin_region,
            origin_version=row.origin_version,
        )


M = TypeVar("M", bound=BaseModel)


def _stored(model: type[M], data: object, what: str, fix: str) -> M:
    """A stored row read back as its model; one clear error if this robo's bounds (newer
    than the row) refuse it, instead of a validation traceback."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, what, fix) from None


def _invalid(exc: ValidationError, what: str, fix: str) -> StoredVersionInvalid:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return StoredVersionInvalid(
        f"{what}, as stored in the database, no longer passes this robo's checks: "
        f"{where}: {first['msg']}{more}\n    hint: {fix}"
    )


def _is_binary(data: bytes | None) -> bool:
    if data is None:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return b"\0" in data


def _next_patch(version: str) -> str:
    core = version.split("-")[0].split(".")
    return ".".join([*core[:2], str(int(core[2]) + 1)])
