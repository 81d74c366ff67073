"""The heartbeat lane: heartbeats go straight to their handler, around the framework stack.

Heartbeats are nearly all of the hub's requests (180,000 terminals at a 60 s interval are
3,000 a second). Through the full stack (request-context middleware, routing, dependency
solving, exception middlewares) a heartbeat cost about 1.5 ms of CPU on the 2-core target;
through this lane about 0.4 ms, of which the Ed25519 check is a third. The lane runs the very
same handler as the documented route in endpoints.py, and answers refusals with the same
`{"error": {"code", "message"}}` bodies; it keeps the body limit and the request metrics.
"""

from __future__ import annotations

import time

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devices.protocol.messages import HEARTBEAT_PATH
from hub.errors import HubError, error_body
from hub.gateway.endpoints import heartbeat
from hub.gateway.errors import BodyTooLarge
from hub.observability import LATENCY, REQUESTS

log = structlog.get_logger()


class HeartbeatLane:
    """ASGI middleware: POST /api/terminal/heartbeat is answered here, all else passes on."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != HEARTBEAT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        response = await self._answer(scope, receive)
        await response(scope, receive, send)
        REQUESTS.labels("POST", HEARTBEAT_PATH, str(response.status_code)).inc()
        LATENCY.labels("POST", HEARTBEAT_PATH).observe(time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive) -> Response:
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        try:
            if not declared.isdigit() or int(declared) > self.limit:
                raise BodyTooLarge(message=f"request body over {self.limit} bytes")
            return await heartbeat(Request(scope, self._bounded(receive)))
        except HubError as exc:
            return JSONResponse(error_body(exc.code, exc.message), exc.status)
        except Exception:
            log.exception("unhandled_error", path=HEARTBEAT_PATH)
            return JSONResponse(error_body("internal_error", "internal error"), 500)

    def _bounded(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(message=f"request body over {self.limit} bytes")
            return message

        return counted
