"""Terminal authentication for camera-frame uploads, whose bodies exceed the gateway's limit.

`TerminalCaller` refuses bodies over `gateway_terminal_body_bytes` (64 KiB), and a camera frame
is 30-400 KB. Here the body is bounded by the frame limit instead (the route's own limit in
`hub.limits.BodySizeLimit` refuses a larger declared length before anything is read, and again
while reading); every other check is the gateway's own `verify_terminal_request`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from hub.gateway.auth import AuthenticatedTerminal, verify_terminal_request
from hub.payments.code_errors import QrRefused


async def authenticate_frame_upload(request: Request) -> AuthenticatedTerminal:
    """FastAPI dependency: the verified terminal behind a frame upload, or a 401/403/413."""
    limit = request.app.state.settings.frame_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise QrRefused("frame_too_large", f"frame is larger than {limit} bytes", 413)
    body = await request.body()
    if len(body) > limit:
        raise QrRefused("frame_too_large", f"frame is larger than {limit} bytes", 413)
    return await verify_terminal_request(request, body)


FrameCaller = Annotated[AuthenticatedTerminal, Depends(authenticate_frame_upload)]
