"""`robo metrics serve`: a Prometheus / OpenMetrics endpoint over robo's database.

A custom collector reads the database on every scrape (a few grouped counts,
no item data), so the figures are those of `robo status` and `robo report`,
never a copy kept in memory. Labels are process ids, queue names, statuses and
host names; no parameter, item data, URL or secret is ever exposed.

``robo_database_up`` is 0 when the database does not answer (the other
families are then left out of that scrape rather than reported as zeros).
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from robo.clock import utcnow
from robo.errors import ConfigurationError, RoboError
from robo.logging import get_logger
from robo.queues import NEEDS_HUMAN, WAITING, Queues
from robo.status import busy_slots, open_alerts, scheduler_view, workers_view
from robo.storage.database import Database
from robo.storage.models import ItemRow, RunRow

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464  # the port OpenTelemetry's Prometheus exporters use by default
DISPATCH_LAG_RUNS = 20  # the dispatch lag gauges cover the last N scheduled runs
# Every queue shows these, as 0 when it holds none: a series that vanishes cannot alert.
QUEUE_STATES: tuple[str, ...] = (*WAITING, "in_progress", *NEEDS_HUMAN)


class RoboCollector(Collector):
    """Families read from the database at each scrape (``collect``)."""

    def __init__(
        self,
        db: Database,
        queues: Queues,
        *,
        heartbeat_seconds: float,
        alerts_configured: bool,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db, self.queues = db, queues
        self.heartbeat_seconds = heartbeat_seconds
        self.alerts_configured = alerts_configured
        self.clock = clock
        self.log = get_logger(component="metrics")

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        began = time.monotonic()
        try:
            families = list(self._families(self.clock()))
        except (RoboError, SQLAlchemyError) as exc:
            message = exc.message if isinstance(exc, RoboError) else type(exc).__name__
            self.log.error("metrics.database_unavailable", error=message.splitlines()[0])
            families, up = [], 0
        else:
            up = 1
        yield GaugeMetricFamily(
            "robo_database_up", "1 if robo's database answered this scrape, else 0.", value=up
        )
        yield from families
        yield GaugeMetricFamily(
            "robo_scrape_duration_seconds",
            "Time spent reading the database for this scrape.",
            value=round(time.monotonic() - began, 6),
        )

    def _families(self, now: dt.datetime) -> Iterator[Metric]:
        yield from self._runs()
        yield from self._items()
        yield from self._queues()
        yield from self._dispatch_lag()
        yield from self._scheduler(now)
        yield from self._workers()
        alerts = open_alerts(self.db, self.alerts_configured)
        if alerts is not None:
            yield GaugeMetricFamily("robo_alerts_open", "Alerts open now.", value=alerts)

    # --- the ledger ---------------------------------------------------------------------

    def _runs(self) -> Iterator[Metric]:
        finished = CounterMetricFamily(
            "robo_runs_finished",
            "Runs ended, by process, final status and purpose (production, test, demo).",
            labels=["process", "status", "purpose"],
        )
        running = GaugeMetricFamily(
            "robo_runs_running", "Runs in progress now.", labels=["process", "purpose"]
        )
        query = (
            select(RunRow.process_id, RunRow.status, RunRow.purpose, func.count())
            .where(RunRow.imported_from.is_(None))  # this installation's own runs
            .group_by(RunRow.process_id, RunRow.status, RunRow.purpose)
            .order_by(RunRow.process_id, RunRow.status, RunRow.purpose)
        )
        with self.db.session() as session:
            rows = session.execute(query).all()
        for process_id, status, purpose, count in rows:
            if status == "running":
                running.add_metric([process_id, purpose], count)
            else:
                finished.add_metric([process_id, status, purpose], count)
        yield finished
        yield running

    def _items(self) -> Iterator[Metric]:
        items = CounterMetricFamily(
            "robo_items",
            "Item outcomes recorded, by process, outcome and purpose.",
            labels=["process", "outcome", "purpose"],
        )
        minutes = CounterMetricFamily(
            "robo_minutes_saved",
            "Agent minutes saved by production runs (items and per-run minutes), by process.",
            labels=["process"],
        )
        own = RunRow.imported_from.is_(None)
        by_outcome = (
            select(RunRow.process_id, ItemRow.status, RunRow.purpose, func.count())
            .join(RunRow, RunRow.id == ItemRow.run_id)
            .where(own)
            .group_by(RunRow.process_id, ItemRow.status, RunRow.purpose)
            .order_by(RunRow.process_id, ItemRow.status, RunRow.purpose)
        )
        production = (own, RunRow.purpose == "production")
        item_minutes = (
            select(RunRow.process_id, func.sum(ItemRow.minutes_saved))
            .join(RunRow, RunRow.id == ItemRow.run_id)
            .where(*production)
            .group_by(RunRow.process_id)
        )
        run_minutes = (
            select(RunRow.process_id, func.sum(RunRow.run_minutes_saved))
            .where(*production)
            .group_by(RunRow.process_id)
        )
        saved: dict[str, float] = {}
        with self.db.session() as session:
            for process_id, outcome, purpose, count in session.execute(by_outcome):
                items.add_metric([process_id, outcome, purpose], count)
            for query in (item_minutes, run_minutes):
                for process_id, total in session.execute(query):
                    saved[process_id] = saved.get(process_id, 0.0) + float(total or 0.0)
        for process_id in sorted(saved):
            minutes.add_metric([process_id], round(saved[process_id], 6))
        yield items
        yield minutes

    # --- queues -------------------------------------------------------------------------

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "robo_queue_items",
            "Queue items by queue and status (depth: new + deferred).",
            labels=["queue", "status"],
        )
        worklist = GaugeMetricFamily(
            "robo_worklist_items",
            "Items waiting for an agent (exceptions, uncertain, overdue), by queue.",
            labels=["queue"],
        )
        sizes = self.queues.worklist_sizes()
        for summary in self.queues.summaries():
            for status in sorted(set(QUEUE_STATES) | set(summary.counts)):
                depth.add_metric([summary.name, status], summary.counts.get(status, 0))
            worklist.add_metric([summary.name], sizes.get(summary.name, 0))
        yield depth
        yield worklist

    # --- the scheduler and workers -------------------------------------------------------

    def _dispatch_lag(self) -> Iterator[Metric]:
        """Fire time -> run start of the last scheduled runs (cron and interval fires)."""
        query = (
            select(RunRow.scheduled_for, RunRow.started_at)
            .where(
                RunRow.trigger == "schedule",
                RunRow.scheduled_for.is_not(None),
                RunRow.imported_from.is_(None),
            )
            .order_by(RunRow.started_at.desc(), RunRow.id.desc())
            .limit(DISPATCH_LAG_RUNS)
        )
        with self.db.session() as session:
            lags = [
                max((started - fired).total_seconds(), 0.0)
                for fired, started in session.execute(query)
                if fired is not None
            ]
        window = f"over the last {DISPATCH_LAG_RUNS} scheduled runs"
        yield GaugeMetricFamily(
            "robo_dispatch_lag_runs", f"Scheduled runs the lag gauges cover ({window}).",
            value=len(lags),
        )  # fmt: skip
        if not lags:
            return
        yield GaugeMetricFamily(
            "robo_dispatch_lag_seconds",
            "Seconds from its fire time to the start of the latest scheduled run.",
            value=round(lags[0], 3),
        )
        yield GaugeMetricFamily(
            "robo_dispatch_lag_mean_seconds", f"Mean dispatch lag {window}.",
            value=round(sum(lags) / len(lags), 3),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "robo_dispatch_lag_max_seconds", f"Largest dispatch lag {window}.",
            value=round(max(lags), 3),
        )  # fmt: skip

    def _scheduler(self, now: dt.datetime) -> Iterator[Metric]:
        view = scheduler_view(self.db, now)
        leader = GaugeMetricFamily(
            "robo_scheduler_leader",
            "1 if a scheduler holds a live lease (labelled with its host and owner id), else 0.",
            labels=["host", "owner"],
        )
        if view.live and view.leader is not None:
            leader.add_metric([view.leader_host or "", view.leader], 1)
        else:
            leader.add_metric(["", ""], 0)
        yield leader
        yield GaugeMetricFamily(
            "robo_scheduler_standbys", "Schedulers standing by to take over.",
            value=len(view.standbys),
        )  # fmt: skip

    def _workers(self) -> Iterator[Metric]:
        workers = workers_view(self.db, self.heartbeat_seconds)
        busy, slots = busy_slots(workers)
        yield GaugeMetricFamily(
            "robo_workers_alive", "Workers whose heartbeat is recent.",
            value=sum(1 for w in workers if w.alive),
        )  # fmt: skip
        yield GaugeMetricFamily("robo_worker_slots", "Bot slots of the live workers.", value=slots)
        yield GaugeMetricFamily(
            "robo_worker_slots_busy", "Slots of the live workers running a run now.", value=busy
        )


# --- the HTTP endpoint --------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 s is not news


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class MetricsServer:
    """The endpoint, bound on creation (a port in use fails here); ``serve_forever`` until
    interrupted, then ``close``."""

    def __init__(self, collector: Collector, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        server_class: type[_Server] = _Server
        if ":" in host:  # an IPv6 address
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self.httpd = make_server(
                host, port, make_wsgi_app(registry), server_class=server_class,
                handler_class=_QuietHandler,
            )  # fmt: skip
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
                "--port (or --host), or stop what is using it"
            ) from None
        self.host = host
        self.port = int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.5)

    def close(self) -> None:
        self.httpd.server_close()
