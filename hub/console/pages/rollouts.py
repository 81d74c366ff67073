"""Firmware configurations and their rollouts: validate, publish, start, pause, resume, abort."""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from hub.console.auth import Action, action, db_of, now_of, page
from hub.console.charts import Segment, stacked_bar
from hub.console.models import Role
from hub.console.rendering import (
    ConsoleRoute,
    NavItem,
    field_errors,
    redirect,
    register_nav,
    render,
)
from hub.console.service import Signed
from hub.db import PathId
from hub.errors import HubError
from hub.gateway import service as gateway
from hub.gateway.schemas import GroupProgress, RolloutIn

router = APIRouter(route_class=ConsoleRoute)
register_nav(
    NavItem("configs", "Firmware configs", "/console/configs", Role.VIEWER, "Fleet"),
    NavItem("rollouts", "Rollouts", "/console/rollouts", Role.VIEWER, "Fleet"),
)
MAX_DOCUMENT = 64 * 1024


def group_bar(g: GroupProgress) -> Any:
    return stacked_bar(
        [
            Segment(g.succeeded, "good", f"{g.succeeded} succeeded"),
            Segment(g.failed + g.timed_out, "bad", f"{g.failed + g.timed_out} failed or timed out"),
            Segment(g.in_progress, "warn", f"{g.in_progress} in progress"),
            Segment(g.pending, "muted", f"{g.pending} waiting"),
        ],
        width=360,
        height=14,
    )


# Configurations.


def _configs_page(
    request: Request,
    *,
    text: str = "",
    errors: dict[str, str] | None = None,
    checked: str | None = None,
    status: int = 200,
) -> Response:
    with db_of(request).session() as s:
        configs = gateway.list_configs(s)
    return render(
        request,
        "configs.html",
        {
            "active": "configs",
            "configs": configs,
            "text": text,
            "errors": errors or {},
            "checked": checked,
        },
        status,
    )


@router.get("/configs")
def configs(request: Request, _: Annotated[Signed, Depends(page(Role.VIEWER))]) -> Response:
    return _configs_page(request)


@router.get("/configs/{config_id}")
def config_page(
    request: Request, config_id: PathId, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    with db_of(request).session() as s:
        config = gateway.get_config(s, config_id)
    document = yaml.safe_dump(config.document, sort_keys=False, allow_unicode=True)
    return render(request, "config.html", {"active": "configs", "c": config, "document": document})


def _parse(text: str) -> dict[str, Any]:
    if not text.strip():
        raise HubError("config_invalid", "paste a configuration document (YAML or JSON)", 422)
    if len(text) > MAX_DOCUMENT:
        raise HubError("config_invalid", f"a configuration is at most {MAX_DOCUMENT} bytes", 422)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise HubError("config_invalid", f"not valid YAML{where}", 422) from None
    return document if isinstance(document, dict) else {"__not_a_mapping__": True}


@router.post("/configs")
def publish_or_check(
    request: Request, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    """`intent=validate` checks the document only; `intent=publish` publishes it."""
    text, now = act.form.get("document", ""), now_of(request)
    try:
        document = _parse(text)
        if act.field("intent") != "publish":
            digest = gateway.check_document(document)
            return _configs_page(request, text=text, checked=digest)
        made = db_of(request).transaction(
            lambda s: gateway.publish_config(s, document, actor=act.signed.actor, now=now)
        )
    except HubError as exc:
        return _configs_page(
            request, text=text, errors={"document": exc.message}, status=exc.status
        )
    return redirect(
        request, f"/console/configs/{made.id}", f"{made.model} v{made.version} published."
    )


# Rollouts.


def _rollouts_page(
    request: Request,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    with db_of(request).session() as s:
        rollouts = gateway.list_rollouts(s)
        configs = gateway.list_configs(s)
        units = gateway.list_units(s)
    return render(
        request,
        "rollouts.html",
        {
            "active": "rollouts",
            "rollouts": rollouts,
            "config_choices": [(str(c.id), f"{c.model} v{c.version}") for c in configs],
            "unit_choices": [("", "First terminals found")] + [(str(u.id), u.name) for u in units],
            "scope_choices": [("", "Every terminal of the model")]
            + [(str(u.id), f"Only {u.name}") for u in units],
            "form": form or {"group_count": "3", "success_threshold": "95"},
            "errors": errors or {},
        },
        status,
    )


@router.get("/rollouts")
def rollouts(request: Request, _: Annotated[Signed, Depends(page(Role.VIEWER))]) -> Response:
    return _rollouts_page(request)


def _whole(act: Action, name: str, default: int | None = None) -> int | None:
    """A whole-number form field; anything else is left for the schema to refuse by name."""
    value = act.field(name)
    return int(value) if value.isdigit() and len(value) < 19 else default


@router.post("/rollouts")
def create_rollout(
    request: Request, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    now = now_of(request)
    try:
        unit_id = _whole(act, "unit_id")
        spec = RolloutIn(
            name=act.field("name"),
            config_id=_whole(act, "config_id", 0),
            unit_ids=[unit_id] if unit_id else [],
            canary_unit_id=_whole(act, "canary_unit_id"),
            group_count=_whole(act, "group_count", 0),
            success_threshold=float(act.field("success_threshold") or "95") / 100,
        )
        made = db_of(request).transaction(
            lambda s: gateway.create_rollout(s, spec, actor=act.signed.actor, now=now)
        )
    except ValueError as exc:  # pydantic's ValidationError too
        errors = (
            field_errors(exc)
            if isinstance(exc, ValidationError)
            else {"success_threshold": "a percentage"}
        )
        return _rollouts_page(request, act.form, errors, 422)
    except HubError as exc:
        return _rollouts_page(request, act.form, {"config_id": exc.message}, exc.status)
    return redirect(request, f"/console/rollouts/{made.id}", f"Rollout “{made.name}” created.")


@router.get("/rollouts/{rollout_id}")
def rollout_page(
    request: Request, rollout_id: PathId, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    with db_of(request).session() as s:
        progress = gateway.rollout_progress(s, rollout_id)
        config = gateway.get_config(s, progress.rollout.config_id)
    return render(
        request,
        "rollout.html",
        {
            "active": "rollouts",
            "p": progress,
            "r": progress.rollout,
            "config": config,
            "group_bar": group_bar,
        },
    )


STEPS = {
    "start": (gateway.start_rollout, "started: the canary group goes first"),
    "pause": (gateway.pause_rollout, "paused: no new group starts"),
    "resume": (gateway.resume_rollout, "resumed"),
    "abort": (gateway.abort_rollout, "aborted"),
}


@router.post("/rollouts/{rollout_id}/{step}")
def rollout_step(
    request: Request,
    rollout_id: PathId,
    step: str,
    act: Annotated[Action, Depends(action(Role.OPERATOR))],
) -> Response:
    if step not in STEPS:
        raise HubError("not_found", "no such rollout action", 404)
    run, said = STEPS[step]
    now = now_of(request)
    db_of(request).transaction(lambda s: run(s, rollout_id, actor=act.signed.actor, now=now))
    return redirect(request, f"/console/rollouts/{rollout_id}", f"Rollout {said}.")
