"""Config rollouts: one published config to a set of terminals, group by group.

Group 0 is the canary. A group is started by telling its terminals to apply the config (an
`apply_config` command, and the config as their desired one). A terminal succeeds only when a
heartbeat reports the config's hash; it fails when its command fails or expires, and times out
when it is still in progress after `stuck_timeout_seconds`. Failures and timeouts are errors.
The rollout pauses when errors pass `error_threshold_pct` of the terminals started so far or
reach `error_threshold_count`; it starts the next group when the current one reaches
`success_threshold` (and pauses if it settles below it), and completes when the last group is
started and nobody is in progress.
Terminals enrolled after the start that match join the last group.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.gateway import repository as repo
from hub.gateway.changes import note_changes
from hub.gateway.commands import queue_command
from hub.gateway.configs import config_row
from hub.gateway.errors import RolloutInvalid, RolloutNotFound, RolloutStateInvalid, UnitNotFound
from hub.gateway.models import (
    ERROR_TARGET_STATES,
    CommandState,
    FirmwareConfig,
    Rollout,
    RolloutStatus,
    RolloutTarget,
    TargetState,
    Terminal,
    TerminalStatus,
)
from hub.gateway.schemas import GroupProgress, RolloutIn, RolloutOut, RolloutProgress

SETTLED = (TargetState.SUCCEEDED, *ERROR_TARGET_STATES)


def create_rollout(session: Session, spec: RolloutIn, *, actor: str, now: datetime) -> RolloutOut:
    """A draft rollout; nothing is sent until `start_rollout`."""
    config = config_row(session, spec.config_id)
    if spec.canary_unit_id is not None and repo.get_unit(session, spec.canary_unit_id) is None:
        raise UnitNotFound(message=f"no unit {spec.canary_unit_id}")
    rollout = Rollout(
        name=spec.name,
        config_id=config.id,
        model=config.model,
        target_filter={
            "unit_ids": spec.unit_ids,
            "region_code": spec.region_code,
            "terminal_ids": spec.terminal_ids,
        },
        canary_unit_id=spec.canary_unit_id,
        canary_size=spec.canary_size,
        group_count=spec.group_count,
        success_threshold=spec.success_threshold,
        error_threshold_pct=spec.error_threshold_pct,
        error_threshold_count=spec.error_threshold_count,
        stuck_timeout_seconds=spec.stuck_timeout_seconds,
        status=RolloutStatus.DRAFT,
        current_group=-1,
        groups_total=0,
        errors_accepted=0,
        created_at=now,
        created_by=actor,
    )
    repo.add(session, rollout)
    _audit(session, rollout, "rollout.created", actor, now, {"config_id": config.id})
    return RolloutOut.model_validate(rollout)


def start_rollout(session: Session, rollout_id: int, *, actor: str, now: datetime) -> RolloutOut:
    """Pick the matching terminals, split them into groups and start the canary group."""
    rollout = _rollout(session, rollout_id, RolloutStatus.DRAFT)
    groups = _plan_groups(rollout, _matching(session, rollout))
    for index, members in enumerate(groups):
        for terminal in members:
            repo.add(
                session,
                RolloutTarget(
                    rollout_id=rollout.id,
                    terminal_id=terminal.id,
                    group_index=index,
                    state=TargetState.PENDING,
                ),
            )
    rollout.groups_total = len(groups)
    rollout.status = RolloutStatus.RUNNING
    rollout.started_at = now
    _start_group(session, rollout, 0, actor, now)
    _audit(session, rollout, "rollout.started", actor, now, {"groups": [len(g) for g in groups]})
    return RolloutOut.model_validate(rollout)


def pause_rollout(
    session: Session, rollout_id: int, *, actor: str, now: datetime, reason: str = "operator"
) -> RolloutOut:
    """Stop starting groups; terminals already told keep going."""
    rollout = _rollout(session, rollout_id, RolloutStatus.RUNNING)
    _pause(session, rollout, reason, actor, now)
    return RolloutOut.model_validate(rollout)


def resume_rollout(session: Session, rollout_id: int, *, actor: str, now: datetime) -> RolloutOut:
    """Carry on; the errors seen so far are accepted, only new ones count toward a pause."""
    rollout = _rollout(session, rollout_id, RolloutStatus.PAUSED)
    rollout.errors_accepted = _error_total(session, rollout.id)
    rollout.status = RolloutStatus.RUNNING
    rollout.pause_reason = None
    # The operator has seen how the current group ended: if it has settled, move on.
    _advance(session, rollout, now, accept_shortfall=True)
    _audit(
        session,
        rollout,
        "rollout.resumed",
        actor,
        now,
        {"errors_accepted": rollout.errors_accepted},
    )
    return RolloutOut.model_validate(rollout)


def abort_rollout(session: Session, rollout_id: int, *, actor: str, now: datetime) -> RolloutOut:
    """Stop for good: queued commands are withdrawn and terminals that have not switched are
    no longer asked to."""
    rollout = _rollout(
        session, rollout_id, RolloutStatus.DRAFT, RolloutStatus.RUNNING, RolloutStatus.PAUSED
    )
    repo.cancel_rollout_commands(session, rollout.id, now)
    unfinished = [
        t.terminal_id
        for t in repo.targets_of(session, rollout.id)
        if t.state != TargetState.SUCCEEDED
    ]
    repo.set_desired_config(session, unfinished, None)
    note_changes(session, now, [(tid, None) for tid in unfinished])
    rollout.status = RolloutStatus.ABORTED
    rollout.finished_at = now
    _audit(session, rollout, "rollout.aborted", actor, now, {})
    return RolloutOut.model_validate(rollout)


def list_rollouts(session: Session, status: str | None = None) -> list[RolloutOut]:
    return [RolloutOut.model_validate(r) for r in repo.list_rollouts(session, status)]


def rollout_progress(session: Session, rollout_id: int) -> RolloutProgress:
    """The rollout with, per group, how many terminals are in each state."""
    rollout = _rollout(session, rollout_id)
    per_group: dict[int, Counter[str]] = {}
    for group, state, count in repo.target_counts(session, rollout.id):
        per_group.setdefault(group, Counter())[state] += count
    groups = [
        _group_progress(rollout, g, per_group.get(g, Counter()))
        for g in range(rollout.groups_total)
    ]
    errors = sum(g.failed + g.timed_out for g in groups)
    started = sum(g.total - g.pending for g in groups)
    return RolloutProgress(
        rollout=RolloutOut.model_validate(rollout), groups=groups, errors=errors, started=started
    )


def _group_progress(rollout: Rollout, group: int, counts: Counter[str]) -> GroupProgress:
    total = sum(counts.values())
    settled = sum(counts[s] for s in SETTLED)
    state: Literal["waiting", "active", "done"]
    if group > rollout.current_group:
        state = "waiting"
    elif settled == total and (group < rollout.current_group or rollout.status != "running"):
        state = "done"
    else:
        state = "active"
    return GroupProgress(
        group=group,
        canary=group == 0,
        state=state,
        total=total,
        pending=counts[TargetState.PENDING],
        in_progress=counts[TargetState.IN_PROGRESS],
        succeeded=counts[TargetState.SUCCEEDED],
        failed=counts[TargetState.FAILED],
        timed_out=counts[TargetState.TIMED_OUT],
    )


def evaluate_rollouts(session: Session, now: datetime) -> list[int]:
    """One step of every running rollout (the periodic job); returns the ids evaluated.

    A paused rollout still records what its terminals did, so its progress stays true, but
    starts nobody new.
    """
    done = []
    for rollout_id in repo.live_rollout_ids(session):
        rollout = repo.get_rollout(session, rollout_id, lock=True)
        if rollout is None:
            continue
        _settle_in_progress(session, rollout, config_row(session, rollout.config_id), now)
        if rollout.status == RolloutStatus.RUNNING:
            _evaluate(session, rollout, now)
        done.append(rollout_id)
    return done


def _evaluate(session: Session, rollout: Rollout, now: datetime) -> None:
    _join_newcomers(session, rollout, now)
    errors = _error_total(session, rollout.id) - rollout.errors_accepted
    started = len(
        [t for t in repo.targets_of(session, rollout.id) if t.state != TargetState.PENDING]
    )
    if errors > 0 and (
        errors >= rollout.error_threshold_count
        or errors * 100 > rollout.error_threshold_pct * max(started, 1)
    ):
        _pause(
            session,
            rollout,
            f"error threshold: {errors} errors of {started} started",
            "system",
            now,
        )
        return
    _advance(session, rollout, now)


def _settle_in_progress(
    session: Session, rollout: Rollout, config: FirmwareConfig, now: datetime
) -> None:
    targets = repo.targets_of(session, rollout.id, [TargetState.IN_PROGRESS])
    terminals = repo.terminals_by_id(session, [t.terminal_id for t in targets])
    commands = repo.commands_by_id(session, [t.command_id for t in targets if t.command_id])
    stuck_before = now - timedelta(seconds=rollout.stuck_timeout_seconds)
    for target in targets:
        command = commands.get(target.command_id or "")
        if terminals[target.terminal_id].reported_config_hash == config.hash:
            _finish(target, TargetState.SUCCEEDED, now)
        elif command is not None and command.state in (CommandState.FAILED, CommandState.EXPIRED):
            reason = str(command.result.get("error") or f"command {command.state}")
            _finish(target, TargetState.FAILED, now, reason[:200])
        elif target.started_at is not None and target.started_at <= stuck_before:
            _finish(target, TargetState.TIMED_OUT, now, "new hash not reported in time")


def _advance(
    session: Session, rollout: Rollout, now: datetime, *, accept_shortfall: bool = False
) -> None:
    targets = repo.targets_of(session, rollout.id)
    current = [t for t in targets if t.group_index == rollout.current_group]
    succeeded = sum(1 for t in current if t.state == TargetState.SUCCEEDED)
    settled = all(t.state in SETTLED for t in current)
    if accept_shortfall and settled:
        pass
    elif current and succeeded < rollout.success_threshold * len(current):
        if settled:  # nobody left who could still succeed
            reason = f"group {rollout.current_group} settled below the success threshold"
            _pause(session, rollout, reason, "system", now)
        return
    if rollout.current_group + 1 < rollout.groups_total:
        _start_group(session, rollout, rollout.current_group + 1, "system", now)
    elif not any(t.state in (TargetState.IN_PROGRESS, TargetState.PENDING) for t in targets):
        rollout.status = RolloutStatus.COMPLETED
        rollout.finished_at = now
        _audit(session, rollout, "rollout.completed", "system", now, {})


def _start_group(session: Session, rollout: Rollout, group: int, actor: str, now: datetime) -> None:
    rollout.current_group = group
    pending = repo.targets_of(session, rollout.id, [TargetState.PENDING])
    _start_targets(session, rollout, [t for t in pending if t.group_index == group], now)
    if group > 0:
        _audit(session, rollout, "rollout.group_started", actor, now, {"group": group})


def _start_targets(
    session: Session, rollout: Rollout, targets: Sequence[RolloutTarget], now: datetime
) -> None:
    config = config_row(session, rollout.config_id)
    terminals = repo.terminals_by_id(session, [t.terminal_id for t in targets])
    repo.set_desired_config(session, list(terminals), config.id)
    note_changes(session, now, [(tid, None) for tid in terminals])
    ttl = timedelta(seconds=rollout.stuck_timeout_seconds)
    for target in targets:
        target.started_at = now
        terminal = terminals[target.terminal_id]
        if terminal.reported_config_hash == config.hash:
            _finish(target, TargetState.SUCCEEDED, now)  # already runs it
            continue
        if terminal.status != TerminalStatus.ACTIVE:
            _finish(target, TargetState.FAILED, now, f"terminal {terminal.status}")
            continue
        command = queue_command(
            session,
            target.terminal_id,
            "apply_config",
            actor="system",
            now=now,
            config_id=config.id,
            ttl=ttl,
            rollout_id=rollout.id,
        )
        target.state = TargetState.IN_PROGRESS
        target.command_id = command.id


def _join_newcomers(session: Session, rollout: Rollout, now: datetime) -> None:
    """Terminals that match now but did not at the start (enrolled since) join the last group."""
    newcomers = _matching(session, rollout, exclude_rollout=rollout.id)
    if not newcomers:
        return
    last = rollout.groups_total - 1
    joined = [
        repo.add(
            session,
            RolloutTarget(
                rollout_id=rollout.id, terminal_id=t.id, group_index=last, state=TargetState.PENDING
            ),
        )
        for t in newcomers
    ]
    if rollout.current_group >= last:
        _start_targets(session, rollout, joined, now)


def _matching(
    session: Session, rollout: Rollout, exclude_rollout: int | None = None
) -> Sequence[Terminal]:
    wanted = rollout.target_filter
    return repo.matching_terminals(
        session,
        model=rollout.model,
        unit_ids=wanted.get("unit_ids") or [],
        region_code=wanted.get("region_code"),
        terminal_ids=wanted.get("terminal_ids") or [],
        exclude_rollout=exclude_rollout,
    )


def _plan_groups(rollout: Rollout, terminals: Sequence[Terminal]) -> list[list[Terminal]]:
    if not terminals:
        raise RolloutInvalid(message="no enrolled terminal matches this rollout")
    if rollout.canary_unit_id is not None:
        canary = [t for t in terminals if t.unit_id == rollout.canary_unit_id]
        rest = [t for t in terminals if t.unit_id != rollout.canary_unit_id]
    else:
        canary, rest = (
            list(terminals[: rollout.canary_size]),
            list(terminals[rollout.canary_size :]),
        )
    if not canary:
        raise RolloutInvalid(message="the canary unit has no matching terminal")
    size = max(1, math.ceil(len(rest) / rollout.group_count))
    return [canary] + [rest[i : i + size] for i in range(0, len(rest), size)]


def _finish(
    target: RolloutTarget, state: TargetState, now: datetime, error: str | None = None
) -> None:
    target.state = state
    target.finished_at = now
    target.error = error


def _error_total(session: Session, rollout_id: int) -> int:
    return len(repo.targets_of(session, rollout_id, list(ERROR_TARGET_STATES)))


def _pause(session: Session, rollout: Rollout, reason: str, actor: str, now: datetime) -> None:
    rollout.status = RolloutStatus.PAUSED
    rollout.pause_reason = reason[:200]
    _audit(session, rollout, "rollout.paused", actor, now, {"reason": reason})


def _rollout(session: Session, rollout_id: int, *allowed: RolloutStatus) -> Rollout:
    rollout = repo.get_rollout(session, rollout_id, lock=bool(allowed))
    if rollout is None:
        raise RolloutNotFound(message=f"no rollout {rollout_id}")
    if allowed and rollout.status not in allowed:
        raise RolloutStateInvalid(message=f"rollout {rollout_id} is {rollout.status}")
    return rollout


def _audit(
    session: Session,
    rollout: Rollout,
    action: str,
    actor: str,
    now: datetime,
    details: dict[str, object],
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject=f"rollout:{rollout.id}",
        now=now,
        details=details,
    )
