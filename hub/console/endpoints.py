"""The ops console at /console: server-rendered pages and the assets they need.

Every asset is served by the hub itself, so the console works with no internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from hub.console.pages import (
    access,
    audit,
    checkouts,
    dashboard,
    disbursements,
    ledger,
    operators,
    payments,
    rollouts,
    terminals,
    units,
)
from hub.console.rendering import ConsoleRoute
from hub.errors import HubError

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
# Served by name from a fixed list: no path from the request ever reaches the file system.
ASSETS = {p.name: p for p in STATIC.iterdir() if p.suffix in MEDIA_TYPES}

router = APIRouter(
    prefix="/console", tags=["console"], include_in_schema=False, route_class=ConsoleRoute
)


@router.get("")
def home() -> Response:
    return RedirectResponse("/console/", status_code=307)


@router.get("/static/{name}")
def asset(name: str) -> Response:
    path = ASSETS.get(name)
    if path is None:
        raise HubError("not_found", "no such asset", 404)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=3600"},
    )


for area in (
    access,
    dashboard,
    units,
    terminals,
    rollouts,
    payments,
    checkouts,
    disbursements,
    ledger,
    audit,
    operators,
):
    router.include_router(area.router)


@router.get("/{missing:path}")
def missing(missing: str) -> Response:
    """Any other console address: an HTML 404, not the API's JSON one."""
    raise HubError("not_found", "no such page", 404)
