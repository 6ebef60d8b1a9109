"""The database schema: registry, ledger, queues and secrets. Changed only through migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import false


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every back-end (SQLite keeps no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use robo.clock.utcnow()")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ProcessRow(Base):
    """A process id and which of its versions is active."""

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    active_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("process_versions.id", use_alter=True, name="fk_processes_active_version")
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    active_version: Mapped[VersionRow | None] = relationship(foreign_keys=[active_version_id])


class VersionRow(Base):
    """An immutable, hashed version of a definition and its files."""

    __tablename__ = "process_versions"
    __table_args__ = (UniqueConstraint("process_id", "version", name="uq_version_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    process_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    definition: Mapped[dict[str, Any]]
    definition_text: Mapped[str] = mapped_column(Text)
    source_path: Mapped[str] = mapped_column(Text, default="")
    deployed_at: Mapped[dt.datetime]
    deployed_by: Mapped[str] = mapped_column(String(128), default="")
    origin_region: Mapped[str | None] = mapped_column(String(64))
    origin_version: Mapped[str | None] = mapped_column(String(64))

    files: Mapped[list[VersionFileRow]] = relationship(
        back_populates="version", cascade="all, delete-orphan", order_by="VersionFileRow.path"
    )


class VersionFileRow(Base):
    __tablename__ = "version_files"

    version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)

    version: Mapped[VersionRow] = relationship(back_populates="files")


class RegistryEventRow(Base):
    """What happened to a process and when: the answer to `robo history`."""

    __tablename__ = "registry_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    process_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class RunRow(Base):
    """One execution of a process version; the baseline used is copied in."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_process_started", "process_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    process_id: Mapped[str] = mapped_column(String(64))
    # Null for runs imported from another installation (national view).
    version_id: Mapped[int | None] = mapped_column(ForeignKey("process_versions.id"))
    version: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(64), index=True)
    application: Mapped[str] = mapped_column(String(255), default="", server_default="")
    origin_region: Mapped[str | None] = mapped_column(String(64))
    origin_version: Mapped[str | None] = mapped_column(String(64))
    scheduled_for: Mapped[dt.datetime | None]
    resumes_run_id: Mapped[int | None]
    imported_from: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str] = mapped_column(String(255), default="", server_default="")
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    # Reports count production runs only, unless asked (robo run --test, the demo).
    purpose: Mapped[str] = mapped_column(String(16), server_default="production")
    status: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int | None]
    parameters: Mapped[dict[str, Any]]
    input_name: Mapped[str] = mapped_column(Text, default="")
    items_total: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    manual_minutes_per_item: Mapped[float] = mapped_column(Float)
    residual_minutes_per_item: Mapped[float] = mapped_column(Float)
    manual_minutes_per_run: Mapped[float] = mapped_column(Float)
    baseline_measured_by: Mapped[str] = mapped_column(String(255))
    baseline_measured_on: Mapped[str] = mapped_column(String(10))
    run_minutes_saved: Mapped[float] = mapped_column(Float, default=0)
    # The region's agent hour cost when the run started (None: not set), kept like the
    # baseline: a later change never rewrites the euros of earlier runs.
    hour_cost_eur: Mapped[float | None] = mapped_column(Float)
    hour_cost_set_by: Mapped[str] = mapped_column(String(255), server_default="")
    hour_cost_set_on: Mapped[str] = mapped_column(String(10), server_default="")
    # The recovery of an abandoned run, recorded in the abandoning transaction so that a
    # scheduler killed before submitting it submits it when it restarts:
    # due -> submitted -> started (its run row exists), or declined by the schedule's policy.
    recovery: Mapped[str | None] = mapped_column(String(16))
    # robo cancel RUN: the run stops after its current item (after_item) or at once (now),
    # read by the run itself wherever it runs (migration 0010).
    cancel_requested_at: Mapped[dt.datetime | None]
    cancel_mode: Mapped[str | None] = mapped_column(String(16))
    cancel_requested_by: Mapped[str] = mapped_column(String(255), server_default="")


class ItemRow(Base):
    """One work item of a run: its outcome and the minutes it saved."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("run_id", "reference", name="uq_item_reference"),
        UniqueConstraint("credited_queue_item_id", name="uq_items_credit"),
        # Covers the reports' per-run pass (migration 0005).
        Index(
            "ix_items_report_cover",
            "run_id",
            "status",
            "minutes_saved",
            "duration_seconds",
            "attempts",
            "queue_item_id",
            "credited_queue_item_id",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    position: Mapped[int]
    reference: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    error_type: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[list[Any]]
    data: Mapped[dict[str, Any]]
    output: Mapped[dict[str, Any]]
    minutes_saved: Mapped[float] = mapped_column(Float, default=0)
    # The queue item this row is an outcome of (None: a run from before queues, or imported).
    queue_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("queue_items.id", name="fk_items_queue_item"), index=True
    )
    # Set on the one success that earns a queue item its minutes: unique, so never twice.
    credited_queue_item_id: Mapped[int | None] = mapped_column(Integer)


class QueueRow(Base):
    """A named work queue: one per process by default, or shared (dispatcher -> performer)."""

    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # refuse: a reference is accepted once; after_business_exception: again once handed back.
    unique_references: Mapped[str] = mapped_column(String(32), default="refuse")
    created_at: Mapped[dt.datetime]


class QueueItemRow(Base):
    """A work item with one life across runs; its status machine is robo/queues.py."""

    __tablename__ = "queue_items"
    __table_args__ = (
        # Null once the item gave its reference back (policy after_business_exception).
        UniqueConstraint("queue", "holds_reference", name="uq_queue_reference"),
        Index("ix_queue_items_take", "queue", "status", "priority", "created_at"),
        Index("ix_queue_items_reference", "queue", "reference"),
        # Only waiting items, in the order runs take them (migration 0006).
        Index(
            "ix_queue_items_next",
            "queue",
            text("priority DESC"),
            text("(deadline IS NULL)"),
            "deadline",
            "created_at",
            "id",
            sqlite_where=text("status IN ('new', 'deferred')"),
            postgresql_where=text("status IN ('new', 'deferred')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(ForeignKey("queues.name"))
    reference: Mapped[str] = mapped_column(String(255))
    holds_reference: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    deadline: Mapped[dt.datetime | None]
    defer_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    source: Mapped[str] = mapped_column(String(255), default="")
    added_by_run_id: Mapped[int | None]
    run_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the run holding it last
    lease_until: Mapped[dt.datetime | None]
    needs_verify: Mapped[bool] = mapped_column(Boolean, default=False)
    runs_failed: Mapped[int] = mapped_column(Integer, default=0)  # application exceptions
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # over every run
    error: Mapped[str | None] = mapped_column(Text)
    taken_by: Mapped[str | None] = mapped_column(String(128))
    taken_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[dt.datetime | None]
    human_minutes: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")


class QueueEventRow(Base):
    """What happened to a queue item, by whom and when (`robo queue show ITEM`)."""

    __tablename__ = "queue_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("queue_items.id"), index=True)
    at: Mapped[dt.datetime]
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))  # the status after the action
    actor: Mapped[str] = mapped_column(String(128), default="")
    run_id: Mapped[int | None]
    detail: Mapped[str] = mapped_column(Text, default="")


class SecretRow(Base):
    """An encrypted secret; the key lives outside the database."""

    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime]


class ScheduleEventRow(Base):
    """Every scheduling decision: a fire, or a skip with its reason."""

    __tablename__ = "schedule_events"
    __table_args__ = (
        UniqueConstraint("process_id", "trigger_key", "scheduled_for", name="uq_schedule_fire"),
        Index("ix_schedule_events_process_time", "process_id", "scheduled_for"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    process_id: Mapped[str] = mapped_column(String(64))
    trigger_key: Mapped[str] = mapped_column(String(128))
    scheduled_for: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime]
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None]
    scheduler: Mapped[str] = mapped_column(String(255), default="")


class SchedulerLockRow(Base):
    """A lease: the one scheduler allowed to fire triggers on this database."""

    __tablename__ = "scheduler_lock"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[dt.datetime]
    renewed_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class OverlayRow(Base):
    """A region's adaptation of a process (parameters, schedule, baseline...)."""

    __tablename__ = "overlays"

    process_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]]
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime]


class TrustedKeyRow(Base):
    """A region's public signing key, trusted for bundles and metrics."""

    __tablename__ = "trusted_keys"

    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    added_at: Mapped[dt.datetime]


class MetricImportRow(Base):
    """A metrics file merged into this (national) ledger; re-importing it is a no-op."""

    __tablename__ = "metric_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_hash: Mapped[str] = mapped_column(String(64), unique=True)
    region: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime]
    runs: Mapped[int]
    items: Mapped[int]


class WorkerRow(Base):
    """A bot worker (scale-out), known from its heartbeats."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    slots: Mapped[int]
    started_at: Mapped[dt.datetime]
    heartbeat_at: Mapped[dt.datetime]
    current_runs: Mapped[list[Any]]


class AlertRow(Base):
    """An alert: a rule that holds for a subject (a process, a queue, the scheduler), from
    the moment it opened until it resolved. ``open_key`` is unique and set only while it
    is open, so a storm opens it once, whoever evaluates (migration 0011)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_key_opened", "key", "opened_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))
    open_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    rule: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)  # open, resolved, test
    summary: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]]
    opened_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]
    resolution: Mapped[str] = mapped_column(Text, server_default="")
    occurrences: Mapped[int] = mapped_column(Integer, server_default="1")
    last_run_id: Mapped[int | None]  # the newest run counted in occurrences


class AlertDeliveryRow(Base):
    """One attempt at sending an alert's message (opened, resolved or test) to a channel."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int]
    at: Mapped[dt.datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
