"""Commands to terminals: queued, handed out with heartbeats, acknowledged, finished.

States: queued -> sent -> acknowledged -> succeeded | failed, or expired. A command counts as
delivered only when the terminal acknowledges it. Commands live in the database, so a hub
restart loses none; each has a unique id, so a terminal can drop a re-delivery.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from devices.protocol.messages import (
    CommandKind,
    CommandMessage,
    CommandReply,
    CommandReplyReceipt,
)
from hub.audit import service as audit
from hub.gateway import repository as repo
from hub.gateway.changes import note_change, note_changes
from hub.gateway.configs import config_row, envelope
from hub.gateway.errors import CommandClosed, CommandInvalid, CommandNotFound, TerminalNotFound
from hub.gateway.models import (
    OPEN_COMMAND_STATES,
    CommandState,
    Terminal,
    TerminalCommand,
    TerminalStatus,
)
from hub.gateway.schemas import CommandOut

COMMAND_TTL = timedelta(hours=24)
COMMAND_ATTEMPTS = 5


def _terminal(session: Session, terminal_id: int) -> Terminal:
    terminal = repo.get_terminal(session, terminal_id)
    if terminal is None:
        raise TerminalNotFound(message=f"no terminal {terminal_id}")
    return terminal


def queue_command(
    session: Session,
    terminal_id: int,
    kind: CommandKind,
    *,
    actor: str,
    now: datetime,
    config_id: int | None = None,
    ttl: timedelta = COMMAND_TTL,
    max_attempts: int = COMMAND_ATTEMPTS,
    rollout_id: int | None = None,
) -> CommandOut:
    """Queue an instruction for an enrolled terminal; it goes out with the next heartbeat.

    `apply_config` needs `config_id` (a config of the terminal's model). The command expires
    after `ttl` and is delivered at most `max_attempts` times without an acknowledgement.
    """
    terminal = _terminal(session, terminal_id)
    if terminal.status != TerminalStatus.ACTIVE:
        raise CommandInvalid(message=f"terminal {terminal_id} is {terminal.status}")
    payload: dict[str, Any] = {}
    if kind == "apply_config":
        payload = _config_payload(session, terminal, config_id)
    elif config_id is not None:
        raise CommandInvalid(message="config_id belongs to apply_config only")
    command = TerminalCommand(
        id=uuid.uuid4().hex,
        terminal_id=terminal.id,
        kind=kind,
        payload=payload,
        state=CommandState.QUEUED,
        created_at=now,
        created_by=actor,
        expires_at=now + ttl,
        attempts=0,
        max_attempts=max_attempts,
        result={},
        rollout_id=rollout_id,
    )
    repo.add(session, command)
    if rollout_id is None:  # a rollout writes one summary entry instead of one per terminal
        audit.record(
            session,
            actor=actor,
            action="terminal.command_queued",
            subject=f"terminal:{terminal.id}",
            now=now,
            details={"command_id": command.id, "kind": kind, "config_id": config_id},
        )
    note_change(session, now, terminal_id=terminal.id)
    return CommandOut.model_validate(command)


def _config_payload(session: Session, terminal: Terminal, config_id: int | None) -> dict[str, Any]:
    if config_id is None:
        raise CommandInvalid(message="apply_config needs a config_id")
    config = config_row(session, config_id)
    if config.model != terminal.model:
        raise CommandInvalid(message=f"config {config.id} is for {config.model}")
    return envelope(config).model_dump()


def deliver_commands(
    session: Session, terminal_id: int, *, now: datetime
) -> tuple[list[CommandMessage], datetime | None]:
    """Commands to hand out with this heartbeat (marked sent), and when to look again.

    A sent command that is not acknowledged within two heartbeat intervals is sent again, up
    to its retry budget; its id lets the terminal drop the duplicate.
    """
    terminal = _terminal(session, terminal_id)
    resend_after = timedelta(seconds=max(2 * terminal.heartbeat_interval, 2.0))
    messages = []
    for command in repo.deliverable_commands(session, terminal_id, now):
        command.state = CommandState.SENT
        command.attempts += 1
        command.sent_at = command.sent_at or now
        command.resend_at = now + resend_after
        messages.append(
            CommandMessage(
                id=command.id,
                kind=command.kind,
                issued_at=command.created_at,
                expires_at=command.expires_at,
                payload=command.payload,
            )
        )
    session.flush()
    return messages, repo.next_command_due(session, terminal_id)


def reply_to_command(
    session: Session, terminal_id: int, command_id: str, reply: CommandReply, *, now: datetime
) -> CommandReplyReceipt:
    """Record a terminal's acknowledgement or outcome; a repeated reply changes nothing."""
    command = repo.get_command(session, command_id, lock=True)
    if command is None or command.terminal_id != terminal_id:
        raise CommandNotFound(message="no such command for this terminal")
    applied = _apply_reply(command, reply, now)
    if applied:
        audit.record(
            session,
            actor=f"terminal:{terminal_id}",
            action=f"terminal.command_{reply.status}",
            subject=f"terminal:{terminal_id}",
            now=now,
            details={"command_id": command.id, "kind": command.kind},
        )
    return CommandReplyReceipt(command_id=command.id, state=command.state, applied=applied)


def _apply_reply(command: TerminalCommand, reply: CommandReply, now: datetime) -> bool:
    state = CommandState(command.state)
    if state == CommandState.EXPIRED:
        raise CommandClosed(message="the command expired before this reply")
    if reply.status == "acknowledged":
        if state not in (CommandState.QUEUED, CommandState.SENT):
            return False  # already acknowledged or finished
        command.state = CommandState.ACKNOWLEDGED
        command.acknowledged_at = now
        return True
    outcome = CommandState(reply.status)
    if state == outcome:
        return False
    if state not in OPEN_COMMAND_STATES:
        raise CommandClosed(message=f"the command already {state}")
    command.state = outcome
    command.acknowledged_at = command.acknowledged_at or now
    command.finished_at = now
    command.result = reply.detail
    return True


def close_overdue_commands(session: Session, now: datetime) -> int:
    """Expire commands past their expiry and fail those whose retry budget is spent."""
    closed = repo.close_overdue_commands(session, now)
    note_changes(session, now, [(terminal_id, None) for _, terminal_id in closed])
    return len(closed)
