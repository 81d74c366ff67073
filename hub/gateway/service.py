"""The gateway's rules: units, terminals, enrollment, keys, commands, configs, rollouts.

Every function takes a session and the time, and never commits: the caller's transaction is
the boundary (`db.transaction(lambda s: service.create_unit(s, spec, actor=..., now=now))`).
State changes are written to the audit trail in the same transaction; `actor` names who acted
("operator:alice", "ops_api", "cli", "terminal:42").

Read API for the console: `list_units`, `get_unit`, `find_unit`, `search_terminals`,
`get_terminal`, `find_terminal`, `get_terminal_detail`, `list_configs`, `get_config`,
`list_rollouts`, `rollout_progress`.
Changes: `create_unit`, `disable_unit` / `enable_unit`, `preregister_terminal`,
`import_terminals_csv`, `create_enrollment_code`, `disable_terminal` / `enable_terminal`,
`queue_command`, `publish_config`, and the rollout life cycle `create_rollout`,
`start_rollout`, `pause_rollout`, `resume_rollout`, `abort_rollout` (from rollouts.py).
Terminal-facing: `enrol`, `rotate_key`, `deliver_commands`, `reply_to_command`,
`record_terminal_event`, `desired_config_for`.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from devices.protocol.messages import (
    EventReceipt,
    TerminalEvent,
)
from hub.audit import service as audit
from hub.gateway import firmware
from hub.gateway import repository as repo
from hub.gateway.changes import note_change
from hub.gateway.commands import (
    close_overdue_commands,
    deliver_commands,
    queue_command,
    reply_to_command,
)
from hub.gateway.configs import (
    check_document,
    desired_config_for,
    get_config,
    list_configs,
    publish_config,
)
from hub.gateway.enrollment import create_enrollment_code, enrol, rotate_key
from hub.gateway.errors import (
    ImportInvalid,
    KindMismatch,
    SerialTaken,
    TerminalNotFound,
    UnitExists,
    UnitNotFound,
    UnknownModel,
)
from hub.gateway.models import (
    Presence,
    Terminal,
    TerminalMessage,
    TerminalStatus,
    Unit,
    UnitStatus,
)
from hub.gateway.rollouts import (
    abort_rollout,
    create_rollout,
    evaluate_rollouts,
    list_rollouts,
    pause_rollout,
    resume_rollout,
    rollout_progress,
    start_rollout,
)
from hub.gateway.schemas import (
    CommandOut,
    ImportRowResult,
    KeyOut,
    PresenceEventOut,
    TerminalDetail,
    TerminalFilter,
    TerminalIn,
    TerminalOut,
    TerminalPage,
    UnitIn,
    UnitOut,
    UnitSummary,
)

# Re-exported: the console and the CLI call the whole gateway through this module.
__all__ = [
    "abort_rollout",
    "check_document",
    "close_overdue_commands",
    "create_enrollment_code",
    "create_rollout",
    "deliver_commands",
    "desired_config_for",
    "enrol",
    "evaluate_rollouts",
    "get_config",
    "list_configs",
    "list_rollouts",
    "pause_rollout",
    "publish_config",
    "queue_command",
    "reply_to_command",
    "resume_rollout",
    "rollout_progress",
    "rotate_key",
    "start_rollout",
]

IMPORT_MAX_ROWS = 5000


# --- units -----------------------------------------------------------------------------------


def create_unit(session: Session, spec: UnitIn, *, actor: str, now: datetime) -> UnitOut:
    """Register a medical insurance unit; its institution code is unique."""
    if repo.unit_by_code(session, spec.institution_code):
        raise UnitExists(message=f"unit {spec.institution_code} already exists")
    unit = repo.add(session, Unit(**spec.model_dump(), status=UnitStatus.ACTIVE, created_at=now))
    audit.record(
        session,
        actor=actor,
        action="unit.created",
        subject=f"unit:{unit.id}",
        now=now,
        details=spec.model_dump(),
    )
    return UnitOut.model_validate(unit)


def get_unit(session: Session, unit_id: int) -> UnitOut:
    return UnitOut.model_validate(_unit(session, unit_id))


def find_unit(session: Session, institution_code: str) -> UnitOut:
    """The unit with this institution code (404 `unit_not_found` otherwise)."""
    unit = repo.unit_by_code(session, institution_code)
    if unit is None:
        raise UnitNotFound(message=f"no unit {institution_code}")
    return UnitOut.model_validate(unit)


def list_units(session: Session) -> list[UnitSummary]:
    """Every unit with its terminals counted as online / stale / offline / not enrolled."""
    counts = repo.presence_counts(session)
    summaries = []
    for unit in repo.list_units(session):
        c = counts.get(unit.id, {})
        summaries.append(
            UnitSummary.model_validate(unit).model_copy(
                update={
                    "terminals": sum(c.values()),
                    "online": c.get(Presence.ONLINE, 0),
                    "stale": c.get(Presence.STALE, 0),
                    "offline": c.get(Presence.OFFLINE, 0),
                    "not_enrolled": c.get("not_enrolled", 0),
                }
            )
        )
    return summaries


def disable_unit(session: Session, unit_id: int, *, actor: str, now: datetime) -> UnitOut:
    """Refuse every request of every terminal of this unit until enabled again."""
    return _set_unit_status(session, unit_id, UnitStatus.DISABLED, actor, now)


def enable_unit(session: Session, unit_id: int, *, actor: str, now: datetime) -> UnitOut:
    return _set_unit_status(session, unit_id, UnitStatus.ACTIVE, actor, now)


def _set_unit_status(
    session: Session, unit_id: int, status: UnitStatus, actor: str, now: datetime
) -> UnitOut:
    unit = _unit(session, unit_id)
    if unit.status != status:
        unit.status = status
        audit.record(
            session, actor=actor, action=f"unit.{status}", subject=f"unit:{unit.id}", now=now
        )
        note_change(session, now, unit_id=unit.id)
    return UnitOut.model_validate(unit)


def _unit(session: Session, unit_id: int) -> Unit:
    unit = repo.get_unit(session, unit_id)
    if unit is None:
        raise UnitNotFound(message=f"no unit {unit_id}")
    return unit


# --- terminals -------------------------------------------------------------------------------


def preregister_terminal(
    session: Session, spec: TerminalIn, *, actor: str, now: datetime, interval: float = 60.0
) -> TerminalOut:
    """Record a serial the bank has shipped to a unit; it can enrol once given a code."""
    return TerminalOut.model_validate(_preregister(session, spec, actor, now, interval))


def _preregister(
    session: Session, spec: TerminalIn, actor: str, now: datetime, interval: float
) -> Terminal:
    unit = _unit(session, spec.unit_id)
    model = firmware.terminal_model(spec.model, spec.kind)
    if repo.terminal_by_serial(session, spec.serial):
        raise SerialTaken(message=f"serial {spec.serial} is already registered")
    terminal = repo.add(
        session,
        Terminal(
            serial=spec.serial,
            kind=model.kind,
            model=model.name,
            hardware_revision=spec.hardware_revision,
            unit_id=unit.id,
            status=TerminalStatus.REGISTERED,
            created_at=now,
            presence=Presence.OFFLINE,
            heartbeat_interval=interval,
            peripherals={},
        ),
    )
    audit.record(
        session,
        actor=actor,
        action="terminal.registered",
        subject=f"terminal:{terminal.id}",
        now=now,
        details={"serial": terminal.serial, "model": terminal.model, "unit_id": unit.id},
    )
    return terminal


def import_terminals_csv(
    session: Session, unit_id: int, text: str, *, actor: str, now: datetime, interval: float = 60.0
) -> list[ImportRowResult]:
    """Pre-register a unit's terminals from CSV (`serial,model[,kind][,hardware_revision]`).

    Each row stands alone (a savepoint): good rows are registered, bad rows are reported with a
    code, and a serial already registered to this unit with the same model is `exists`.
    """
    _unit(session, unit_id)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    fields = {f.strip() for f in reader.fieldnames or []}
    if not {"serial", "model"} <= fields:
        raise ImportInvalid(message="the header must name at least serial and model")
    results = []
    for number, raw in enumerate(reader, start=2):
        if number - 1 > IMPORT_MAX_ROWS:
            raise ImportInvalid(message=f"at most {IMPORT_MAX_ROWS} rows per import")
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        results.append(_import_row(session, unit_id, number, row, actor, now, interval))
    return results


def _import_row(
    session: Session,
    unit_id: int,
    line: int,
    row: dict[str, str],
    actor: str,
    now: datetime,
    interval: float,
) -> ImportRowResult:
    serial = row.get("serial") or None
    existing = repo.terminal_by_serial(session, serial) if serial else None
    if existing is not None and existing.unit_id == unit_id and existing.model == row.get("model"):
        return ImportRowResult(line=line, serial=serial, result="exists", terminal_id=existing.id)
    try:
        spec = TerminalIn(
            unit_id=unit_id,
            serial=serial or "",
            model=row.get("model", ""),
            kind=row.get("kind") or None,  # type: ignore[arg-type]  # validated by TerminalIn
            hardware_revision=row.get("hardware_revision") or None,
        )
        with session.begin_nested():
            terminal = _preregister(session, spec, actor, now, interval)
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
        return ImportRowResult(line=line, serial=serial, result="invalid_row", message=fields)
    except (SerialTaken, UnknownModel, KindMismatch) as exc:
        return ImportRowResult(line=line, serial=serial, result=exc.code, message=exc.message)
    return ImportRowResult(line=line, serial=serial, result="created", terminal_id=terminal.id)


def search_terminals(session: Session, terms: TerminalFilter) -> TerminalPage:
    """Terminals matching every given term, by id, one page at a time."""
    filters = terms.model_dump(exclude={"limit", "offset"})
    items, total = repo.search_terminals(session, limit=terms.limit, offset=terms.offset, **filters)
    return TerminalPage(items=[TerminalOut.model_validate(t) for t in items], total=total)


def find_terminal(session: Session, serial: str) -> TerminalOut:
    """The terminal with this serial (404 `terminal_not_found` otherwise)."""
    terminal = repo.terminal_by_serial(session, serial)
    if terminal is None:
        raise TerminalNotFound(message=f"no terminal with serial {serial}")
    return TerminalOut.model_validate(terminal)


def get_terminal(session: Session, terminal_id: int) -> TerminalOut:
    return TerminalOut.model_validate(_terminal(session, terminal_id))


def get_terminal_detail(session: Session, terminal_id: int, *, recent: int = 20) -> TerminalDetail:
    """A terminal with its unit, its keys (fingerprints only), recent presence events and
    recent commands, newest first."""
    terminal = _terminal(session, terminal_id)
    return TerminalDetail(
        terminal=TerminalOut.model_validate(terminal),
        unit=UnitOut.model_validate(_unit(session, terminal.unit_id)),
        keys=[KeyOut.model_validate(k) for k in repo.keys_of(session, terminal_id)],
        presence_events=[
            PresenceEventOut.model_validate(e)
            for e in repo.presence_events_of(session, terminal_id, recent)
        ],
        commands=[
            CommandOut.model_validate(c) for c in repo.commands_of(session, terminal_id, recent)
        ],
    )


def disable_terminal(
    session: Session, terminal_id: int, *, actor: str, now: datetime
) -> TerminalOut:
    """Refuse every request of this terminal (403 `terminal_disabled`) until enabled."""
    terminal = _terminal(session, terminal_id, lock=True)
    if terminal.status != TerminalStatus.DISABLED:
        terminal.status = TerminalStatus.DISABLED
        repo.withdraw_codes(session, terminal.id, now)
        _changed(session, terminal, "terminal.disabled", actor, now)
    return TerminalOut.model_validate(terminal)


def enable_terminal(
    session: Session, terminal_id: int, *, actor: str, now: datetime
) -> TerminalOut:
    terminal = _terminal(session, terminal_id, lock=True)
    if terminal.status == TerminalStatus.DISABLED:
        enrolled = terminal.enrolled_at is not None
        terminal.status = TerminalStatus.ACTIVE if enrolled else TerminalStatus.REGISTERED
        _changed(session, terminal, "terminal.enabled", actor, now)
    return TerminalOut.model_validate(terminal)


def _changed(session: Session, terminal: Terminal, action: str, actor: str, now: datetime) -> None:
    audit.record(session, actor=actor, action=action, subject=f"terminal:{terminal.id}", now=now)
    note_change(session, now, terminal_id=terminal.id)


def _terminal(session: Session, terminal_id: int, *, lock: bool = False) -> Terminal:
    terminal = repo.get_terminal(session, terminal_id, lock=lock)
    if terminal is None:
        raise TerminalNotFound(message=f"no terminal {terminal_id}")
    return terminal


# --- terminal events (outbox messages) -------------------------------------------------------


def record_terminal_event(
    session: Session, terminal_id: int, event: TerminalEvent, *, now: datetime
) -> EventReceipt:
    """Store an event once per (terminal, message id); a re-send returns `exists`."""
    if repo.terminal_message(session, terminal_id, event.message_id):
        return EventReceipt(message_id=event.message_id, result="exists")
    row = TerminalMessage(
        terminal_id=terminal_id,
        message_id=event.message_id,
        kind=event.kind,
        occurred_at=event.occurred_at,
        received_at=now,
        detail=event.detail,
    )
    try:
        with session.begin_nested():
            repo.add(session, row)
    except IntegrityError:  # the same message arriving twice at once: the other one won
        return EventReceipt(message_id=event.message_id, result="exists")
    return EventReceipt(message_id=event.message_id, result="ok")
