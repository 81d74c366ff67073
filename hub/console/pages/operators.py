"""Operator accounts (admins only): create, change role, disable and enable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from hub.console import service
from hub.console.auth import Action, action, db_of, now_of, page, policy_of
from hub.console.errors import FormInvalid, OperatorExists
from hub.console.models import Role
from hub.console.rendering import ConsoleRoute, NavItem, redirect, register_nav, render
from hub.console.service import Signed

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("operators", "Operators", "/console/operators", Role.ADMIN, "Control"))
ROLES = [(r.value, r.value.capitalize()) for r in Role]


def _page(
    request: Request,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    with db_of(request).session() as s:
        operators = list(service.list_operators(s))
    return render(
        request,
        "operators.html",
        {
            "active": "operators",
            "operators": operators,
            "roles": ROLES,
            "form": form or {"role": Role.VIEWER.value},
            "errors": errors or {},
        },
        status,
    )


@router.get("/operators")
def operators(request: Request, _: Annotated[Signed, Depends(page(Role.ADMIN))]) -> Response:
    return _page(request)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise FormInvalid({"role": "choose viewer, operator or admin"}) from None


@router.post("/operators")
def create_operator(
    request: Request, act: Annotated[Action, Depends(action(Role.ADMIN))]
) -> Response:
    now, policy = now_of(request), policy_of(request)
    try:
        role = _role(act.field("role"))
        created = db_of(request).transaction(
            lambda s: service.create_operator(
                s,
                username=act.field("username"),
                display_name=act.field("display_name"),
                password=act.form.get("password", ""),
                role=role,
                policy=policy,
                actor=act.signed.actor,
                now=now,
            )
        )
    except FormInvalid as exc:
        return _page(request, act.form, exc.fields, exc.status)
    except OperatorExists:
        return _page(request, act.form, {"username": "this user name is taken"}, 409)
    return redirect(request, "/console/operators", f"Operator {created.username} created.")


@router.post("/operators/{username}/role")
def change_role(
    request: Request, username: str, act: Annotated[Action, Depends(action(Role.ADMIN))]
) -> Response:
    now, role = now_of(request), _role(act.field("role"))
    db_of(request).transaction(
        lambda s: service.set_role(s, username, role, actor=act.signed.actor, now=now)
    )
    return redirect(request, "/console/operators", f"{username} is now {role.value}.")


@router.post("/operators/{username}/disable")
def disable(
    request: Request, username: str, act: Annotated[Action, Depends(action(Role.ADMIN))]
) -> Response:
    return _set_disabled(request, username, act, disabled=True)


@router.post("/operators/{username}/enable")
def enable(
    request: Request, username: str, act: Annotated[Action, Depends(action(Role.ADMIN))]
) -> Response:
    return _set_disabled(request, username, act, disabled=False)


def _set_disabled(request: Request, username: str, act: Action, *, disabled: bool) -> Response:
    now = now_of(request)
    db_of(request).transaction(
        lambda s: service.set_disabled(s, username, disabled, actor=act.signed.actor, now=now)
    )
    verb = "disabled; their sessions are closed" if disabled else "enabled"
    return redirect(request, "/console/operators", f"{username} {verb}.")
