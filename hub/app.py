"""The composition root: settings in, a wired FastAPI application out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI, Request, Response
from sqlalchemy import text

from hub.checkout import service as checkout
from hub.checkout.endpoints import ops_router as checkout_ops_router
from hub.checkout.endpoints import terminal_router as checkout_terminal_router
from hub.checkout.flow import CheckoutFlow, InsurancePlatforms
from hub.config import Settings
from hub.console import service as console
from hub.console.endpoints import router as console_router
from hub.db import Database, utcnow
from hub.disbursements import service as disbursements
from hub.disbursements.callbacks import CallbackSender
from hub.disbursements.endpoints import router as disbursements_router
from hub.errors import HubError, install_error_handlers
from hub.gateway.endpoints import ops_router as gateway_ops_router
from hub.gateway.endpoints import terminal_router as gateway_terminal_router
from hub.gateway.lane import HeartbeatLane
from hub.gateway.runtime import GatewayRuntime
from hub.issuer.endpoints import router as issuer_router
from hub.issuer.protection import CardDataKeys
from hub.issuer.terminal_endpoints import router as issuer_terminal_router
from hub.ledger import service as ledger
from hub.ledger.endpoints import router as ledger_router
from hub.limits import BodySizeLimit
from hub.observability import RequestContext, configure_logging, metrics_response
from hub.outbox.service import Handler, RetryPolicy
from hub.outbox.worker import OutboxWorker
from hub.payments import codes as payment_codes
from hub.payments.code_endpoints import FRAMES_PATH
from hub.payments.code_endpoints import cardholder_router as payment_cardholder_router
from hub.payments.code_endpoints import ops_router as payment_ops_router
from hub.payments.code_endpoints import terminal_router as payment_terminal_router
from hub.payments.endpoints import ops_router as card_payment_ops_router
from hub.payments.endpoints import terminal_router as card_payment_terminal_router
from hub.workers import PeriodicJob
from integrations.his.client import HttpHospitalInformationSystem
from integrations.loans.client import HttpLoanSystem
from integrations.medical_insurance.client import HttpMedicalInsurance, Institution

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
    flow = checkout_flow(settings, db, clock)
    outbox = outbox_worker(settings, db, clock, flow=flow)
    jobs = _periodic_jobs(settings, db, clock, outbox) if run_workers else []
    gateway = GatewayRuntime(settings, db, clock)
    jobs += gateway.periodic_jobs() if run_workers else []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for job in jobs:
            job.start()
        yield
        for job in jobs:
            job.stop()
        outbox.close()  # closes the checkout flow's and the loan system's HTTP clients
        if database is None:
            db.dispose()

    app = FastAPI(title="SSC Hub", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.db = db
    app.state.clock = clock
    app.state.gateway = gateway
    app.state.card_keys = CardDataKeys.from_settings(settings)
    app.state.checkout = flow
    app.state.outbox = outbox
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_body_bytes,
        routes={FRAMES_PATH: settings.frame_max_bytes},
    )
    app.add_middleware(RequestContext)
    # Added last, so outermost: heartbeats skip the stack (see hub/gateway/lane.py).
    app.add_middleware(HeartbeatLane, limit=settings.gateway_terminal_body_bytes)
    _health_routes(app)
    app.include_router(ledger_router)
    app.include_router(gateway_terminal_router)
    app.include_router(gateway_ops_router)
    app.include_router(console_router)
    app.include_router(issuer_router)
    app.include_router(disbursements_router)
    app.include_router(payment_cardholder_router)
    app.include_router(payment_terminal_router)
    app.include_router(payment_ops_router)
    app.include_router(issuer_terminal_router)
    app.include_router(card_payment_terminal_router)
    app.include_router(card_payment_ops_router)
    app.include_router(checkout_terminal_router)
    app.include_router(checkout_ops_router)
    return app


def _periodic_jobs(
    settings: Settings, db: Database, clock: Clock, outbox: OutboxWorker
) -> list[PeriodicJob]:
    return [
        PeriodicJob(
            "payment-code-purge",
            3600.0,
            lambda: db.transaction(lambda s: payment_codes.purge_unused_codes(s, clock())),
        ),
        PeriodicJob(
            "hold-expiry",
            settings.hold_sweep_seconds,
            lambda: db.transaction(lambda s: ledger.expire_holds(s, clock())),
        ),
        PeriodicJob(
            "console-session-sweep",
            300.0,
            lambda: db.transaction(
                lambda s: console.sweep_sessions(s, settings.console_idle_timeout_seconds, clock())
            ),
        ),
        PeriodicJob("outbox", settings.outbox_poll_seconds, outbox.drain),
    ]


def outbox_worker(
    settings: Settings, db: Database, clock: Clock, *, flow: CheckoutFlow | None = None
) -> OutboxWorker:
    """The outbox worker with every topic's delivery handler; `flow` shares the API's checkout."""
    return OutboxWorker(
        db,
        clock,
        _outbox_handlers(settings, db, clock, flow or checkout_flow(settings, db, clock)),
        policy=RetryPolicy(
            max_attempts=settings.outbox_max_attempts,
            base_seconds=settings.outbox_backoff_base_seconds,
            cap_seconds=settings.outbox_backoff_cap_seconds,
        ),
        lease_seconds=settings.outbox_lease_seconds,
        batch=settings.outbox_batch,
        concurrency=settings.outbox_concurrency,
    )


def _outbox_handlers(
    settings: Settings, db: Database, clock: Clock, flow: CheckoutFlow
) -> dict[str, Handler]:
    loan_system = HttpLoanSystem(
        timeout=settings.loan_callback_timeout_seconds, clock=lambda: clock().timestamp()
    )
    return {
        disbursements.CALLBACK_TOPIC: CallbackSender(
            db, loan_system, disbursements.Rules.from_settings(settings)
        ),
        checkout.TOPIC: flow,
    }


def checkout_flow(settings: Settings, db: Database, clock: Clock) -> CheckoutFlow:
    """The hospital checkout with the concrete insurance platform (one client per unit) and HIS."""

    def insurance_for(institution: Institution) -> HttpMedicalInsurance:
        return HttpMedicalInsurance(
            settings.insurance_base_url,
            institution,
            timeout=settings.insurance_timeout_seconds,
            clock=clock,
        )

    def his() -> HttpHospitalInformationSystem:
        return HttpHospitalInformationSystem(
            settings.his_base_url, timeout=settings.his_timeout_seconds
        )

    return CheckoutFlow(
        db, clock, InsurancePlatforms(insurance_for), his, checkout.Rules.from_settings(settings)
    )


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
