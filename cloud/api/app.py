"""The hub's HTTP API, assembled: ``create_app(settings)``.

Every route needs a signed-in user except sign-in, owner binding, /health and the OpenAPI documents.
The schema is not created here: that is a deployment step (the ``estatehub hub`` commands create it),
not a side effect of starting a web worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from cloud.alarms import routes as alarm_routes
from cloud.api import monitoring, readings
from cloud.api.deps import API_PREFIX, SessionDep
from cloud.audit import routes as audit_routes
from cloud.auth import routes as auth_routes
from cloud.auth.binding import BindingError
from cloud.auth.services import UserError
from cloud.auth.sms import LoggingSmsSender, SmsSender
from cloud.billing import ledger_routes
from cloud.billing import routes as billing_routes
from cloud.db import make_engine, session_factory
from cloud.maintenance import routes as maintenance_routes
from cloud.maintenance.services import MaintenanceError
from cloud.notify import routes as notify_routes
from cloud.patrol import routes as patrol_routes
from cloud.payments import routes as payment_routes
from cloud.payments import webhook as payment_webhook
from cloud.registry import routes as registry_routes
from cloud.registry.importer import RegistryImportError
from cloud.registry.services import Conflict
from cloud.settings import HubSettings
from cloud.tickets import routes as ticket_routes
from cloud.tickets.states import TicketError
from cloud.timeseries.store import SqlStore, TimeSeriesStore


def _telemetry(settings: HubSettings, engine: Engine) -> TimeSeriesStore:
    if settings.timeseries_backend == "influxdb":
        from cloud.timeseries.influx import InfluxStore

        token = settings.influxdb_token.get_secret_value() if settings.influxdb_token else ""
        assert settings.influxdb_url is not None  # HubSettings refuses influxdb without a URL
        return InfluxStore(settings.influxdb_url, token, settings.influxdb_org, settings.influxdb_bucket)
    return SqlStore(engine)


def create_app(
    settings: HubSettings,
    *,
    engine: Engine | None = None,
    sms_sender: SmsSender | None = None,
    telemetry: TimeSeriesStore | None = None,
) -> FastAPI:
    """The API app. Pass ``engine`` to share one (tests do); otherwise one is made from settings.database_url
    and disposed on shutdown. ``sms_sender`` defaults to one that only logs (development)."""
    own_engine = engine is None
    engine = engine if engine is not None else make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if own_engine:
            engine.dispose()

    app = FastAPI(
        title="EstateHub hub API",
        version="1",
        summary="Registry, users and readings of the EstateHub property-management hub.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.sms_sender = sms_sender if sms_sender is not None else LoggingSmsSender()
    app.state.telemetry = telemetry if telemetry is not None else _telemetry(settings, engine)

    for router in (auth_routes.router, registry_routes.router, readings.router, monitoring.router, audit_routes.router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(alarm_routes.router, prefix=API_PREFIX)
    app.include_router(notify_routes.router, prefix=API_PREFIX)
    app.include_router(ticket_routes.router, prefix=API_PREFIX)
    app.include_router(maintenance_routes.router, prefix=API_PREFIX)
    app.include_router(ledger_routes.router, prefix=API_PREFIX)
    app.include_router(billing_routes.router, prefix=API_PREFIX)
    app.include_router(payment_routes.router, prefix=API_PREFIX)
    app.include_router(payment_webhook.router, prefix=API_PREFIX)
    app.include_router(patrol_routes.router, prefix=API_PREFIX)
    app.include_router(payment_routes.checkout_router)  # the demo provider's hosted page, outside the API

    @app.get("/health", tags=["health"])
    def health(session: SessionDep) -> dict[str, str]:
        """Liveness and database reachability, for load balancers (no token)."""
        session.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.exception_handler(RegistryImportError)
    async def _import_error(_: Request, exc: RegistryImportError) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(TicketError)
    async def _ticket_error(_: Request, exc: TicketError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(MaintenanceError)
    async def _maintenance_error(_: Request, exc: MaintenanceError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(BindingError)
    async def _binding_error(_: Request, exc: BindingError) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)

    return app
