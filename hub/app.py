"""The composition root: settings in, a wired FastAPI application out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI, Request, Response
from sqlalchemy import text

from hub.config import Settings
from hub.db import Database, utcnow
from hub.errors import HubError, install_error_handlers
from hub.issuer.endpoints import router as issuer_router
from hub.issuer.protection import CardDataKeys
from hub.ledger import service as ledger
from hub.ledger.endpoints import router as ledger_router
from hub.limits import BodySizeLimit
from hub.observability import configure_logging, install_request_context, metrics_response
from hub.workers import PeriodicJob

Clock = Callable[[], datetime]


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock = utcnow,
    run_workers: bool = True,
) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    db = database or Database(settings.database_url)
    jobs = _periodic_jobs(settings, db, clock) if run_workers else []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for job in jobs:
            job.start()
        yield
        for job in jobs:
            job.stop()
        if database is None:
            db.dispose()

    app = FastAPI(title="SSC Hub", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.db = db
    app.state.clock = clock
    app.state.card_keys = CardDataKeys.from_settings(settings)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    install_request_context(app)
    _health_routes(app)
    app.include_router(ledger_router)
    app.include_router(issuer_router)
    return app


def _periodic_jobs(settings: Settings, db: Database, clock: Clock) -> list[PeriodicJob]:
    return [
        PeriodicJob(
            "hold-expiry",
            settings.hold_sweep_seconds,
            lambda: db.transaction(lambda s: ledger.expire_holds(s, clock())),
        ),
    ]


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request) -> dict[str, str]:
        try:
            with request.app.state.db.session() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            raise HubError("not_ready", "database unreachable", 503) from exc
        return {"status": "ready"}

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics() -> Response:
        return metrics_response()
