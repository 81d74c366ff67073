"""Medical insurance units: presence at a glance, registration, disable and enable."""

from __future__ import annotations

from typing import Annotated, Any

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
from hub.gateway.schemas import UnitIn

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("units", "Units", "/console/units", Role.VIEWER, "Fleet"))


def presence_bar(unit: Any) -> Any:
    return stacked_bar(
        [
            Segment(unit.online, "good", f"{unit.online} online"),
            Segment(unit.stale, "warn", f"{unit.stale} stale"),
            Segment(unit.offline, "bad", f"{unit.offline} offline"),
            Segment(unit.not_enrolled, "muted", f"{unit.not_enrolled} not enrolled"),
        ]
    )


def _units_page(
    request: Request,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    with db_of(request).session() as s:
        units = gateway.list_units(s)
    return render(
        request,
        "units.html",
        {
            "active": "units",
            "units": units,
            "presence_bar": presence_bar,
            "form": form or {},
            "errors": errors or {},
        },
        status,
    )


@router.get("/units")
def units(request: Request, _: Annotated[Signed, Depends(page(Role.VIEWER))]) -> Response:
    return _units_page(request)


@router.post("/units")
def create_unit(
    request: Request, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    now = now_of(request)
    try:
        spec = UnitIn(
            institution_code=act.field("institution_code").upper(),
            name=act.field("name"),
            region_code=act.field("region_code"),
        )
        unit = db_of(request).transaction(
            lambda s: gateway.create_unit(s, spec, actor=act.signed.actor, now=now)
        )
    except ValidationError as exc:
        return _units_page(request, act.form, field_errors(exc), 422)
    except HubError as exc:
        return _units_page(request, act.form, {"institution_code": exc.message}, exc.status)
    return redirect(request, "/console/units", f"Unit {unit.name} registered.")


@router.post("/units/{unit_id}/disable")
def disable_unit(
    request: Request, unit_id: PathId, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    now = now_of(request)
    unit = db_of(request).transaction(
        lambda s: gateway.disable_unit(s, unit_id, actor=act.signed.actor, now=now)
    )
    return redirect(request, "/console/units", f"{unit.name} disabled: its terminals are refused.")


@router.post("/units/{unit_id}/enable")
def enable_unit(
    request: Request, unit_id: PathId, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    now = now_of(request)
    unit = db_of(request).transaction(
        lambda s: gateway.enable_unit(s, unit_id, actor=act.signed.actor, now=now)
    )
    return redirect(request, "/console/units", f"{unit.name} enabled.")
