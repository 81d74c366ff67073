"""Gateway HTTP API: the terminal-facing endpoints (signed) and the bank-ops endpoints (token).

The heartbeat is the hot path: it is async, authenticates from memory, records the sighting in
memory, and touches the database only when the terminal has commands due.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from devices.protocol.messages import (
    CONFIG_PATH,
    ENROL_PATH,
    EVENTS_PATH,
    HEARTBEAT_PATH,
    ROTATE_KEY_PATH,
    CommandReply,
    CommandReplyReceipt,
    ConfigEnvelope,
    EnrolmentRequest,
    EnrolmentResponse,
    EventReceipt,
    Heartbeat,
    HeartbeatReply,
    KeyRotation,
    KeyRotationReceipt,
    TerminalEvent,
)
from hub.audit import service as audit
from hub.auth import require_ops
from hub.db import Db, Now, PathId, QueryId
from hub.errors import HubError
from hub.gateway import service
from hub.gateway.auth import TerminalCaller, authenticate_terminal, refuse_other_unit
from hub.gateway.errors import GatewayError
from hub.gateway.presence import Sighting
from hub.gateway.runtime import GatewayRuntime
from hub.gateway.schemas import (
    CommandIn,
    CommandOut,
    ConfigDetail,
    ConfigIn,
    ConfigOut,
    EnrollmentCodeOut,
    ImportRowResult,
    KindName,
    PresenceName,
    RolloutIn,
    RolloutOut,
    RolloutProgress,
    TerminalDetail,
    TerminalFilter,
    TerminalIn,
    TerminalOut,
    TerminalPage,
    UnitIn,
    UnitOut,
    UnitSummary,
)

M = TypeVar("M", bound=BaseModel)
OPS_ACTOR = "ops_api"

terminal_router = APIRouter(tags=["terminal"])
ops_router = APIRouter(prefix="/api/gateway", tags=["gateway"], dependencies=[Depends(require_ops)])


def _runtime(request: Request) -> GatewayRuntime:
    return request.app.state.gateway  # type: ignore[no-any-return]


def _parse(model: type[M], body: bytes) -> M:
    """Parse a terminal's body after its signature passed (not before, as FastAPI would)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise HubError("invalid_request", _field_errors(exc), 422) from exc


def _field_errors(exc: ValidationError) -> str:
    # Field paths and reasons only, never the input itself.
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _json(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code, media_type="application/json")


# --- terminal-facing -------------------------------------------------------------------------


@terminal_router.post(ENROL_PATH, status_code=status.HTTP_201_CREATED)
def enrol(request: Request, spec: EnrolmentRequest, db: Db, now: Now) -> EnrolmentResponse:
    """Unsigned: the one-time code is the credential. Refusals are audited."""
    interval = request.app.state.settings.gateway_heartbeat_interval_seconds
    try:
        return db.transaction(lambda s: service.enrol(s, spec, now=now, interval=interval))
    except GatewayError as exc:
        details: dict[str, object] = {"code": exc.code, "serial": spec.serial, "model": spec.model}
        db.transaction(
            lambda s: audit.record(
                s,
                actor="unauthenticated",
                action="terminal.enrol_refused",
                subject=f"serial:{spec.serial}",
                now=now,
                details=details,
            )
        )
        raise


@terminal_router.post(HEARTBEAT_PATH, response_model=HeartbeatReply)
async def heartbeat(request: Request) -> Response:
    """Signed. Records the sighting in memory; hands out due commands and the desired config.

    Served by the heartbeat lane (lane.py) ahead of the framework stack; this route is the
    documented contract and the same function. Authentication is therefore called directly,
    not declared as a dependency.
    """
    caller = await authenticate_terminal(request)
    runtime = _runtime(request)
    beat = _parse(Heartbeat, await request.body())
    if beat.institution_code not in (None, caller.institution_code):
        await run_in_threadpool(refuse_other_unit, request, caller, beat.institution_code)
    now = runtime.clock()
    runtime.presence.record(
        caller.terminal_id,
        Sighting(
            at=now,
            interval=beat.heartbeat_interval_seconds,
            sequence=beat.sequence,
            firmware_version=beat.firmware_version,
            config_hash=beat.config_hash,
            peripherals=dict(beat.peripherals),
            outbox_depth=beat.outbox_depth,
            uptime_seconds=beat.uptime_seconds,
        ),
    )
    entry = runtime.directory.cached(caller.terminal_id)
    if entry is None:  # dropped by a change since authentication
        entry = await run_in_threadpool(runtime.directory.load, caller.terminal_id)
    commands = []
    if entry is not None and entry.commands_due_at is not None and entry.commands_due_at <= now:
        commands = await run_in_threadpool(runtime.hand_out_commands, caller.terminal_id)
    reply = HeartbeatReply(
        next_interval_seconds=runtime.next_interval(beat.heartbeat_interval_seconds),
        commands=commands,
        desired_config=entry.desired_config if entry else None,
        hub_time=now,
    )
    return _json(reply)


@terminal_router.get("/api/terminal/ping")
async def ping(request: Request, caller: TerminalCaller) -> dict[str, object]:
    """A signed no-op: an agent checks it can reach the hub (e.g. after a new hub URL)."""
    return {"terminal_id": caller.terminal_id, "hub_time": _runtime(request).clock().isoformat()}


@terminal_router.get(CONFIG_PATH)
def terminal_config(caller: TerminalCaller, db: Db) -> ConfigEnvelope:
    with db.session() as s:
        return service.desired_config_for(s, caller.terminal_id)


@terminal_router.post("/api/terminal/commands/{command_id}/reply")
async def command_reply(
    request: Request, command_id: str, caller: TerminalCaller
) -> CommandReplyReceipt:
    reply = _parse(CommandReply, await request.body())
    runtime = _runtime(request)
    now = runtime.clock()
    return await run_in_threadpool(
        runtime.database.transaction,
        lambda s: service.reply_to_command(s, caller.terminal_id, command_id, reply, now=now),
    )


@terminal_router.post(EVENTS_PATH)
async def terminal_event(request: Request, caller: TerminalCaller) -> Response:
    event = _parse(TerminalEvent, await request.body())
    runtime = _runtime(request)
    now = runtime.clock()
    receipt: EventReceipt = await run_in_threadpool(
        runtime.database.transaction,
        lambda s: service.record_terminal_event(s, caller.terminal_id, event, now=now),
    )
    return _json(receipt, 201 if receipt.result == "ok" else 200)


@terminal_router.post(ROTATE_KEY_PATH)
async def rotate_key(request: Request, caller: TerminalCaller) -> KeyRotationReceipt:
    rotation = _parse(KeyRotation, await request.body())
    runtime = _runtime(request)
    now = runtime.clock()
    return await run_in_threadpool(
        runtime.database.transaction,
        lambda s: service.rotate_key(s, caller.terminal_id, rotation, now=now),
    )


# --- bank operations -------------------------------------------------------------------------


@ops_router.post("/units", status_code=status.HTTP_201_CREATED)
def create_unit(spec: UnitIn, db: Db, now: Now) -> UnitOut:
    return db.transaction(lambda s: service.create_unit(s, spec, actor=OPS_ACTOR, now=now))


@ops_router.get("/units")
def list_units(db: Db) -> list[UnitSummary]:
    with db.session() as s:
        return service.list_units(s)


@ops_router.post("/units/{unit_id}/disable")
def disable_unit(unit_id: PathId, db: Db, now: Now) -> UnitOut:
    return db.transaction(lambda s: service.disable_unit(s, unit_id, actor=OPS_ACTOR, now=now))


@ops_router.post("/units/{unit_id}/enable")
def enable_unit(unit_id: PathId, db: Db, now: Now) -> UnitOut:
    return db.transaction(lambda s: service.enable_unit(s, unit_id, actor=OPS_ACTOR, now=now))


@ops_router.post("/units/{unit_id}/terminals/import")
async def import_terminals(unit_id: PathId, request: Request) -> list[ImportRowResult]:
    """CSV body (`serial,model[,kind][,hardware_revision]`); one result per row."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HubError("invalid_request", "the CSV must be UTF-8", 422) from exc
    runtime = _runtime(request)
    now = runtime.clock()
    interval = runtime.settings.gateway_heartbeat_interval_seconds
    return await run_in_threadpool(
        runtime.database.transaction,
        lambda s: service.import_terminals_csv(
            s, unit_id, text, actor=OPS_ACTOR, now=now, interval=interval
        ),
    )


@ops_router.post("/terminals", status_code=status.HTTP_201_CREATED)
def preregister_terminal(request: Request, spec: TerminalIn, db: Db, now: Now) -> TerminalOut:
    interval = request.app.state.settings.gateway_heartbeat_interval_seconds
    return db.transaction(
        lambda s: service.preregister_terminal(s, spec, actor=OPS_ACTOR, now=now, interval=interval)
    )


@ops_router.get("/terminals")
def search_terminals(
    db: Db,
    unit_id: QueryId = None,
    kind: KindName | None = None,
    model: str | None = None,
    presence: PresenceName | None = None,
    status: Annotated[str | None, Query(pattern="^(registered|active|disabled)$")] = None,
    text: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> TerminalPage:
    terms = TerminalFilter.model_validate(
        {
            "unit_id": unit_id,
            "kind": kind,
            "model": model,
            "presence": presence,
            "status": status,
            "text": text,
            "limit": limit,
            "offset": offset,
        }
    )
    with db.session() as s:
        return service.search_terminals(s, terms)


@ops_router.get("/terminals/{terminal_id}")
def get_terminal(terminal_id: PathId, db: Db) -> TerminalDetail:
    with db.session() as s:
        return service.get_terminal_detail(s, terminal_id)


@ops_router.post("/terminals/{terminal_id}/enrollment-codes", status_code=201)
def create_enrollment_code(
    request: Request, terminal_id: PathId, db: Db, now: Now
) -> EnrollmentCodeOut:
    settings = request.app.state.settings
    ttl = timedelta(seconds=settings.gateway_enrollment_code_ttl_seconds)
    return db.transaction(
        lambda s: service.create_enrollment_code(
            s, terminal_id, actor=OPS_ACTOR, now=now, hub_url=settings.gateway_public_url, ttl=ttl
        )
    )


@ops_router.post("/terminals/{terminal_id}/disable")
def disable_terminal(terminal_id: PathId, db: Db, now: Now) -> TerminalOut:
    return db.transaction(
        lambda s: service.disable_terminal(s, terminal_id, actor=OPS_ACTOR, now=now)
    )


@ops_router.post("/terminals/{terminal_id}/enable")
def enable_terminal(terminal_id: PathId, db: Db, now: Now) -> TerminalOut:
    return db.transaction(
        lambda s: service.enable_terminal(s, terminal_id, actor=OPS_ACTOR, now=now)
    )


@ops_router.post("/terminals/{terminal_id}/commands", status_code=201)
def queue_command(
    request: Request, terminal_id: PathId, spec: CommandIn, db: Db, now: Now
) -> CommandOut:
    settings = request.app.state.settings
    ttl = timedelta(seconds=spec.ttl_seconds or settings.gateway_command_ttl_seconds)
    attempts = spec.max_attempts or settings.gateway_command_max_attempts
    return db.transaction(
        lambda s: service.queue_command(
            s,
            terminal_id,
            spec.kind,
            actor=OPS_ACTOR,
            now=now,
            config_id=spec.config_id,
            ttl=ttl,
            max_attempts=attempts,
        )
    )


@ops_router.get("/configs")
def list_configs(db: Db, model: str | None = None) -> list[ConfigOut]:
    with db.session() as s:
        return service.list_configs(s, model)


@ops_router.post("/configs", status_code=201)
def publish_config(spec: ConfigIn, db: Db, now: Now) -> ConfigOut:
    return db.transaction(
        lambda s: service.publish_config(s, spec.document, actor=OPS_ACTOR, now=now)
    )


@ops_router.get("/configs/{config_id}")
def get_config(config_id: PathId, db: Db) -> ConfigDetail:
    with db.session() as s:
        return service.get_config(s, config_id)


@ops_router.post("/rollouts", status_code=201)
def create_rollout(spec: RolloutIn, db: Db, now: Now) -> RolloutOut:
    return db.transaction(lambda s: service.create_rollout(s, spec, actor=OPS_ACTOR, now=now))


@ops_router.get("/rollouts")
def list_rollouts(db: Db, status: str | None = None) -> list[RolloutOut]:
    with db.session() as s:
        return service.list_rollouts(s, status)


@ops_router.get("/rollouts/{rollout_id}")
def rollout_progress(rollout_id: PathId, db: Db) -> RolloutProgress:
    with db.session() as s:
        return service.rollout_progress(s, rollout_id)


_ROLLOUT_ACTIONS = {
    "start": service.start_rollout,
    "pause": service.pause_rollout,
    "resume": service.resume_rollout,
    "abort": service.abort_rollout,
}


@ops_router.post("/rollouts/{rollout_id}/{action}")
def change_rollout(rollout_id: PathId, action: str, db: Db, now: Now) -> RolloutOut:
    """`start`, `pause`, `resume` or `abort`."""
    change = _ROLLOUT_ACTIONS.get(action)
    if change is None:
        raise HubError("not_found", f"no rollout action {action!r}", 404)
    return db.transaction(lambda s: change(s, rollout_id, actor=OPS_ACTOR, now=now))
