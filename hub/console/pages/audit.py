"""The audit trail, newest first, with a check of its hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from hub.audit import service as audit
from hub.console.auth import db_of, page
from hub.console.models import Role
from hub.console.rendering import ConsoleRoute, NavItem, register_nav, render
from hub.console.service import Signed
from hub.db import QueryId

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("audit", "Audit log", "/console/audit", Role.VIEWER, "Control"))
PAGE_SIZE = 50


@router.get("/audit")
def audit_log(
    request: Request,
    _: Annotated[Signed, Depends(page(Role.VIEWER))],
    before: QueryId = None,
    action: Annotated[str, Query(max_length=64)] = "",
    verify: bool = False,
) -> Response:
    with db_of(request).session() as s:
        entries = list(audit.recent(s, PAGE_SIZE + 1, before, action.strip() or None))
        report = audit.verify(s) if verify else None
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return render(
        request,
        "audit.html",
        {
            "active": "audit",
            "entries": entries,
            "report": report,
            "action": action.strip(),
            "next_before": entries[-1].seq if more and entries else None,
            "before": before,
        },
    )
