"""The hub as one process: the HTTP API and console, the rollup refresher and, optionally, an ingest worker.

Production may run these as separate processes (``hub serve`` for HTTP, ``hub ingest`` workers); the demo
and small sites run them together with ``hub run``.
"""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from sqlalchemy import Engine

from cloud.alarms.worker import AlarmWorker
from cloud.api.app import create_app
from cloud.billing.dues import DuesWorker
from cloud.console.pages import mount_console
from cloud.db import make_engine
from cloud.ingest.worker import IngestWorker
from cloud.maintenance.worker import MaintenanceWorker
from cloud.notify.channels import build_senders
from cloud.notify.dispatcher import Dispatcher
from cloud.patrol.edge_scans import EdgeScanWorker
from cloud.patrol.monitor import PatrolMonitor
from cloud.schema import create_schema
from cloud.settings import HubSettings
from cloud.tickets.timers import TicketTimers
from cloud.timeseries.rollup import RollupWorker

log = logging.getLogger(__name__)
ROLLUP_INTERVAL_S = 30.0


class HubService:
    def __init__(self, settings: HubSettings, *, ingest: bool, worker_name: str = "hub") -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.database_url)
        create_schema(self.engine)
        app = create_app(settings, engine=self.engine)
        mount_console(app)
        self._http = uvicorn.Server(
            uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning")
        )
        self._rollups = RollupWorker(self.engine, ROLLUP_INTERVAL_S)
        self._maintenance = MaintenanceWorker(self.engine)
        self._dues = DuesWorker(self.engine)
        self._ticket_timers = TicketTimers(self.engine)
        self._patrol_monitor = PatrolMonitor(self.engine)
        self._patrol_edge_scans = EdgeScanWorker(self.engine)
        self.alarms = AlarmWorker(self.engine)
        senders = build_senders(settings, app.state.sms_sender)
        self.dispatcher = Dispatcher(self.engine, senders, sms_kinds=settings.notify_sms_kinds)
        self.ingest = IngestWorker(settings, self.engine, worker_name, on_stored=self.alarms.wake) if ingest else None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def console_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}/console/"

    def start(self, timeout_s: float = 20.0) -> None:
        """Start every part; returns once the HTTP server accepts connections."""
        self._rollups.start()
        self._maintenance.start()
        self._dues.start()
        self._ticket_timers.start()
        self._patrol_monitor.start()
        self._patrol_edge_scans.start()
        self._spawn("hub-http", self._http.run)
        self._spawn("hub-alarms", lambda: self.alarms.run(self._stop))
        self._spawn("hub-notify", lambda: self.dispatcher.run(self._stop))
        if self.ingest is not None:
            ingest = self.ingest
            self._spawn("hub-ingest", lambda: ingest.run(self._stop))
        deadline = time.monotonic() + timeout_s
        while not self._http.started:
            if time.monotonic() > deadline or not self._threads[0].is_alive():
                self.stop()
                raise RuntimeError(
                    f"hub HTTP server did not start on {self.settings.http_host}:{self.settings.http_port}"
                )
            time.sleep(0.05)
        log.info("hub: console at %s", self.console_url)

    def _spawn(self, name: str, target: object) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._http.should_exit = True
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        self._rollups.stop()
        self._maintenance.stop()
        self._dues.stop()
        self._ticket_timers.stop()
        self._patrol_monitor.stop()
        self._patrol_edge_scans.stop()
        self.engine.dispose()
