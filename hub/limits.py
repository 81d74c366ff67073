"""Request body size limit, for declared and for chunked bodies alike."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.errors import error_body


class BodySizeLimit:
    """`limit` for every route, except the paths in `routes` that have their own (camera frames)."""

    def __init__(self, app: ASGIApp, limit: int, routes: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.routes = dict(routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope["path"], self.limit)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > limit:
            body = error_body("body_too_large", f"request body over {limit} bytes")
            await JSONResponse(body, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                # FastAPI re-raises HTTPException from body reading; the handler maps it.
                raise HTTPException(413, f"request body over {limit} bytes")
            return message

        await self.app(scope, counted, send)
