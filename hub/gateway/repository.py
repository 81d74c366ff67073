"""Every query of the gateway. The presence flush and sweep use Core statements in batches."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from hub.gateway.models import (
    OPEN_COMMAND_STATES,
    CommandState,
    EnrollmentCode,
    FirmwareConfig,
    GatewayChange,
    KeyStatus,
    Presence,
    PresenceEvent,
    Rollout,
    RolloutStatus,
    RolloutTarget,
    Terminal,
    TerminalCommand,
    TerminalKey,
    TerminalMessage,
    TerminalStatus,
    Unit,
)

terminals = Terminal.__table__
commands = TerminalCommand.__table__
presence_events = PresenceEvent.__table__
changes = GatewayChange.__table__


def add(session: Session, row: Any) -> Any:
    session.add(row)
    session.flush()
    return row


# --- units -----------------------------------------------------------------------------------


def get_unit(session: Session, unit_id: int) -> Unit | None:
    return session.get(Unit, unit_id)


def unit_by_code(session: Session, institution_code: str) -> Unit | None:
    return session.scalars(select(Unit).where(Unit.institution_code == institution_code)).first()


def list_units(session: Session) -> Sequence[Unit]:
    return session.scalars(select(Unit).order_by(Unit.institution_code)).all()


def presence_counts(session: Session) -> dict[int, dict[str, int]]:
    """Per unit: terminals by presence, and `not_enrolled` for serials never enrolled."""
    enrolled = Terminal.enrolled_at.is_not(None)
    stmt = select(Terminal.unit_id, Terminal.presence, enrolled.label("enrolled"), func.count())
    stmt = stmt.group_by(Terminal.unit_id, Terminal.presence, enrolled)
    counts: dict[int, dict[str, int]] = {}
    for unit_id, presence, is_enrolled, count in session.execute(stmt):
        bucket = counts.setdefault(unit_id, {})
        key = presence if is_enrolled else "not_enrolled"
        bucket[key] = bucket.get(key, 0) + count
    return counts


# --- terminals -------------------------------------------------------------------------------


def get_terminal(session: Session, terminal_id: int, *, lock: bool = False) -> Terminal | None:
    if not lock:
        return session.get(Terminal, terminal_id)
    stmt = select(Terminal).where(Terminal.id == terminal_id).with_for_update()
    return session.scalars(stmt).first()


def terminal_by_serial(session: Session, serial: str) -> Terminal | None:
    return session.scalars(select(Terminal).where(Terminal.serial == serial)).first()


def _terminal_conditions(
    *,
    unit_id: int | None = None,
    kind: str | None = None,
    model: str | None = None,
    presence: str | None = None,
    status: str | None = None,
    text: str | None = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if unit_id is not None:
        where.append(Terminal.unit_id == unit_id)
    if kind:
        where.append(Terminal.kind == kind)
    if model:
        where.append(Terminal.model == model)
    if presence:
        where.append(Terminal.presence == presence)
        where.append(Terminal.enrolled_at.is_not(None))
    if status:
        where.append(Terminal.status == status)
    if text:
        like = f"%{text.lower()}%"
        where.append(
            or_(
                func.lower(Terminal.serial).like(like),
                func.lower(Unit.institution_code).like(like),
                func.lower(Unit.name).like(like),
            )
        )
    return where


def search_terminals(
    session: Session, *, limit: int, offset: int, **filters: Any
) -> tuple[Sequence[Terminal], int]:
    where = _terminal_conditions(**filters)
    base = select(Terminal).join(Unit, Unit.id == Terminal.unit_id).where(*where)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    items = session.scalars(base.order_by(Terminal.id).limit(limit).offset(offset)).all()
    return items, total


def matching_terminals(
    session: Session,
    *,
    model: str,
    unit_ids: Collection[int],
    region_code: str | None,
    terminal_ids: Collection[int],
    exclude_rollout: int | None = None,
) -> Sequence[Terminal]:
    """Enrolled, active terminals of `model` that match a rollout's filter, by id."""
    stmt = (
        select(Terminal)
        .join(Unit, Unit.id == Terminal.unit_id)
        .where(Terminal.model == model, Terminal.status == TerminalStatus.ACTIVE)
    )
    if unit_ids:
        stmt = stmt.where(Terminal.unit_id.in_(list(unit_ids)))
    if region_code:
        stmt = stmt.where(Unit.region_code == region_code)
    if terminal_ids:
        stmt = stmt.where(Terminal.id.in_(list(terminal_ids)))
    if exclude_rollout is not None:
        already = select(RolloutTarget.terminal_id).where(
            RolloutTarget.rollout_id == exclude_rollout
        )
        stmt = stmt.where(Terminal.id.not_in(already))
    return session.scalars(stmt.order_by(Terminal.id)).all()


def terminals_by_id(session: Session, ids: Collection[int]) -> dict[int, Terminal]:
    if not ids:
        return {}
    rows = session.scalars(select(Terminal).where(Terminal.id.in_(list(ids))))
    return {t.id: t for t in rows}


def set_desired_config(session: Session, ids: Collection[int], config_id: int | None) -> None:
    if ids:
        stmt = update(terminals).where(terminals.c.id.in_(list(ids)))
        session.execute(stmt.values(desired_config_id=config_id))


def terminals_with_units(
    session: Session, ids: Collection[int] | None = None, *, after_id: int = 0, limit: int = 0
) -> list[tuple[Terminal, Unit]]:
    """Terminals with their units: the given ids, or enrolled ones after `after_id`, by id."""
    stmt = select(Terminal, Unit).join(Unit, Unit.id == Terminal.unit_id)
    if ids is not None:
        stmt = stmt.where(Terminal.id.in_(list(ids)))
    else:
        stmt = stmt.where(Terminal.id > after_id, Terminal.enrolled_at.is_not(None))
        stmt = stmt.order_by(Terminal.id).limit(limit)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def keys_for(session: Session, terminal_ids: Collection[int]) -> Sequence[TerminalKey]:
    """Every key of these terminals, newest first within each terminal."""
    stmt = select(TerminalKey).where(TerminalKey.terminal_id.in_(list(terminal_ids)))
    return session.scalars(stmt.order_by(TerminalKey.terminal_id, TerminalKey.id.desc())).all()


def configs_by_id(session: Session, ids: Collection[int]) -> dict[int, FirmwareConfig]:
    if not ids:
        return {}
    rows = session.scalars(select(FirmwareConfig).where(FirmwareConfig.id.in_(list(ids))))
    return {c.id: c for c in rows}


def commands_due_for(session: Session, terminal_ids: Collection[int]) -> dict[int, datetime]:
    """Per terminal, when it next has a command to be given (see next_command_due)."""
    due = func.min(
        case(
            (TerminalCommand.state == CommandState.QUEUED, TerminalCommand.created_at),
            else_=TerminalCommand.resend_at,
        )
    )
    stmt = (
        select(TerminalCommand.terminal_id, due)
        .where(
            TerminalCommand.terminal_id.in_(list(terminal_ids)),
            or_(
                TerminalCommand.state == CommandState.QUEUED,
                and_(
                    TerminalCommand.state == CommandState.SENT,
                    TerminalCommand.attempts < TerminalCommand.max_attempts,
                ),
            ),
        )
        .group_by(TerminalCommand.terminal_id)
    )
    return {terminal_id: at for terminal_id, at in session.execute(stmt) if at is not None}


# --- keys and enrollment codes ---------------------------------------------------------------


def keys_of(session: Session, terminal_id: int) -> Sequence[TerminalKey]:
    stmt = select(TerminalKey).where(TerminalKey.terminal_id == terminal_id)
    return session.scalars(stmt.order_by(TerminalKey.id.desc())).all()


def key_exists(session: Session, public_key: str) -> bool:
    stmt = select(TerminalKey.id).where(TerminalKey.public_key == public_key)
    return session.scalar(stmt) is not None


def revoke_keys(session: Session, terminal_id: int, now: datetime, reason: str) -> list[str]:
    """Revoke every active key of a terminal; returns their fingerprints."""
    active = session.scalars(
        select(TerminalKey).where(
            TerminalKey.terminal_id == terminal_id, TerminalKey.status == KeyStatus.ACTIVE
        )
    ).all()
    for key in active:
        key.status = KeyStatus.REVOKED
        key.revoked_at = now
        key.revoked_reason = reason
    return [key.fingerprint for key in active]


def code_by_hash(session: Session, code_hash: str) -> EnrollmentCode | None:
    stmt = select(EnrollmentCode).where(EnrollmentCode.code_hash == code_hash).with_for_update()
    return session.scalars(stmt).first()


def withdraw_codes(session: Session, terminal_id: int, now: datetime) -> None:
    stmt = update(EnrollmentCode).where(
        EnrollmentCode.terminal_id == terminal_id,
        EnrollmentCode.used_at.is_(None),
        EnrollmentCode.withdrawn_at.is_(None),
    )
    session.execute(stmt.values(withdrawn_at=now))


# --- commands --------------------------------------------------------------------------------


def get_command(session: Session, command_id: str, *, lock: bool = False) -> TerminalCommand | None:
    stmt = select(TerminalCommand).where(TerminalCommand.id == command_id)
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def _deliverable(now: datetime) -> ColumnElement[bool]:
    return and_(
        TerminalCommand.expires_at > now,
        or_(
            TerminalCommand.state == CommandState.QUEUED,
            and_(
                TerminalCommand.state == CommandState.SENT,
                TerminalCommand.resend_at <= now,
                TerminalCommand.attempts < TerminalCommand.max_attempts,
            ),
        ),
    )


def deliverable_commands(
    session: Session, terminal_id: int, now: datetime
) -> Sequence[TerminalCommand]:
    stmt = (
        select(TerminalCommand)
        .where(TerminalCommand.terminal_id == terminal_id, _deliverable(now))
        .order_by(TerminalCommand.created_at, TerminalCommand.id)
        .limit(20)
        .with_for_update()
    )
    return session.scalars(stmt).all()


def next_command_due(session: Session, terminal_id: int) -> datetime | None:
    """When this terminal next has a command to be given (queued now, or due for resend)."""
    queued = select(func.min(TerminalCommand.created_at)).where(
        TerminalCommand.terminal_id == terminal_id, TerminalCommand.state == CommandState.QUEUED
    )
    resend = select(func.min(TerminalCommand.resend_at)).where(
        TerminalCommand.terminal_id == terminal_id,
        TerminalCommand.state == CommandState.SENT,
        TerminalCommand.attempts < TerminalCommand.max_attempts,
    )
    due = [d for d in (session.scalar(queued), session.scalar(resend)) if d is not None]
    return min(due) if due else None


def commands_of(session: Session, terminal_id: int, limit: int) -> Sequence[TerminalCommand]:
    stmt = select(TerminalCommand).where(TerminalCommand.terminal_id == terminal_id)
    stmt = stmt.order_by(TerminalCommand.created_at.desc(), TerminalCommand.id).limit(limit)
    return session.scalars(stmt).all()


def commands_by_id(session: Session, ids: Collection[str]) -> dict[str, TerminalCommand]:
    if not ids:
        return {}
    rows = session.scalars(select(TerminalCommand).where(TerminalCommand.id.in_(list(ids))))
    return {c.id: c for c in rows}


def close_overdue_commands(session: Session, now: datetime) -> list[tuple[str, int]]:
    """Expire open commands past their expiry; fail sent ones whose retry budget is spent."""
    expired = session.execute(
        update(commands)
        .where(commands.c.state.in_(list(OPEN_COMMAND_STATES)), commands.c.expires_at <= now)
        .values(state=CommandState.EXPIRED, finished_at=now)
        .returning(commands.c.id, commands.c.terminal_id)
    ).all()
    exhausted = session.execute(
        update(commands)
        .where(
            commands.c.state == CommandState.SENT,
            commands.c.attempts >= commands.c.max_attempts,
            commands.c.resend_at <= now,
        )
        .values(
            state=CommandState.FAILED,
            finished_at=now,
            result={"error": "not_acknowledged", "message": "no acknowledgement, retries spent"},
        )
        .returning(commands.c.id, commands.c.terminal_id)
    ).all()
    return [(row.id, row.terminal_id) for row in [*expired, *exhausted]]


def cancel_rollout_commands(session: Session, rollout_id: int, now: datetime) -> None:
    stmt = update(commands).where(
        commands.c.rollout_id == rollout_id, commands.c.state == CommandState.QUEUED
    )
    session.execute(
        stmt.values(state=CommandState.EXPIRED, finished_at=now, result={"error": "aborted"})
    )


# --- presence --------------------------------------------------------------------------------


def offline_or_stale_among(session: Session, ids: Collection[int]) -> list[tuple[int, str]]:
    """Which of these terminals are not online (a batch of up to tens of thousands of ids)."""
    if session.get_bind().dialect.name == "postgresql":
        among: ColumnElement[bool] = terminals.c.id == func.any(
            cast(bindparam("ids", list(ids)), ARRAY(BigInteger))
        )
    else:
        among = terminals.c.id.in_(list(ids))
    stmt = select(terminals.c.id, terminals.c.presence).where(
        among, terminals.c.presence != Presence.ONLINE
    )
    return [(row.id, row.presence) for row in session.execute(stmt)]


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


SIGHTING_COLUMNS = (
    "id", "at", "stale", "offline", "interval", "sequence",
    "firmware", "config_hash", "peripherals", "outbox", "uptime",
)  # fmt: skip

# PostgreSQL: the whole batch travels as one JSON document, unpacked and joined on the server.
# Ten thousand rows cost one round trip and one json.dumps, where executemany (or arrays of
# text, which the driver escapes element by element) pays per row in Python.
_PG_SIGHTINGS = text(
    """
    UPDATE gateway_terminals AS t SET
        presence = 'online', last_seen_at = v.at, stale_after = v.stale,
        offline_after = v.offline, heartbeat_interval = v.interval, last_sequence = v.sequence,
        firmware_version = v.firmware, reported_config_hash = v.config_hash,
        peripherals = v.peripherals, outbox_depth = v.outbox, uptime_seconds = v.uptime
    FROM json_to_recordset(CAST(:batch AS json)) AS v(
        id bigint, at timestamptz, stale timestamptz, offline timestamptz, interval float8,
        sequence bigint, firmware text, config_hash text, peripherals json, outbox bigint,
        uptime bigint)
    WHERE t.id = v.id AND (t.last_seen_at IS NULL OR t.last_seen_at <= v.at)
    """
)


def write_sightings(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write a batch of sightings in one statement; last_seen only ever moves forward.

    Each row holds SIGHTING_COLUMNS; `peripherals` is a dict.
    """
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_SIGHTINGS, {"batch": json.dumps(rows, default=_iso)})
        return
    stmt = (
        update(terminals)
        .where(
            terminals.c.id == bindparam("b_id"),
            or_(terminals.c.last_seen_at.is_(None), terminals.c.last_seen_at <= bindparam("b_at")),
        )
        .values(
            presence=Presence.ONLINE,
            last_seen_at=bindparam("b_at"),
            stale_after=bindparam("b_stale"),
            offline_after=bindparam("b_offline"),
            heartbeat_interval=bindparam("b_interval"),
            last_sequence=bindparam("b_sequence"),
            firmware_version=bindparam("b_firmware"),
            reported_config_hash=bindparam("b_config_hash"),
            peripherals=bindparam("b_peripherals"),
            outbox_depth=bindparam("b_outbox"),
            uptime_seconds=bindparam("b_uptime"),
        )
    )
    session.execute(stmt, [{f"b_{name}": row[name] for name in SIGHTING_COLUMNS} for row in rows])


def past_deadline(
    session: Session, from_presence: Iterable[str], deadline: str, now: datetime, limit: int
) -> list[tuple[int, str]]:
    """Terminals in `from_presence` whose `deadline` column has passed (locked, skip-locked)."""
    column = terminals.c[deadline]
    stmt = (
        select(terminals.c.id, terminals.c.presence)
        .where(terminals.c.presence.in_(list(from_presence)), column <= now)
        .order_by(column)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(row.id, row.presence) for row in session.execute(stmt)]


def set_presence(session: Session, ids: Collection[int], presence: str) -> None:
    if ids:
        stmt = update(terminals).where(terminals.c.id.in_(list(ids)))
        session.execute(stmt.values(presence=presence))


def add_presence_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(presence_events), rows)


def presence_events_of(session: Session, terminal_id: int, limit: int) -> Sequence[PresenceEvent]:
    stmt = select(PresenceEvent).where(PresenceEvent.terminal_id == terminal_id)
    return session.scalars(stmt.order_by(PresenceEvent.id.desc()).limit(limit)).all()


# --- terminal events (outbox messages) -------------------------------------------------------


def terminal_message(session: Session, terminal_id: int, message_id: str) -> TerminalMessage | None:
    stmt = select(TerminalMessage).where(
        TerminalMessage.terminal_id == terminal_id, TerminalMessage.message_id == message_id
    )
    return session.scalars(stmt).first()


def terminal_messages_of(session: Session, terminal_id: int) -> Sequence[TerminalMessage]:
    stmt = select(TerminalMessage).where(TerminalMessage.terminal_id == terminal_id)
    return session.scalars(stmt.order_by(TerminalMessage.id)).all()


# --- configs ---------------------------------------------------------------------------------


def get_config(session: Session, config_id: int) -> FirmwareConfig | None:
    return session.get(FirmwareConfig, config_id)


def config_by_hash(session: Session, config_hash: str) -> FirmwareConfig | None:
    return session.scalars(select(FirmwareConfig).where(FirmwareConfig.hash == config_hash)).first()


def config_by_version(session: Session, model: str, version: int) -> FirmwareConfig | None:
    stmt = select(FirmwareConfig).where(
        FirmwareConfig.model == model, FirmwareConfig.version == version
    )
    return session.scalars(stmt).first()


def list_configs(session: Session, model: str | None) -> Sequence[FirmwareConfig]:
    stmt = select(FirmwareConfig)
    if model:
        stmt = stmt.where(FirmwareConfig.model == model)
    return session.scalars(stmt.order_by(FirmwareConfig.model, FirmwareConfig.version)).all()


# --- rollouts --------------------------------------------------------------------------------


def get_rollout(session: Session, rollout_id: int, *, lock: bool = False) -> Rollout | None:
    stmt = select(Rollout).where(Rollout.id == rollout_id)
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def list_rollouts(session: Session, status: str | None = None) -> Sequence[Rollout]:
    stmt = select(Rollout)
    if status:
        stmt = stmt.where(Rollout.status == status)
    return session.scalars(stmt.order_by(Rollout.id.desc())).all()


def live_rollout_ids(session: Session) -> list[int]:
    """Rollouts still watching their terminals: running or paused."""
    live = [RolloutStatus.RUNNING, RolloutStatus.PAUSED]
    stmt = select(Rollout.id).where(Rollout.status.in_(live)).order_by(Rollout.id)
    return list(session.scalars(stmt))


def targets_of(
    session: Session, rollout_id: int, states: Collection[str] | None = None
) -> Sequence[RolloutTarget]:
    stmt = select(RolloutTarget).where(RolloutTarget.rollout_id == rollout_id)
    if states:
        stmt = stmt.where(RolloutTarget.state.in_(list(states)))
    return session.scalars(stmt.order_by(RolloutTarget.group_index, RolloutTarget.id)).all()


def target_counts(session: Session, rollout_id: int) -> list[Row[Any]]:
    stmt = (
        select(RolloutTarget.group_index, RolloutTarget.state, func.count())
        .where(RolloutTarget.rollout_id == rollout_id)
        .group_by(RolloutTarget.group_index, RolloutTarget.state)
    )
    return list(session.execute(stmt).all())


# --- change feed -----------------------------------------------------------------------------


def add_changes(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(changes), rows)


def changes_after(session: Session, seq: int, limit: int) -> list[Row[Any]]:
    stmt = select(changes).where(changes.c.seq > seq).order_by(changes.c.seq).limit(limit)
    return list(session.execute(stmt).all())


def last_change_seq(session: Session) -> int:
    return session.scalar(select(func.max(changes.c.seq))) or 0


def prune_changes(session: Session, before: datetime) -> None:
    session.execute(delete(changes).where(changes.c.at < before))
